"""Uplift targeting: the learners rank a known effect, the metrics are scikit-uplift's by-group
definitions, the benchmark never scores on what it fitted or chose on, the decision's edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from ml.decisioning.uplift.benchmark import (
    HILLSTROM_LEARNERS,
    UpliftSample,
    benchmark_splits,
    hillstrom_uplift_sample,
    log_uplift_benchmark,
    run_uplift_benchmark,
)
from ml.decisioning.uplift.decision import (
    BEYOND_BUDGET,
    NOT_WORTH_THE_COST,
    SELECTED,
    choose_recipients,
)
from ml.decisioning.uplift.learners import (
    CLASS_TRANSFORMATION,
    LEARNER_KINDS,
    S_LEARNER,
    T_LEARNER,
    LightGBMParams,
    UpliftLearner,
    fit_uplift_model,
    predict_uplift,
    qini_auc,
    uplift_at_k,
    uplift_auc,
)

SHALLOW = LightGBMParams(num_leaves=4, n_estimators=100, learning_rate=0.05, min_child_samples=50)


def randomised_rows(n: int, seed: int, treated_share: float = 0.5):
    """Features, treatment, outcome and the true effect. The response without an email grows
    with x1; the email's effect grows with x0 alone (0 to 0.25), so ranking by response
    (propensity) is close to random targeting and only an uplift model finds the effect."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.uniform(size=(n, 4)), columns=["x0", "x1", "x2", "x3"])
    treatment = (rng.uniform(size=n) < treated_share).astype(int)
    base = 0.05 + 0.3 * features["x1"].to_numpy()
    effect = 0.25 * features["x0"].to_numpy()
    outcome = (rng.uniform(size=n) < base + treatment * effect).astype(int)
    return features, treatment, outcome, effect, base


@pytest.fixture(scope="module")
def fresh_rows():
    return randomised_rows(40_000, seed=2)


def yardsticks(rows) -> tuple[float, float]:
    """uplift@30% of the true-effect ranking and of a random ranking on the same rows."""
    _, treatment, outcome, effect, _ = rows
    random_order = np.random.default_rng(3).uniform(size=len(outcome))
    return uplift_at_k(outcome, effect, treatment), uplift_at_k(outcome, random_order, treatment)


def test_the_synthetic_effect_separates_uplift_from_propensity(fresh_rows):
    """The yardsticks the learners are held to, near their expected values: the top 30% by
    true effect average 0.25 x 0.85 = 0.2125, random targeting the mean effect 0.125, and so
    does ranking by the response without an email (independent of the effect)."""
    _, treatment, outcome, _, base = fresh_rows
    true_ranking, random_ranking = yardsticks(fresh_rows)
    assert true_ranking == pytest.approx(0.2125, abs=0.01)
    assert random_ranking == pytest.approx(0.125, abs=0.01)
    assert uplift_at_k(outcome, base, treatment) == pytest.approx(0.125, abs=0.015)


@pytest.mark.parametrize("kind", LEARNER_KINDS)
def test_each_learner_ranks_a_known_heterogeneous_effect(kind, fresh_rows):
    features, treatment, outcome, _, _ = randomised_rows(10_000, seed=1)
    model = fit_uplift_model(features, treatment, outcome, UpliftLearner(kind, kind, SHALLOW), seed=0)
    test_features, test_treatment, test_outcome, effect, base = fresh_rows
    predicted = predict_uplift(model, test_features)
    true_ranking, random_ranking = yardsticks(fresh_rows)
    # Each learner closes most of the gap between random targeting and the true ranking
    # (0.79 to 0.97 over training seeds 1, 7, 8, 9); ranking by response closes 0.15.
    captured = (uplift_at_k(test_outcome, predicted, test_treatment) - random_ranking) / (true_ranking - random_ranking)
    assert captured > 0.7
    assert spearmanr(predicted, effect).statistic > 0.7
    assert abs(spearmanr(predicted, base).statistic) < 0.2


