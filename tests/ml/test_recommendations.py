"""Product recommendations: planted co-purchase structure is recovered, cold starts fall back
to popularity, the metrics match a hand computation, the fit never sees the test period, and
the simulator's oracle ranking is the world's own product choice."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.decisioning.recommendations import (
    COLLABORATIVE,
    POPULARITY,
    RECOMMENDATION_COLUMNS,
    RecommenderParams,
    evaluate_recommender,
    fit_recommender,
    log_evaluation,
    popularity_ranking,
    ranking_metrics,
    recommend,
    recommend_for_day,
)
from ml.simulator import behaviour
from tests.ml.conftest import fake_subscriber_keys

CUTOFF = pd.Timestamp("2025-03-01")
GROUP_SIZE = 8  # products per taste group


def planted_orders(n_a: int = 40, n_b: int = 60) -> pd.DataFrame:
    """Two taste groups that never buy each other's products. Person i of a group bought
    products i and i + 1 (mod 8) of their group before the cutoff, and i + 2 after it: the
    product that person i + 1 bought before. Group B is larger, so popularity shows B only."""
    rows = []
    keys = fake_subscriber_keys(n_a + n_b, salt="recs")
    for person, key in enumerate(keys):
        group, i = ("A", person) if person < n_a else ("B", person - n_a)
        product = lambda offset: f"{group}{(i + offset) % GROUP_SIZE}"  # noqa: E731
        rows += [
            (key, product(0), CUTOFF - pd.Timedelta(days=30)),
            (key, product(1), CUTOFF - pd.Timedelta(days=10)),
            (key, product(2), CUTOFF + pd.Timedelta(days=5)),
        ]
    frame = pd.DataFrame(rows, columns=["subscriber_key", "product_id", "ordered_at"])
    return frame.assign(product_category=frame["product_id"].str[0], amount=10.0)


# Tiny data: a prior of one pseudo-order, so a few co-purchases can speak.
SMALL_DATA = RecommenderParams(prior_strength=1.0)


def test_planted_co_purchases_are_recovered_and_beat_popularity() -> None:
    orders = planted_orders()
    _, evaluation = evaluate_recommender(orders, CUTOFF, SMALL_DATA)
    # Everyone's held-out product is co-bought with theirs (by the next person of the group).
    assert evaluation.model.recall == pytest.approx(1.0)
    # Popularity shows the 5 most ordered B products: of the B people's next products,
    # 5 of 8 positions; none of the A people's.
    # Popularity shows B0..B4 (B products have 15 orders each, A ones 10; ties by id): it
    # finds the next product of the 38 B people whose (i + 2) mod 8 is 0..4, no A person's.
    assert sum((i + 2) % GROUP_SIZE < 5 for i in range(60)) == 38
    assert evaluation.popularity.recall == pytest.approx(0.38)
    assert evaluation.recall_gain.mean == pytest.approx(evaluation.model.recall - evaluation.popularity.recall)
    assert evaluation.recall_gain.ci_low > 0.5
    # The held-out product ties with the person's own two (repeats are allowed) and with
    # the one person i - 1 bought: always in the top 4, so NDCG at least 1/log2(5).
    assert evaluation.model.ndcg == pytest.approx(0.5787, abs=1e-4)
    assert evaluation.model.ndcg > 1 / math.log2(5)
    assert evaluation.model.ndcg > evaluation.popularity.ndcg + 0.3
    assert evaluation.n_train_orders == 200 and evaluation.n_test_orders == 100


def test_a_person_is_never_shown_the_other_groups_products() -> None:
    model = fit_recommender(planted_orders(), SMALL_DATA)
    rows = recommend(model, fake_subscriber_keys(100, salt="recs"))
    group = np.where(rows["subscriber_key"].isin(fake_subscriber_keys(40, salt="recs")), "A", "B")
    assert (rows["product_id"].str[0] == group).all()
    assert list(rows.columns) == list(RECOMMENDATION_COLUMNS)
    assert rows.groupby("subscriber_key")["rank"].apply(list).map([1, 2, 3, 4, 5].__eq__).all()


def test_a_strong_prior_shrinks_rare_co_purchases_to_popularity() -> None:
    orders = planted_orders()
    strong = RecommenderParams(prior_strength=10_000.0)
    _, evaluation = evaluate_recommender(orders, CUTOFF, strong)
    assert evaluation.model.recall == pytest.approx(evaluation.popularity.recall)


def test_cold_start_falls_back_to_popularity_and_says_so() -> None:
    orders = planted_orders()
    one_order = pd.DataFrame({
        "subscriber_key": ["one-order"], "product_id": ["A3"], "ordered_at": [CUTOFF - pd.Timedelta(days=1)],
    })
    model = fit_recommender(pd.concat([orders, one_order]), RecommenderParams())  # min_history 2
    known = fake_subscriber_keys(1, salt="recs")[0]
    rows = recommend(model, [known, "never-bought", "one-order"])
    by_key = {key: frame for key, frame in rows.groupby("subscriber_key")}
    baseline = popularity_ranking(model, ["x"])
    for cold in ("never-bought", "one-order"):
        assert (by_key[cold]["source"] == POPULARITY).all()
        assert by_key[cold]["product_id"].tolist() == baseline["product_id"].tolist()
        np.testing.assert_allclose(by_key[cold]["score"], baseline["score"])
    assert (by_key[known]["source"] == COLLABORATIVE).all()
    # Popularity: B products have 6 orders each or more, A products 5 or 6 (one extra A3).
    assert set(baseline["product_id"]) <= {f"B{i}" for i in range(GROUP_SIZE)}


def test_exclude_purchased_never_shows_what_the_person_bought() -> None:
    orders = planted_orders()
    model = fit_recommender(orders, RecommenderParams(prior_strength=1.0, exclude_purchased=True))
    rows = recommend(model, orders["subscriber_key"].unique())
    bought = set(zip(orders["subscriber_key"], orders["product_id"]))
    assert not any((key, product) in bought for key, product in zip(rows["subscriber_key"], rows["product_id"]))
    assert rows.groupby("subscriber_key").size().eq(5).all()
    included = recommend(fit_recommender(orders, SMALL_DATA), orders["subscriber_key"].unique())
    assert any((key, product) in bought for key, product in zip(included["subscriber_key"], included["product_id"]))


def test_repeat_purchases_are_learned_from_the_data() -> None:
    """When buyers of a product buy it again, the product comes back for its buyers."""
    keys = fake_subscriber_keys(30, salt="repeat")
    days = [CUTOFF - pd.Timedelta(days=d) for d in (40, 20)]
    orders = pd.DataFrame(
        [(key, "R1", day) for key in keys[:10] for day in days]  # R1 is bought again and again
        + [(key, f"X{i % 6}", day) for i, key in enumerate(keys[10:]) for day in days],
        columns=["subscriber_key", "product_id", "ordered_at"],
    )
    orders = pd.concat([orders, pd.DataFrame({"subscriber_key": ["new"] * 2, "product_id": ["R1", "X0"],
                                              "ordered_at": days})])
    model = fit_recommender(orders, SMALL_DATA)
    rows = recommend(model, ["new"])
    assert rows["product_id"].iloc[0] == "R1"
    # By hand: R1 has 21 of the 62 orders; its row holds 20 repeat pairs (10 people x 2 x 1)
    # and 1 pair with X0; X0's row holds 8 repeat pairs (4 people) and 1 with R1. With one
    # pseudo-order of popularity, "new" (R1 and X0) scores the mean of P(R1 | R1), P(R1 | X0).
    popularity = 21 / 62
    expected = ((20 + popularity) / (21 + 1) + (1 + popularity) / (9 + 1)) / 2
    assert rows["score"].iloc[0] == pytest.approx(expected)
    # Scores are next-purchase probabilities: over every product they add up to one.
    assert recommend(model, ["new"], k=len(model.product_ids))["score"].sum() == pytest.approx(1.0)


def test_metrics_agree_with_a_hand_computed_example() -> None:
    rankings = pd.DataFrame({
        "subscriber_key": ["p1"] * 6 + ["p2"] * 5,
        "rank": [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5],
        "product_id": ["X", "a", "b", "c", "d", "Y", "e", "f", "Z", "g", "h"],
    })
    held_out = pd.DataFrame({
        "subscriber_key": ["p1", "p1", "p1", "p2", "p3"],
        "product_id": ["X", "Y", "X", "Z", "Q"],  # p1's X twice counts once; Y at rank 6 is past k
    })
    metrics = ranking_metrics(rankings, held_out, k=5)
    # p1: 1 of {X, Y}, at rank 1: recall 1/2, NDCG 1 / (1 + 1/log2 3).
    # p2: Z at rank 3: recall 1, NDCG (1/log2 4) / 1 = 0.5. p3: no ranking: 0 and 0.
    p1_ndcg = 1.0 / (1.0 + 1.0 / math.log2(3))
    assert metrics.people == 3
    assert metrics.recall == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert metrics.ndcg == pytest.approx((p1_ndcg + 0.5 + 0.0) / 3)
    assert metrics.ndcg == pytest.approx(0.37105, abs=1e-5)


def test_the_fit_never_sees_test_period_orders() -> None:
    orders = planted_orders()
    # After the cutoff everyone also buys a product nobody bought before: a fit that saw the
    # test period would rank it first for everyone (it would be the most popular product).
    leak = pd.DataFrame({
        "subscriber_key": orders["subscriber_key"].unique(),
        "product_id": "LEAK",
        "ordered_at": CUTOFF,  # exactly at the cutoff: test period
    })
    model, evaluation = evaluate_recommender(pd.concat([orders, leak]), CUTOFF, SMALL_DATA)
    assert "LEAK" not in set(model.product_ids)
    assert model.trained_until < CUTOFF
    assert model.n_orders == evaluation.n_train_orders == 200
    assert evaluation.n_test_orders == 200
    # Each person now has two held-out products, one of which no fit on the past can know.
    assert evaluation.model.recall == pytest.approx(0.5)


def test_params_are_checked() -> None:
    for bad in ({"k": 0}, {"min_history": 0}, {"prior_strength": 0.0}, {"prior_strength": float("nan")},
                {"k": True}):
        with pytest.raises(ValueError):
            RecommenderParams(**bad)
    with pytest.raises(ValueError, match="lack columns"):
        fit_recommender(pd.DataFrame({"subscriber_key": ["a"], "product_id": ["b"]}))
    with pytest.raises(ValueError, match="no orders before it"):
        evaluate_recommender(planted_orders(), CUTOFF - pd.Timedelta(days=365))


def test_the_evaluation_is_logged_to_the_given_mlflow_client(mlflow_target) -> None:
    _, evaluation = evaluate_recommender(planted_orders(), CUTOFF, SMALL_DATA)
    run_id = log_evaluation(mlflow_target, evaluation, run_tags={"code_version": "abc123"})
    run = mlflow_target.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["method"] == "item_item_conditional_probability"
    assert run.data.params["prior_strength"] == "1.0"
    assert run.data.params["cutoff"] == CUTOFF.isoformat()
    assert run.data.tags["code_version"] == "abc123"
    assert run.data.metrics["test_model_recall_at_5"] == pytest.approx(1.0)
    assert run.data.metrics["test_popularity_recall_at_5"] == pytest.approx(evaluation.popularity.recall)
    assert run.data.metrics["n_test_people"] == 100.0
    assert "test_oracle_recall_at_5" not in run.data.metrics  # no oracle given


# -- the simulator's oracle -------------------------------------------------------------------


def test_product_probabilities_are_the_worlds_own_choice() -> None:
    """Drawn with choose_products many times, each product's frequency matches."""
    rng = np.random.default_rng(3)
    affinity = rng.dirichlet(np.ones(behaviour.N_CATEGORIES), size=3)
    sensitivity = np.array([0.05, 0.5, 0.95])
    by_category = np.arange(behaviour.N_CATEGORIES * 10).reshape(behaviour.N_CATEGORIES, 10)
    probability = behaviour.product_probabilities(affinity, sensitivity, by_category)
    np.testing.assert_allclose(probability.sum(axis=1), 1.0)
    n = 200_000
    for person in range(3):
        picks = behaviour.choose_products(
            np.repeat(affinity[person : person + 1], n, axis=0), np.full(n, sensitivity[person]),
            rng.uniform(size=n), rng.uniform(size=n), rng.uniform(size=n), by_category,
        )
        frequency = np.bincount(picks, minlength=by_category.size) / n
        np.testing.assert_allclose(frequency, probability[person], atol=0.003)
    # The price-sensitive person leans cheap, the other expensive (rank 0 is the cheapest).
    assert probability[2, by_category[:, 0]].sum() > 2 * probability[0, by_category[:, 0]].sum()


