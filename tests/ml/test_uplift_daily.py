"""The loop's uplift model: only randomised rows teach it, the balance check tells random
sends from targeted ones, and the model decides only when it beats the propensity ranking on
held-out randomised rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.decisioning.uplift.daily import PROPENSITY_BASELINE, estimate_uplift, fit_daily_uplift
from ml.decisioning.uplift.examples import (
    BALANCED_AUC, LOOP_HOLDOUT, LOOP_RANDOM_CONTROL, SHOP_HISTORY, assignment_balance, randomised_examples,
)
from ml.propensity.features import NUMERIC_FEATURES, PURCHASE_LABEL, TOP_CATEGORY_SLOT_LEVELS


def feature_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({column: rng.random(n) for column in NUMERIC_FEATURES})
    frame["top_category_slot"] = rng.choice(TOP_CATEGORY_SLOT_LEVELS, n)
    frame["subscriber_key"] = [f"key{i:06d}" for i in range(n)]
    frame["cutoff_at"] = pd.Timestamp("2026-05-01")
    return frame


def test_only_randomised_rows_are_kept_with_their_treatment():
    cutoffs = [pd.Timestamp("2026-05-01"), pd.Timestamp("2026-07-03")]  # before and after the loop began
    keys = ["on_list_got", "on_list_missed", "never_sent", "opted_out", "holdout", "holdout_emailed", "control", "policy"]
    examples = pd.concat([feature_frame(len(keys)).assign(subscriber_key=keys, cutoff_at=c) for c in cutoffs])
    examples[PURCHASE_LABEL] = 1
    exposure = examples[["subscriber_key", "cutoff_at"]].assign(
        sends_before=lambda f: np.where(f["subscriber_key"] == "never_sent", 0, 2),
        sends_in_window=lambda f: np.where(f["subscriber_key"].isin(["holdout", "on_list_missed"]), 0, 1),
        got_first_campaign=lambda f: f["subscriber_key"].eq("on_list_got"),
        opted_out_before=lambda f: f["subscriber_key"].eq("opted_out"),
    )
    units = pd.DataFrame({"subscriber_key": ["holdout", "holdout_emailed", "control"],
                          "unit": [LOOP_HOLDOUT, LOOP_HOLDOUT, LOOP_RANDOM_CONTROL]})
    result = randomised_examples(examples, exposure, loop_started_at=pd.Timestamp("2026-06-30"), loop_units=units)
    kept = {(row.source, row.subscriber_key, str(row.cutoff_at.date())): row.treated for row in result.rows.itertuples()}
    # Before the loop: everyone on the list, treated by the first campaign (emailed later that
    # week is not "got the first campaign"). After: only the units; a holdout member who was
    # emailed anyway breaks the unit's promise and is left out.
    assert kept == {
        (SHOP_HISTORY, "on_list_got", "2026-05-01"): 1,
        (SHOP_HISTORY, "on_list_missed", "2026-05-01"): 0,
        (SHOP_HISTORY, "holdout", "2026-05-01"): 0,
        (SHOP_HISTORY, "holdout_emailed", "2026-05-01"): 0,
        (SHOP_HISTORY, "control", "2026-05-01"): 0,
        (SHOP_HISTORY, "policy", "2026-05-01"): 0,
        (LOOP_HOLDOUT, "holdout", "2026-07-03"): 0,
        (LOOP_RANDOM_CONTROL, "control", "2026-07-03"): 1,
    }
    assert result.counts[SHOP_HISTORY] == {"rows": 6, "treated": 1, "converted": 6}
    with pytest.raises(ValueError, match="loop units"):
        randomised_examples(examples, exposure, loop_started_at=None, loop_units=units.assign(unit="policy"))


def test_the_randomised_rows_come_out_the_same_whatever_order_the_examples_came_in():
    examples = pd.concat([feature_frame(30, seed=c).assign(cutoff_at=pd.Timestamp(day))
                          for c, day in enumerate(["2026-05-01", "2026-05-08", "2026-05-15"])])
    examples[PURCHASE_LABEL] = np.arange(len(examples)) % 2
    exposure = examples[["subscriber_key", "cutoff_at"]].assign(
        sends_before=2, sends_in_window=1, got_first_campaign=lambda f: np.arange(len(f)) % 3 == 0, opted_out_before=False,
    )
    read = lambda frame: randomised_examples(frame, exposure, loop_started_at=None).rows  # noqa: E731
    first, shuffled = read(examples), read(examples.sample(frac=1.0, random_state=5))
    assert len(first) == 90
    pd.testing.assert_frame_equal(first, shuffled)


def test_the_balance_check_tells_random_sends_from_targeted_ones():
    rows = feature_frame(4_000, seed=1)
    rng = np.random.default_rng(2)
    random_sends = rows.assign(treated=(rng.random(len(rows)) < 0.6).astype(int))
    targeted = rows.assign(treated=(rows["clicks_30d"] + 0.2 * rng.random(len(rows)) > 0.6).astype(int))
    assert assignment_balance(random_sends) < BALANCED_AUC
    assert assignment_balance(targeted) > 0.9


def randomised_rows(n: int, effect: float, seed: int = 0) -> pd.DataFrame:
    """Half emailed at random; an email adds `effect` to the purchase chance of people with a
    high opens_30d only. The propensity baseline knows the base chance, not the effect."""
    rng = np.random.default_rng(seed)
    rows = feature_frame(n, seed)
    treated = (rng.random(n) < 0.5).astype(int)
    base = 0.03 + 0.1 * rows["orders_90d"]
    chance = base + effect * treated * (rows["opens_30d"] > 0.7)
    return rows.assign(treated=treated, **{PURCHASE_LABEL: (rng.random(n) < chance).astype(int),
                                         PROPENSITY_BASELINE: base})


def test_the_uplift_model_decides_only_when_it_beats_the_propensity_ranking():
    strong = fit_daily_uplift(randomised_rows(12_000, effect=0.3))
    assert strong.acts and strong.qini_gain_ci[0] > 0
    assert "the uplift model decides" in strong.reason
    estimates = estimate_uplift(strong, feature_frame(1_000, seed=5))
    responsive = feature_frame(1_000, seed=5)["opens_30d"] > 0.7
    assert estimates[responsive].mean() - estimates[~responsive].mean() > 0.15
    none = fit_daily_uplift(randomised_rows(12_000, effect=0.0))
    assert not none.acts and "propensity ranking decides" in none.reason
    assert set(strong.metrics()) >= {"t_learner_qini_auc", "propensity_score_qini_auc", "qini_gain_ci_low"}


def test_too_little_randomised_data_fits_nothing_and_says_why():
    fit = fit_daily_uplift(randomised_rows(1_000, effect=0.3))
    assert fit.model is None and not fit.acts
    assert "1,000 rows" in fit.reason and "need 2,000 rows" in fit.reason
    with pytest.raises(ValueError, match="no uplift model"):
        estimate_uplift(fit, feature_frame(10))


def test_captured_share_scores_rankings_at_the_same_volume():
    from ml.simulator.evaluation import captured_share

    truth = np.array([0.04, 0.0, 0.03, -0.01, 0.02, 0.0])  # 0.08 incremental purchases in all
    shares = captured_share(truth, {"good": np.array([6, 1, 5, 0, 4, 2]), "bad": np.array([0, 6, 1, 5, 2, 4]),
                                    "unknown": np.array([1, 2, np.nan, 4, 5, 6])}, volume=2)
    assert shares == pytest.approx({"good": 0.875, "bad": -0.125, "random": 1 / 3, "oracle": 0.875})


def test_opt_out_rates_are_measured_per_recent_sends_band_and_shrunk_to_the_overall_rate():
    from ml.decisioning.uplift.send_cost import PRIOR_SENDS, opt_out_rates, send_costs

    day = pd.Timestamp("2026-06-01")
    # p: one send a day for 5 days (bands 0, 1, 2, 3, 3+), the fifth ends in an unsubscribe.
    # q: two sends 8 days apart (both band 0), the second bounced (not delivered) with a complaint.
    sends = pd.DataFrame({
        "subscriber_key": ["p"] * 5 + ["q", "q"],
        "sent_at": [day + pd.Timedelta(days=d) for d in range(5)] + [day, day + pd.Timedelta(days=8)],
        "delivered": [True] * 6 + [False],
        "unsubscribed": [False] * 4 + [True, False, False],
        "complained": [False] * 6 + [True],
    })
    rates = opt_out_rates(sends)
    assert rates.delivered_by_band == {0: 2, 1: 1, 2: 1, 3: 2}
    overall = 1 / 6  # the undelivered complaint is no opt-out by a delivered send
    assert rates.overall == pytest.approx(overall)
    assert rates.by_band[3] == pytest.approx((1 + PRIOR_SENDS * overall) / (2 + PRIOR_SENDS))
    assert rates.by_band[0] == pytest.approx((0 + PRIOR_SENDS * overall) / (2 + PRIOR_SENDS))
    costs = send_costs(pd.Series([0, 7], index=["a", "b"]), rates, cost_per_send=0.05, subscriber_value=20)
    assert costs["b"] == pytest.approx(0.05 + 20 * rates.by_band[3]) and costs["b"] > costs["a"]


def test_a_learner_that_predicts_a_constant_is_never_the_one_that_ranks():
    from ml.decisioning.uplift.learners import S_LEARNER, LightGBMParams, UpliftLearner

    # Leaves of at least 100,000 rows: the trees cannot split at all, so every estimate is one value.
    stump = UpliftLearner("stump", S_LEARNER, LightGBMParams(num_leaves=4, n_estimators=10, min_child_samples=100_000))
    fit = fit_daily_uplift(randomised_rows(12_000, effect=0.3), learners=(stump,))
    assert fit.best is None and fit.model is None and not fit.acts
    assert "same uplift for everyone" in fit.reason and fit.learners[0].qini_auc == 0


def test_no_randomised_rows_fit_nothing_and_no_pool_estimates_nothing():
    """Empty is a state: no examples give no randomised rows and no fit (and say so); a fitted
    model asked about nobody answers with no estimates."""
    # As the warehouse reads them: an empty varchar column is of object dtype.
    examples = feature_frame(0).astype({"subscriber_key": object}).assign(**{PURCHASE_LABEL: pd.Series(dtype=int)})
    exposure = examples[["subscriber_key", "cutoff_at"]].assign(
        sends_before=pd.Series(dtype=int), sends_in_window=pd.Series(dtype=int),
        got_first_campaign=pd.Series(dtype=bool), opted_out_before=pd.Series(dtype=bool))
    randomised = randomised_examples(examples, exposure, loop_started_at=None)
    assert randomised.rows.empty and all(count["rows"] == 0 for count in randomised.counts.values())
    fit = fit_daily_uplift(randomised.rows.assign(**{PROPENSITY_BASELINE: pd.Series(dtype=float)}))
    assert fit.model is None and not fit.acts and "0 rows" in fit.reason


def test_a_fitted_uplift_model_asked_about_nobody_returns_no_estimates():
    from ml.decisioning.uplift.learners import T_LEARNER, UpliftLearner, fit_uplift_model, predict_uplift
    from ml.propensity.features import prepare_features

    rows = randomised_rows(600, effect=0.3)
    model = fit_uplift_model(prepare_features(rows), rows["treated"], rows[PURCHASE_LABEL],
                             UpliftLearner("t", T_LEARNER))
    assert predict_uplift(model, prepare_features(feature_frame(0))).shape == (0,)
    assert predict_uplift(model, prepare_features(feature_frame(3))).shape == (3,)


def test_the_qini_of_resamples_as_counts_is_scikit_uplifts_qini_of_each_resample():
    from ml.decisioning.uplift.learners import qini_auc, weighted_qini_auc

    rng = np.random.default_rng(3)
    n = 3_000
    outcome, treatment = (rng.random(n) < 0.1).astype(int), (rng.random(n) < 0.6).astype(int)
    score = np.round(rng.random(n) + 0.2 * outcome * treatment, 2)  # ties, and a ranking with some signal
    picks = [rng.integers(0, n, n) for _ in range(6)]
    counts = np.stack([np.bincount(pick, minlength=n) for pick in picks], axis=1)
    expected = [qini_auc(outcome[pick], score[pick], treatment[pick]) for pick in picks]
    assert weighted_qini_auc(outcome, score, treatment, counts) == pytest.approx(expected, abs=1e-12)
    assert weighted_qini_auc(outcome, score, treatment, np.ones(n))[0] == pytest.approx(qini_auc(outcome, score, treatment), abs=1e-12)


def test_the_gain_interval_is_the_paired_bootstrap_of_scikit_uplifts_qini():
    """The same resamples (seeded), each scored by scikit-uplift, give the same interval."""
    from ml.decisioning.uplift.daily import qini_gain_interval
    from ml.decisioning.uplift.learners import qini_auc

    rng = np.random.default_rng(4)
    n = 4_000
    outcome, treatment = (rng.random(n) < 0.1).astype(int), (rng.random(n) < 0.6).astype(int)
    candidate, baseline = rng.random(n) + 0.3 * outcome * treatment, np.round(rng.random(n), 1)
    draws = np.random.default_rng(7)
    gains = []
    for _ in range(40):
        pick = draws.integers(0, n, n)
        gains.append(qini_auc(outcome[pick], candidate[pick], treatment[pick])
                     - qini_auc(outcome[pick], baseline[pick], treatment[pick]))
    expected = tuple(np.percentile(gains, [2.5, 97.5]))
    assert qini_gain_interval(outcome, candidate, baseline, treatment, seed=7, resamples=40) == pytest.approx(expected, abs=1e-12)
    assert expected[0] > 0  # the candidate does rank the treated converters first


def test_the_gate_widens_its_interval_for_the_number_of_candidates_it_picked_the_best_from():
    """The best of k learners is tested at 1 - 0.05 / k (Bonferroni), not 95%: picking the
    best and then reading a 95% interval lets a candidate that is no better act more often."""
    from ml.decisioning.uplift.daily import GATE_ALPHA, WITH_PROPENSITY_LIFT, qini_gain_interval

    rows = randomised_rows(12_000, effect=0.3)
    # T-, S-learner and propensity lift: the S-learner predicts one value for everyone here,
    # so it can never be picked and the best is one of 2.
    three = fit_daily_uplift(rows, learners=WITH_PROPENSITY_LIFT)
    assert len(three.learners) == 3 and three.qini_gain_ci_level == pytest.approx(1 - GATE_ALPHA / 2)
    assert "97.5% interval, best of 2" in three.reason and three.metrics()["qini_gain_ci_level"] == pytest.approx(0.975)
    daily = fit_daily_uplift(rows)  # T- and S-learner: only the T-learner ranks
    assert daily.qini_gain_ci_level == pytest.approx(0.95) and "best of 1" in daily.reason
    # The wider level widens the interval on both sides (same resamples).
    rng = np.random.default_rng(4)
    outcome, treatment = (rng.random(4_000) < 0.1).astype(int), (rng.random(4_000) < 0.6).astype(int)
    candidate, baseline = rng.random(4_000) + 0.3 * outcome * treatment, np.round(rng.random(4_000), 1)
    at_95 = qini_gain_interval(outcome, candidate, baseline, treatment, seed=7)
    at_975 = qini_gain_interval(outcome, candidate, baseline, treatment, seed=7, level=0.975)
    assert at_975[0] < at_95[0] and at_975[1] > at_95[1]


class RecordingLearner:
    """A learner of neither kind the module knows: it only has the RowLearner interface. Its
    fitted model predicts the rows' true effect (opens_30d > 0.7), so it ranks best."""

    name = "recording"

    def __init__(self):
        self.fitted_on = None

    def params(self):
        return {"kind": "recording"}

    def fit(self, rows, treatment, outcome, *, seed=0):
        self.fitted_on = (len(rows), int(np.sum(treatment)), seed)
        return RecordingModel()