def test_class_transformation_refuses_unbalanced_arms():
    features, treatment, outcome, _, _ = randomised_rows(2_000, seed=4, treated_share=0.8)
    with pytest.raises(ValueError, match="half the rows treated"):
        fit_uplift_model(features, treatment, outcome, UpliftLearner("ct", CLASS_TRANSFORMATION, SHALLOW))
    # The T-learner has no such assumption.
    fit_uplift_model(features, treatment, outcome, UpliftLearner("t", T_LEARNER, SHALLOW))


@pytest.mark.parametrize(
    "treatment, outcome, message",
    [
        ([1, 1, 1, 1], [0, 1, 0, 1], "both treated and control"),
        ([0, 1, 0, 1], [1, 1, 1, 1], "single value"),
        ([0, 1, 2, 1], [0, 1, 0, 1], "only 0 and 1"),
    ],
)
def test_fitting_refuses_samples_without_an_uplift_to_learn(treatment, outcome, message):
    features = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(ValueError, match=message):
        fit_uplift_model(features, treatment, outcome, UpliftLearner("t", T_LEARNER))


# -- metrics, by hand -----------------------------------------------------------------------

# Five treated and five controls, distinct scores. By group, k = 0.4 keeps the top 2 of
# each group: treated 0.9 (1), 0.85 (0) -> 1/2; controls 0.95 (0), 0.7 (0) -> 0; uplift 0.5.
# k = 0.6 keeps 3: treated 2/3, controls 1/3 -> 1/3. Overall (not the benchmark's
# definition) the top 4 of all ten are 0.95 c, 0.9 t, 0.85 t, 0.8 t -> 2/3 - 0 = 2/3.
HAND_TREATMENT = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
HAND_OUTCOME = [1, 0, 1, 0, 0, 0, 0, 1, 1, 0]
HAND_SCORES = [0.9, 0.85, 0.8, 0.3, 0.1, 0.95, 0.7, 0.6, 0.2, 0.05]


def test_uplift_at_k_is_the_by_group_difference_of_response_rates():
    assert uplift_at_k(HAND_OUTCOME, HAND_SCORES, HAND_TREATMENT, k=0.4) == pytest.approx(0.5)
    assert uplift_at_k(HAND_OUTCOME, HAND_SCORES, HAND_TREATMENT, k=0.6) == pytest.approx(1 / 3)


# Four people: A treated and converted, B control not, C treated not, D control converted.
QINI_TREATMENT = [1, 0, 1, 0]
QINI_OUTCOME = [1, 0, 0, 1]
# Ranked D, A, B, C. Qini curve Q(n) = Yt - Yc * Nt / Nc: (0,0) (1,0) (2,0) (3,0.5) (4,0),
# area 0.5; the perfect ranking A, {B, C}, D gives (0,0) (1,1) (3,1) (4,0), area 3; the
# random line ends at 0. Qini AUC = 0.5 / 3. Uplift curve (rate difference x n):
# (1,-1) (2,0) (3,1.5) (4,0), area 0.5; sklift's perfect uplift curve has area 4.5: 1/9.
QINI_SCORES = [0.7, 0.5, 0.1, 0.9]


def test_qini_auc_and_auuc_agree_with_the_hand_computed_curves():
    assert qini_auc(QINI_OUTCOME, QINI_SCORES, QINI_TREATMENT) == pytest.approx(1 / 6)
    assert uplift_auc(QINI_OUTCOME, QINI_SCORES, QINI_TREATMENT) == pytest.approx(1 / 9)
    perfect = [1.0, 0.5, 0.4, 0.0]
    assert qini_auc(QINI_OUTCOME, perfect, QINI_TREATMENT) == pytest.approx(1.0)


# -- the benchmark --------------------------------------------------------------------------


def synthetic_sample(n: int = 6_000) -> UpliftSample:
    features, treatment, outcome, _, _ = randomised_rows(n, seed=5)
    return UpliftSample(features, treatment, outcome)


