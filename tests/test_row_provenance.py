"""From a row to the runs that made it (issue 14): every score names the Dagster run that
wrote it and the MLflow run that trained the scoring version. A tiny hand-made warehouse and
a small registered champion, no dbt (tests/test_empty_day.py's state, everyone eligible)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from ml.propensity.promotion import CHAMPION_ALIAS
from ml.propensity.specs import PURCHASE
from orchestration import tables
from orchestration.defs.scoring import propensity_scores
from tests.test_empty_day import DAY, PEOPLE, state_with_purchase_champion


def test_every_score_names_the_dagster_run_and_the_champion_s_mlflow_run(tmp_path):
    settings = state_with_purchase_champion(tmp_path, eligible=True)
    # No orders yet: the live-AUC check reads them for a matured scoring day.
    settings.warehouse().write_table(
        pd.DataFrame({"subscriber_key": pd.Series(dtype="string"), "ordered_at": pd.Series(dtype="datetime64[ns]")}),
        tables.FCT_ORDERS,
    )
    run = dg.materialize([propensity_scores], partition_key=DAY, resources={"settings": settings},
                         instance=dg.DagsterInstance.ephemeral())
    # The asset page shows the day's scores as a small embedded histogram.
    (materialization,) = run.asset_materializations_for_node("propensity_scores")
    histogram = materialization.metadata["score_histogram"]
    assert isinstance(histogram, dg.MarkdownMetadataValue)
    assert histogram.value.startswith(f"![propensity scores of {DAY}](data:image/png;base64,")
    client = settings.mlflow_client()
    champion = client.get_model_version_by_alias(PURCHASE.registered_model_name, CHAMPION_ALIAS)
    rows = settings.warehouse().read(
        f"select dagster_run_id, model_run_id, model_version, count(*) as n from {tables.PROPENSITY_SCORES} group by all"
    )
    assert rows.to_dict("records") == [
        {"dagster_run_id": run.run_id, "model_run_id": champion.run_id, "model_version": str(champion.version), "n": PEOPLE}
    ]
    assert client.get_run(champion.run_id).info.run_id == champion.run_id