class RecordingModel:
    def predict(self, rows):
        return (rows["opens_30d"].to_numpy() > 0.7).astype(float) + rows["opens_30d"].to_numpy() * 1e-3


def test_any_learner_with_the_row_interface_is_fitted_judged_and_used_to_estimate():
    rows = randomised_rows(12_000, effect=0.3)
    learner = RecordingLearner()
    fit = fit_daily_uplift(rows, seed=3, learners=(learner,))
    assert fit.best == "recording" and fit.acts and fit.learner is learner
    assert learner.fitted_on[0] < len(rows) and learner.fitted_on[2] == 3  # the training side, the seed passed on
    pool = feature_frame(50, seed=5)
    assert estimate_uplift(fit, pool) == pytest.approx(RecordingModel().predict(pool))


def test_the_wrapped_scikit_uplift_learner_predicts_what_the_estimator_does_on_the_contracts_features():
    from ml.decisioning.uplift.learners import T_LEARNER, UpliftLearner, fit_uplift_model, predict_uplift
    from ml.decisioning.uplift.structured import PropensityLiftLearner
    from ml.propensity.features import prepare_features

    rows = randomised_rows(4_000, effect=0.3)
    learner = UpliftLearner("t", T_LEARNER)
    pool = feature_frame(200, seed=9)
    direct = predict_uplift(fit_uplift_model(prepare_features(rows), rows["treated"], rows[PURCHASE_LABEL], learner,
                                             seed=4), prepare_features(pool))
    wrapped = learner.fit(rows, rows["treated"], rows[PURCHASE_LABEL], seed=4)
    np.testing.assert_array_equal(wrapped.predict(pool), direct)
    assert wrapped.predict(pool.iloc[:0]).shape == (0,)
    # The propensity lift model answers the same call (its GLM needs no seed).
    lift = PropensityLiftLearner().fit(rows, rows["treated"], rows[PURCHASE_LABEL], seed=4)
    assert lift.predict(pool.assign(**{PROPENSITY_BASELINE: 0.05})).shape == (200,)