def test_splits_are_seeded_stratified_and_the_inner_ones_stay_inside_the_training_part():
    sample = synthetic_sample()
    outer = benchmark_splits(sample, seeds=(0, 1), test_share=0.3, within_training=False)
    inner = benchmark_splits(sample, seeds=(0, 1), test_share=0.3, within_training=True)
    strata = sample.treatment * 2 + sample.outcome
    for (seed, train, test), (_, inner_train, validation) in zip(outer, inner):
        assert len(test) == 1_800 and not set(train) & set(test)
        # Stratified: each treatment x outcome cell keeps its share within a row.
        for cell in range(4):
            assert abs((strata[test] == cell).sum() - 0.3 * (strata == cell).sum()) <= 1
        # Choosing parameters on the inner split never sees the test part.
        assert set(inner_train) | set(validation) == set(train)
        assert not set(validation) & set(test) and len(validation) == 1_260
    assert not np.array_equal(outer[0][2], outer[1][2])
    again = benchmark_splits(sample, seeds=(0, 1), test_share=0.3, within_training=False)
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(outer, again))


def test_the_benchmark_reports_per_seed_figures_their_mean_and_sample_spread():
    learners = (UpliftLearner("t", T_LEARNER, SHALLOW), UpliftLearner("s", S_LEARNER, SHALLOW))
    result = run_uplift_benchmark(synthetic_sample(), learners, seeds=(0, 1, 2))
    assert [r.learner.name for r in result.learners] == ["t", "s"]
    assert result.rows == 6_000 and result.evaluated_on == "test" and result.metric_name == "uplift_at_30"
    for learner in result.learners:
        assert len(learner.uplift_at_k) == len(learner.qini_auc) == len(learner.uplift_auc) == 3
        summary = learner.summary("uplift_at_30")
        assert summary["uplift_at_30_mean"] == learner.mean_uplift_at_k == pytest.approx(np.mean(learner.uplift_at_k))
        assert summary["uplift_at_30_std"] == pytest.approx(np.std(learner.uplift_at_k, ddof=1)) and summary["uplift_at_30_std"] > 0
        assert summary["qini_auc_std"] == pytest.approx(np.std(learner.qini_auc, ddof=1))
        assert summary["uplift_auc_mean"] == pytest.approx(np.mean(learner.uplift_auc))
        # Better than random targeting (the mean effect, 0.125), or the rows were misaligned.
        assert learner.mean_uplift_at_k > 0.145
    assert result.best().mean_uplift_at_k == max(r.mean_uplift_at_k for r in result.learners)
    table = result.table()
    assert list(table["learner"]) == ["t", "s"]
    assert table.loc[0, "uplift_at_30_mean"] == pytest.approx(result.learners[0].mean_uplift_at_k)


def test_the_benchmark_refuses_duplicate_learner_names():
    twice = (UpliftLearner("t", T_LEARNER), UpliftLearner("t", S_LEARNER))
    with pytest.raises(ValueError, match="unique"):
        run_uplift_benchmark(synthetic_sample(), twice)


def hillstrom_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recency": [10, 6, 7, 9],
            "history_segment": ["2) $100 - $200", "3) $200 - $350", "2) $100 - $200", "1) $0 - $100"],
            "history": [142.44, 329.08, 180.65, 45.34],
            "mens": [1, 1, 0, 1],
            "womens": [0, 1, 1, 0],
            "zip_code": ["Surburban", "Rural", "Surburban", "Urban"],
            "newbie": [0, 1, 1, 0],
            "channel": ["Phone", "Web", "Web", "Multichannel"],
            "segment": ["Womens E-Mail", "No E-Mail", "Mens E-Mail", "No E-Mail"],
            "visit": [1, 0, 1, 1],
            "conversion": [0, 0, 0, 0],
            "spend": [0.0, 0.0, 0.0, 0.0],
        }
    )