def test_true_product_rankings_rank_by_the_worlds_probabilities(tmp_path) -> None:
    from ml.simulator import AudienceConfig, DirtyDataConfig, generate_landing
    from ml.simulator.evaluation import true_product_rankings
    from ml.simulator.population import CRM, draw_catalogue, draw_people, subscriber_ids

    config = AudienceConfig(n_people=40, days=5, seed=4, dirty=DirtyDataConfig.clean())
    generate_landing(config, tmp_path / "landing", tmp_path / "oracle")
    crm_ids = subscriber_ids(np.array([3, 17]), CRM).to_pylist()
    rankings = true_product_rankings(tmp_path / "oracle", [*crm_ids, "C99999999", None], k=5)
    assert rankings["crm_id"].tolist() == [crm_ids[0]] * 5 + [crm_ids[1]] * 5  # unknown ids left out
    people = draw_people(config, np.array([3, 17]))
    catalogue = draw_catalogue(config.seed)
    truth = behaviour.product_probabilities(people.affinity, people.price_sensitivity, catalogue.by_category)
    for row, crm_id in enumerate(crm_ids):
        mine = rankings.loc[rankings["crm_id"] == crm_id]
        assert mine["product_id"].tolist() == catalogue.product_id[np.argsort(-truth[row])[:5]].tolist()
        np.testing.assert_allclose(mine["probability"], np.sort(truth[row])[::-1][:5])


