"""The figures of docs/models.md, "Recommendations": a simulated world, `marts.fct_orders` built
by the project's dbt, a temporal split, and the recommender against popularity and the
world's own ranking. Run with `make bench` (about a minute); `make test` skips it."""

from __future__ import annotations

import json
import time

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.bench

# (people, days of history, seed, held-out days): the table's worlds.
WORLDS = [(5_000, 730, 9, 90), (20_000, 120, 43, 30), (20_000, 730, 11, 90)]


@pytest.mark.parametrize(("n_people", "days", "seed", "test_days"), WORLDS)
def test_recommendations_beat_popularity_on_held_out_purchases(tmp_path, n_people, days, seed, test_days):
    from ml.decisioning.recommendations import RANKING_INPUT, evaluate_recommender
    from ml.simulator import AudienceConfig, generate_landing
    from ml.simulator.evaluation import true_product_rankings
    from tests.dbt.conftest import TEST_SECRET, dbt_vars, run_dbt

    generate_landing(AudienceConfig(n_people=n_people, days=days, seed=seed), tmp_path / "landing", tmp_path / "oracle")
    extracted_at = json.loads((tmp_path / "oracle" / "truth.json").read_text())["extracted_at"]
    build = run_dbt(
        tmp_path / "dbt", dbt_vars(tmp_path / "landing", tmp_path / "state", extracted_at), TEST_SECRET,
        "build", "--select", "+fct_orders", "+subscriber_identity_crosswalk",
        "--exclude-resource-type", "test", "unit_test",
    )
    assert build.success, build.output[-2000:]
    with duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True) as conn:
        orders = conn.sql("select * from marts.fct_orders").df()
        crosswalk = conn.sql(
            "select source_id as crm_id, subscriber_key from marts.subscriber_identity_crosswalk "
            "where source_system = 'crm'"
        ).df()
    cutoff = pd.Timestamp(extracted_at).normalize() - pd.Timedelta(days=test_days)
    # The oracle reaches the evaluation only, as rankings: never the fit.
    oracle = true_product_rankings(tmp_path / "oracle", crosswalk["crm_id"], 5).merge(crosswalk, on="crm_id")
    started = time.perf_counter()
    _, evaluation = evaluate_recommender(orders, cutoff, oracle_rankings=oracle[list(RANKING_INPUT)])
    seconds = time.perf_counter() - started
    gain = evaluation.recall_gain
    print(
        f"\n{n_people:,} people, {days} days, seed {seed}: {len(orders):,} orders; cutoff {cutoff.date()}: "
        f"train {evaluation.n_train_orders:,} orders of {evaluation.n_train_people:,} people, test "
        f"{evaluation.n_test_orders:,} orders of {evaluation.model.people:,} people "
        f"({evaluation.with_history['model'].people:,} with history); {seconds:.2f} s"
    )
    for name in ("model", "popularity", "oracle"):
        value = getattr(evaluation, name)
        print(f"  {name:10s} recall@5 {value.recall:.3f}  NDCG@5 {value.ndcg:.3f}")
    print(f"  recall@5 gain {gain.mean:+.4f} [{gain.ci_low:+.4f}, {gain.ci_high:+.4f}]")
    assert evaluation.model.recall > evaluation.popularity.recall
    assert evaluation.model.ndcg > evaluation.popularity.ndcg
    assert evaluation.oracle.recall > evaluation.model.recall