def test_hillstrom_sample_is_womens_email_against_no_email_with_visit_and_fixed_columns():
    sample = hillstrom_uplift_sample(hillstrom_rows())
    assert sample.treatment.tolist() == [1, 0, 0]
    assert sample.outcome.tolist() == [1, 0, 1]
    assert list(sample.features.columns) == [
        "recency", "history", "mens", "womens", "newbie",
        "zip_code_surburban", "zip_code_rural", "zip_code_urban",
        "channel_phone", "channel_web", "channel_multichannel",
    ]
    assert sample.features["zip_code_urban"].tolist() == [0.0, 0.0, 1.0]
    assert sample.features["history"].tolist() == [142.44, 329.08, 45.34]


def test_hillstrom_sample_refuses_an_unknown_category():
    rows = hillstrom_rows()
    rows.loc[0, "channel"] = "Fax"
    with pytest.raises(ValueError, match="unknown values"):
        hillstrom_uplift_sample(rows)


def test_the_declared_hillstrom_learners_compare_a_t_learner_with_other_meta_learners():
    kinds = {learner.kind for learner in HILLSTROM_LEARNERS}
    assert T_LEARNER in kinds and len(kinds) >= 2
    assert HILLSTROM_LEARNERS[0].base == LightGBMParams()  # the untuned baseline


class FakeMlflowClient:
    """Records what a run receives; enough of MlflowClient for one benchmark run."""

    def __init__(self):
        self.params, self.metrics, self.tags, self.dicts, self.status = {}, [], {}, {}, None

    def get_experiment_by_name(self, name):
        return None

    def create_experiment(self, name, artifact_location=None, tags=None):
        self.experiment_tags = dict(tags or {})
        return "7"

    def create_run(self, experiment_id, run_name, tags):
        from types import SimpleNamespace

        self.tags.update(tags)
        return SimpleNamespace(info=SimpleNamespace(run_id="run-1"))

    def log_batch(self, run_id, metrics=(), params=()):
        self.params.update({p.key: p.value for p in params})
        self.metrics += list(metrics)

    def set_tag(self, run_id, key, value):
        self.tags[key] = value

    def log_dict(self, run_id, dictionary, artifact_file):
        self.dicts[artifact_file] = dictionary

    def set_terminated(self, run_id, status):
        self.status = status


def test_the_mlflow_run_holds_params_summary_metrics_and_per_seed_steps():
    from ml.tracking import MlflowTarget

    learners = (UpliftLearner("t", T_LEARNER, SHALLOW), UpliftLearner("s", S_LEARNER, SHALLOW))
    result = run_uplift_benchmark(synthetic_sample(), learners, seeds=(0, 1))
    client = FakeMlflowClient()
    target = MlflowTarget(client=client, artifact_location=None, experiment_name="uplift")
    run_id = log_uplift_benchmark(target, result, run_name="bench", dataset="synthetic", run_tags={"code_version": "abc"})
    assert run_id == "run-1" and client.status == "FINISHED"
    assert client.params["seeds"] == "0,1" and client.params["t.kind"] == T_LEARNER
    assert client.params["s.lgbm_num_leaves"] == "4"
    summary = {m.key: m.value for m in client.metrics if m.step == 0}
    assert summary["t.uplift_at_30_mean"] == pytest.approx(result.learners[0].mean_uplift_at_k)
    assert summary["s.qini_auc_std"] == pytest.approx(np.std(result.learners[1].qini_auc, ddof=1))
    assert summary["best.uplift_at_30_mean"] == pytest.approx(result.best().mean_uplift_at_k)
    by_seed = [m for m in client.metrics if m.key == "s.uplift_at_30_by_seed"]
    assert [(m.step, m.value) for m in by_seed] == list(enumerate(result.learners[1].uplift_at_k))
    assert client.tags["best_learner"] == result.best().learner.name and client.tags["code_version"] == "abc"
    assert [row["learner"] for row in client.dicts["uplift_benchmark.json"]] == ["t", "s"]


# -- the send decision ----------------------------------------------------------------------