def test_a_day_recommends_to_everyone_from_orders_up_to_as_of_and_evaluates_the_last_30_days() -> None:
    orders = planted_orders()
    keys = orders["subscriber_key"].unique().tolist() + ["never-ordered"]
    # As of 20 days after CUTOFF, the evaluation's cutoff is CUTOFF - 10 days: only each
    # person's first order trains it.
    as_of = CUTOFF + pd.Timedelta(days=20)
    day = recommend_for_day(orders, keys, as_of, SMALL_DATA)
    assert day.rows.groupby("subscriber_key").size().eq(SMALL_DATA.k).all() and day.rows["subscriber_key"].nunique() == len(keys)
    assert (day.rows.loc[day.rows["subscriber_key"] == "never-ordered", "source"] == POPULARITY).all()
    assert day.rows["trained_until"].max() == CUTOFF + pd.Timedelta(days=5)
    assert day.evaluation is not None and day.evaluation.cutoff == CUTOFF - pd.Timedelta(days=10)
    assert day.evaluation.n_train_orders == len(orders) // 3
    # Orders after as_of had not happened: the same day without them gives the same rows.
    later = pd.DataFrame({"subscriber_key": [keys[0]] * 3, "product_id": ["B7"] * 3,
                          "ordered_at": [as_of + pd.Timedelta(hours=1)] * 3})
    again = recommend_for_day(pd.concat([orders, later], ignore_index=True), keys, as_of, SMALL_DATA)
    pd.testing.assert_frame_equal(again.rows, day.rows)


def test_a_day_without_orders_on_both_sides_of_the_window_says_why() -> None:
    orders = planted_orders()
    early = recommend_for_day(orders, ["k"], CUTOFF - pd.Timedelta(days=1), SMALL_DATA)
    assert early.evaluation is None and "leaves no orders" in early.why_not_evaluated
    assert len(early.rows) == SMALL_DATA.k
    empty = recommend_for_day(orders.iloc[:0], ["k"], CUTOFF, SMALL_DATA)
    assert empty.rows.empty and empty.evaluation is None and empty.why_not_evaluated


def test_a_day_with_nobody_to_recommend_to_writes_no_rows() -> None:
    usual = recommend_for_day(planted_orders(), ["k"], CUTOFF, SMALL_DATA)
    day = recommend_for_day(planted_orders(), [], CUTOFF, SMALL_DATA)
    assert day.rows.empty and list(day.rows.columns) == list(usual.rows.columns)