def uplifts(*values: float) -> pd.Series:
    return pd.Series(values, index=[f"k{i}" for i in range(len(values))], dtype=float)


def test_a_send_whose_incremental_value_equals_its_cost_is_not_made():
    # 0.05 x 20 = 1.0 exactly: an even bet is not worth a send; a hair above is.
    decisions = choose_recipients(uplifts(0.05, 0.0501, 0.02, -0.1), value_per_conversion=20.0, cost_per_send=1.0)
    assert decisions["selected"].tolist() == [False, True, False, False]
    assert decisions["decision_reason"].tolist() == [NOT_WORTH_THE_COST, SELECTED, NOT_WORTH_THE_COST, NOT_WORTH_THE_COST]
    assert decisions.loc["k1", "net_value"] == pytest.approx(0.002)


def test_the_budget_keeps_the_highest_net_values_and_the_rest_are_beyond_it():
    decisions = choose_recipients(uplifts(0.10, 0.30, 0.20, 0.01, 0.25), value_per_conversion=10.0, cost_per_send=0.5, budget=2)
    assert decisions.index[decisions["selected"]].tolist() == ["k1", "k4"]
    assert decisions["decision_reason"].tolist() == [BEYOND_BUDGET, SELECTED, BEYOND_BUDGET, NOT_WORTH_THE_COST, SELECTED]


def test_a_zero_budget_sends_nothing_and_a_large_one_only_what_pays():
    values = uplifts(0.10, 0.30, 0.01)
    nothing = choose_recipients(values, value_per_conversion=10.0, cost_per_send=0.5, budget=0)
    assert not nothing["selected"].any()
    assert nothing["decision_reason"].tolist() == [BEYOND_BUDGET, BEYOND_BUDGET, NOT_WORTH_THE_COST]
    roomy = choose_recipients(values, value_per_conversion=10.0, cost_per_send=0.5, budget=100)
    unlimited = choose_recipients(values, value_per_conversion=10.0, cost_per_send=0.5)
    assert roomy["selected"].tolist() == unlimited["selected"].tolist() == [True, True, False]


def test_per_person_costs_price_in_fatigue_and_rank_by_net_value():
    # k0 has the larger uplift but a high unsubscribe risk: its net value ranks below k1's.
    costs = pd.Series([2.5, 0.5, 0.5], index=["k0", "k1", "k2"])
    decisions = choose_recipients(uplifts(0.30, 0.25, 0.04), value_per_conversion=10.0, cost_per_send=costs, budget=1)
    assert decisions["net_value"].round(6).tolist() == [0.5, 2.0, -0.1]
    assert decisions.index[decisions["selected"]].tolist() == ["k1"]
    assert decisions.loc["k0", "decision_reason"] == BEYOND_BUDGET


def test_equal_net_values_are_cut_in_input_order():
    decisions = choose_recipients(uplifts(0.2, 0.2, 0.2), value_per_conversion=10.0, cost_per_send=1.0, budget=2)
    assert decisions["selected"].tolist() == [True, True, False]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"budget": -1}, "budget"),
        ({"budget": 1.5}, "budget"),
        ({"value_per_conversion": float("nan")}, "value_per_conversion"),
        ({"cost_per_send": -0.1}, "non-negative"),
        ({"cost_per_send": pd.Series([1.0, 1.0], index=["x", "y"])}, "indexed like"),
    ],
)
def test_the_decision_refuses_bad_inputs(kwargs, message):
    arguments = {"value_per_conversion": 10.0, "cost_per_send": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        choose_recipients(uplifts(0.1, 0.2), **arguments)


def test_the_decision_refuses_duplicate_people_and_impossible_probabilities():
    with pytest.raises(ValueError, match="unique"):
        choose_recipients(pd.Series([0.1, 0.2], index=["k", "k"]), value_per_conversion=1.0, cost_per_send=0.0)
    with pytest.raises(ValueError, match="within"):
        choose_recipients(uplifts(0.1, 1.5), value_per_conversion=1.0, cost_per_send=0.0)
