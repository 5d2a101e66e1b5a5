import math
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from ml.experiments.design import ASSIGNMENT_COLUMNS, ExperimentDesign, assign_arms
from ml.experiments.readout import summarise_experiment
from ml.experiments.statistics import (
    mean_interval,
    rate_difference,
    sample_ratio_check,
    welch_difference,
    wilson_interval,
)
from ml.reports.experiment_report import render_experiment_report
from tests.report_reader import arm_figures, arm_sizes, lift_figures, sequential_lift_figures

DESIGN = ExperimentDesign("campaign-2025-06")


def keys(n, prefix="k"):
    return pd.Series([hashlib.sha256(f"{prefix}{i}".encode()).hexdigest() for i in range(n)])


def members_with_outcomes(n=20_000, rates=None, seed=0, design=DESIGN, unsubscribe_rates=None):
    """Assigned members with simulated outcomes; the holdout is not emailed."""
    rates = rates or {"holdout": 0.02, "control": 0.03, "treatment": 0.04}
    unsubscribe_rates = unsubscribe_rates or {"holdout": 0.0, "control": 0.004, "treatment": 0.004}
    rng = np.random.default_rng(seed)
    frame = assign_arms(keys(n), design)[["subscriber_key", "arm"]]
    sent = (frame["arm"] != "holdout").to_numpy()
    frame["opened"] = sent & (rng.random(n) < 0.25)
    frame["clicked"] = frame["opened"].to_numpy() & (rng.random(n) < 0.2)
    frame["converted"] = rng.random(n) < frame["arm"].map(rates).to_numpy()
    frame["revenue"] = np.where(frame["converted"], rng.gamma(2.0, 25.0, n), 0.0)
    # Drawn last, so the draws above stay what the figures below were written against.
    frame["unsubscribed"] = sent & (rng.random(n) < frame["arm"].map(unsubscribe_rates).to_numpy())
    frame["complained"] = sent & (rng.random(n) < 0.0005)
    return frame


# ----------------------------------------------------------------------------- design


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arms": {"holdout": 0.1, "control": 0.5, "treatment": 0.5}}, "sum to 1"),
        ({"arms": {"control": 0.5, "treatment": 0.5}}, "holdout"),
        ({"arms": {"holdout": 0.0, "control": 0.5, "treatment": 0.5}}, "share"),
        ({"arms": {}}, "arms"),
        ({"experiment_id": " "}, "experiment_id"),
    ],
)
def test_design_validation(kwargs, message):
    arguments = {"experiment_id": "x", **kwargs}
    with pytest.raises(ValueError, match=message):
        ExperimentDesign(**arguments)


def test_default_design_and_comparisons():
    assert DESIGN.arms == {"holdout": 0.10, "control": 0.45, "treatment": 0.45}
    assert DESIGN.comparisons() == (("control", "holdout"), ("treatment", "holdout"), ("treatment", "control"))


def test_design_keeps_its_own_copy_of_the_arms():
    arms = {"holdout": 0.5, "treatment": 0.5}
    design = ExperimentDesign("copy", arms=arms)
    arms["holdout"] = 0.9
    assert design.arms["holdout"] == 0.5


# ----------------------------------------------------------------------------- assignment


def test_assignment_bucket_is_sha256_of_experiment_and_key():
    assigned = assign_arms(pd.Series(["abc", "def"]), DESIGN)
    assert list(assigned.columns) == list(ASSIGNMENT_COLUMNS)
    digest = hashlib.sha256(b"campaign-2025-06:abc").digest()
    expected = (int.from_bytes(digest[:8], "big") >> 11) / 2**53
    assert assigned.loc[0, "bucket"] == expected
    assert (assigned["experiment_id"] == DESIGN.experiment_id).all()


def test_arm_follows_cumulative_shares_of_the_bucket():
    assigned = assign_arms(keys(20_000), DESIGN)
    bucket = assigned["bucket"]
    assert bucket.between(0, 1, inclusive="left").all()
    expected = np.where(bucket < 0.10, "holdout", np.where(bucket < 0.55, "control", "treatment"))
    assert (assigned["arm"].to_numpy() == expected).all()


def test_assignment_shares_match_the_design_on_100k_keys():
    shares = assign_arms(keys(100_000), DESIGN)["arm"].value_counts(normalize=True)
    for arm, share in DESIGN.arms.items():
        assert abs(shares[arm] - share) < 0.006  # about 4 standard errors


def test_assignment_is_stable_and_order_independent():
    subscriber_keys = keys(5_000)
    first = assign_arms(subscriber_keys, DESIGN)
    pd.testing.assert_frame_equal(first, assign_arms(subscriber_keys, DESIGN))
    shuffled = assign_arms(subscriber_keys.sample(frac=1, random_state=1), DESIGN)
    pd.testing.assert_frame_equal(
        first.set_index("subscriber_key").sort_index(), shuffled.set_index("subscriber_key").sort_index()
    )
    # A different design object with the same id and arms assigns identically.
    pd.testing.assert_frame_equal(first, assign_arms(subscriber_keys, ExperimentDesign("campaign-2025-06")))


def test_different_experiments_assign_independently():
    subscriber_keys = keys(50_000)
    a = assign_arms(subscriber_keys, DESIGN)["arm"]
    b = assign_arms(subscriber_keys, ExperimentDesign("campaign-2025-07"))["arm"]
    table = pd.crosstab(a, b)
    assert stats.chi2_contingency(table).pvalue > 0.001
    same_arm = (a == b).mean()
    assert abs(same_arm - (0.1**2 + 0.45**2 + 0.45**2)) < 0.01


def test_salt_reassigns_and_is_part_of_the_hash():
    subscriber_keys = keys(2_000)
    plain = assign_arms(subscriber_keys, DESIGN)
    salted = assign_arms(subscriber_keys, ExperimentDesign(DESIGN.experiment_id, salt="rerun-2"))
    assert (plain["bucket"] != salted["bucket"]).all()
    digest = hashlib.sha256(f"campaign-2025-06:rerun-2:{subscriber_keys[0]}".encode()).digest()
    assert salted.loc[0, "bucket"] == (int.from_bytes(digest[:8], "big") >> 11) / 2**53


def test_assignment_rejects_missing_or_duplicate_keys():
    with pytest.raises(ValueError, match="unique"):
        assign_arms(pd.Series(["a", "a"]), DESIGN)
    with pytest.raises(ValueError, match="missing"):
        assign_arms(pd.Series(["a", None]), DESIGN)


def test_assignment_of_no_keys_is_empty():
    assert assign_arms(pd.Series([], dtype=object), DESIGN).empty


# ----------------------------------------------------------------------------- sample ratio


def _arms_frame(counts):
    return pd.DataFrame({"arm": [arm for arm, n in counts.items() for _ in range(n)]})


def test_sample_ratio_check_flags_a_55_45_split():
    design = ExperimentDesign("srm", arms={"holdout": 0.5, "treatment": 0.5})
    result = sample_ratio_check(_arms_frame({"holdout": 5_500, "treatment": 4_500}), design)
    assert not result["passed"]
    assert result["observed"] == {"holdout": 5_500, "treatment": 4_500}
    assert result["expected"] == {"holdout": 5_000.0, "treatment": 5_000.0}
    assert result["chi2"] == pytest.approx(100.0)  # 2 * 500^2 / 5000
    assert result["p_value"] == pytest.approx(stats.chi2.sf(100.0, 1))


def test_sample_ratio_check_passes_a_fair_split():
    design = ExperimentDesign("srm", arms={"holdout": 0.5, "treatment": 0.5})
    assert sample_ratio_check(_arms_frame({"holdout": 5_040, "treatment": 4_960}), design)["passed"]
    assigned = assign_arms(keys(30_000), DESIGN)
    result = sample_ratio_check(assigned, DESIGN)
    assert result["passed"] and result["n"] == 30_000 and result["degrees_of_freedom"] == 2


def test_sample_ratio_check_counts_empty_arms_and_rejects_strangers():
    result = sample_ratio_check(_arms_frame({"control": 500, "treatment": 500}), DESIGN)
    assert result["observed"]["holdout"] == 0 and not result["passed"]
    with pytest.raises(ValueError, match="not in the design"):
        sample_ratio_check(_arms_frame({"control": 5, "mystery": 5}), DESIGN)
    other = assign_arms(keys(10), ExperimentDesign("other"))
    with pytest.raises(ValueError, match="other experiments"):
        sample_ratio_check(other, DESIGN)


# ----------------------------------------------------------------------------- intervals


def test_wilson_interval_known_values():
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.0552, abs=5e-5)
    assert high == pytest.approx(0.1744, abs=5e-5)
    assert wilson_interval(0, 50)[0] == 0.0
    assert wilson_interval(0, 50)[1] == pytest.approx(1.96**2 / (50 + 1.96**2), abs=5e-5)  # z^2 / (n + z^2)
    assert wilson_interval(50, 50)[1] == 1.0
    assert all(np.isnan(wilson_interval(0, 0)))


def test_wilson_interval_covers_the_true_rate_about_95_percent():
    rng = np.random.default_rng(42)
    true_rate, n = 0.08, 250
    successes = rng.binomial(n, true_rate, size=400)
    covered = [low <= true_rate <= high for low, high in (wilson_interval(int(s), n) for s in successes)]
    assert 0.92 <= np.mean(covered) <= 0.98


def test_mean_interval_matches_scipy_and_covers_the_truth():
    rng = np.random.default_rng(7)
    sample = rng.gamma(2.0, 10.0, 50)
    estimate = mean_interval(sample)
    expected = stats.t.interval(0.95, 49, loc=sample.mean(), scale=stats.sem(sample))
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx(expected)
    covered = []
    for _ in range(400):
        interval = mean_interval(rng.gamma(2.0, 10.0, 200))
        covered.append(interval.ci_low <= 20.0 <= interval.ci_high)
    assert 0.92 <= np.mean(covered) <= 0.98


def test_rate_difference_matches_newcombe_and_the_chi_square_test():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80, method 10.
    difference, low, high, p_value = rate_difference(56, 70, 48, 80)
    assert difference == pytest.approx(0.2)
    assert low == pytest.approx(0.0524, abs=5e-5)
    assert high == pytest.approx(0.3339, abs=5e-5)
    table = np.array([[56, 14], [48, 32]])
    assert p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert rate_difference(0, 100, 0, 100)[3] == 1.0


def test_rate_difference_interval_covers_the_true_difference():
    rng = np.random.default_rng(11)
    covered = []
    for _ in range(400):
        a, b = rng.binomial(1500, 0.05), rng.binomial(1500, 0.03)
        _, low, high, _ = rate_difference(int(a), 1500, int(b), 1500)
        covered.append(low <= 0.02 <= high)
    assert 0.92 <= np.mean(covered) <= 0.98


def test_welch_difference_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 3, 80), rng.normal(9, 5, 120)
    result = welch_difference(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.p_value == pytest.approx(reference.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert result.degrees_of_freedom == pytest.approx(reference.df)
    constant = welch_difference(np.zeros(5), np.zeros(5))
    assert (constant.difference, constant.ci_low, constant.p_value) == (0.0, 0.0, 1.0)


# ----------------------------------------------------------------------------- summary


def test_summary_counts_and_rates_on_a_hand_made_frame():
    frame = pd.DataFrame(
        {
            "subscriber_key": list("abcdefghij"),
            "arm": ["holdout"] * 2 + ["control"] * 4 + ["treatment"] * 4,
            "opened": [0, 0, 1, 1, 0, 0, 1, 1, 1, 0],
            "clicked": [0, 0, 1, 0, 0, 0, 1, 1, 0, 0],
            "converted": [1, 0, 1, 0, 0, 0, 1, 1, 0, 0],
            "unsubscribed": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
            "complained": [0] * 10,
            "revenue": [10.0, 0, 30.0, 0, 0, 0, 20.0, 40.0, 0, 0],
        }
    )
    summary = summarise_experiment(frame, DESIGN)
    table = summary.arm_table().set_index("arm")
    assert table.loc["holdout", "n"] == 2 and table.loc["treatment", "n"] == 4
    assert table.loc["control", "opens"] == 2 and table.loc["control", "open_rate"] == 0.5
    assert table.loc["treatment", "clicks"] == 2 and table.loc["treatment", "conversion_rate"] == 0.5
    assert table.loc["holdout", "revenue_per_member"] == 5.0
    assert table.loc["treatment", "revenue_total"] == 60.0
    assert table.loc["control", "conversion_rate_ci_low"] == pytest.approx(wilson_interval(1, 4)[0])
    lift = summary.comparison("treatment", "control").rates["converted"]
    assert lift.absolute_lift == pytest.approx(0.25)
    assert lift.relative_lift == pytest.approx(1.0)
    assert summary.n_members == 10


def test_summary_detects_a_real_lift_and_not_a_null_one():
    frame = members_with_outcomes(n=60_000, rates={"holdout": 0.02, "control": 0.03, "treatment": 0.04})
    summary = summarise_experiment(frame, DESIGN)
    vs_control = summary.comparison("treatment", "control").rates["converted"]
    assert vs_control.ci_low > 0 and vs_control.p_value < 0.001
    assert vs_control.ci_low <= 0.01 <= vs_control.ci_high
    vs_holdout = summary.comparison("treatment", "holdout")
    assert vs_holdout.revenue_per_member.ci_low > 0
    assert summary.sample_ratio["passed"]

    null = summarise_experiment(members_with_outcomes(n=20_000, rates=dict.fromkeys(DESIGN.arms, 0.03), seed=5), DESIGN)
    assert null.comparison("treatment", "control").rates["converted"].p_value > 0.01


def test_metrics_are_flat_and_json_serialisable():
    summary = summarise_experiment(members_with_outcomes(n=5_000), DESIGN)
    metrics = summary.to_metrics()
    json.dumps(metrics, allow_nan=False)
    assert metrics["treatment_vs_control.conversion_abs_lift"] == pytest.approx(
        summary.comparison("treatment", "control").rates["converted"].absolute_lift
    )
    for key in (
        "srm_p_value",
        "srm_passed",
        "holdout.n",
        "treatment.conversion_rate_ci_low",
        "treatment_vs_holdout.conversion_abs_lift_ci_high",
        "treatment_vs_holdout.conversion_relative_lift",
        "treatment_vs_holdout.revenue_per_member_diff_ci_low",
        "control_vs_holdout.revenue_per_member_p_value",
    ):
        assert key in metrics
    assert all(not isinstance(v, (dict, list)) for v in metrics.values())
    # The holdout is never emailed: its open rate is 0 and the relative open lift undefined.
    assert metrics["holdout.open_rate"] == 0.0
    assert metrics["treatment_vs_holdout.open_relative_lift"] is None


def test_summary_with_an_empty_arm_has_no_numbers_for_it():
    frame = members_with_outcomes(n=2_000)
    frame = frame[frame["arm"] != "control"]
    summary = summarise_experiment(frame, DESIGN)
    assert summary.arm("control").n == 0
    metrics = summary.to_metrics()
    json.dumps(metrics, allow_nan=False)
    assert metrics["control.conversion_rate"] is None
    assert metrics["treatment_vs_control.conversion_abs_lift"] is None
    assert metrics["srm_passed"] is False


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.drop(columns="revenue"), "lacks columns"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "one row per"),
        (lambda f: f.assign(arm=f["arm"].replace("control", "other")), "not in the design"),
        (lambda f: f.assign(converted=f["converted"].astype(object).where(f.index != 0, None)), "missing"),
        (lambda f: f.assign(opened=2), "boolean"),
        (lambda f: f.assign(revenue=np.where(f.index == 0, np.nan, f["revenue"])), "revenue"),
    ],
)
def test_summary_rejects_bad_input(mutate, message):
    frame = members_with_outcomes(n=300)
    with pytest.raises(ValueError, match=message):
        summarise_experiment(mutate(frame), DESIGN)


# ----------------------------------------------------------------------------- report


def test_report_is_self_contained_and_shows_everything(tmp_path):
    frame = members_with_outcomes(n=8_000)
    summary = summarise_experiment(frame, DESIGN)
    context = {"model_version": "propensity v7", "blocks_version": "v1-0123456789ab", "run_id": "<run & 42>"}
    path = render_experiment_report(summary, tmp_path / "nested" / "report.html", context=context)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert DESIGN.experiment_id in text
    for needle in ("propensity v7", "v1-0123456789ab"):
        assert needle in text
    assert "&lt;run &amp; 42&gt;" in text and "<run & 42>" not in text
    assert 'data-srm="passed"' in text and 'data-srm="failed"' not in text
    # Self-contained: no external assets or scripts; no member keys.
    for forbidden in ("<script", "<link", "src=", "http://", "https://"):
        assert forbidden not in text
    assert not any(key in text for key in frame["subscriber_key"].head(200))


def test_report_shows_for_each_arm_the_interval_of_that_arms_own_counts(tmp_path):
    """What a reader sees, recomputed from the raw counts with statsmodels directly."""
    frame = members_with_outcomes(n=8_000)
    page = render_experiment_report(summarise_experiment(frame, DESIGN), tmp_path / "r.html", context={}).read_text()
    shown = arm_figures(page)
    counts = frame.groupby("arm")[["opened", "clicked", "converted"]].agg(["sum", "size"])
    assert arm_sizes(page) == frame["arm"].value_counts().to_dict()
    for arm in DESIGN.arms:
        for metric in ("opened", "clicked", "converted"):
            successes, n = int(counts.loc[arm, (metric, "sum")]), int(counts.loc[arm, (metric, "size")])
            low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
            expected = (f"{successes / n:.2%}", f"{max(low, 0):.2%}", f"{min(high, 1):.2%}")
            assert shown[(arm, metric)] == expected, (arm, metric)
        revenue = frame.loc[frame["arm"] == arm, "revenue"]
        t_low, t_high = stats.t.interval(0.95, len(revenue) - 1, loc=revenue.mean(), scale=stats.sem(revenue))
        assert shown[(arm, "revenue_per_member")] == (f"{revenue.mean():,.2f}", f"{t_low:,.2f}", f"{t_high:,.2f}")
    lifts = lift_figures(page)
    treated, control = (frame[frame["arm"] == arm]["converted"] for arm in ("treatment", "control"))
    low, high = confint_proportions_2indep(treated.sum(), len(treated), control.sum(), len(control), method="newcomb", compare="diff")
    difference = treated.mean() - control.mean()
    assert lifts[("treatment", "control", "conversion_rate")] == (
        f"{difference * 100:+.2f} pp", f"{low * 100:+.2f} pp", f"{high * 100:+.2f} pp"
    )


def test_report_warns_loudly_on_sample_ratio_mismatch(tmp_path):
    frame = members_with_outcomes(n=8_000)
    lopsided = pd.concat([frame[frame["arm"] != "holdout"], frame[frame["arm"] == "holdout"].head(100)])
    summary = summarise_experiment(lopsided, DESIGN)
    text = render_experiment_report(summary, tmp_path / "r.html", context={}).read_text(encoding="utf-8")
    assert 'data-srm="failed"' in text and 'data-srm="passed"' not in text
    assert arm_sizes(text)["holdout"] == 100


def test_report_refuses_context_with_an_email_address(tmp_path):
    summary = summarise_experiment(members_with_outcomes(n=1_000), DESIGN)
    with pytest.raises(ValueError, match="email"):
        render_experiment_report(summary, tmp_path / "r.html", context={"owner": "someone@example.com"})
    assert not (tmp_path / "r.html").exists()


def test_the_daily_read_shows_always_valid_intervals_holm_p_values_and_chance_to_beat_from_the_counts(tmp_path):
    """Recomputed from the raw counts with the sequential, statsmodels and scipy code directly."""
    from statsmodels.stats.multitest import multipletests

    from ml.experiments.bayesian import chance_to_beat, rate_posterior
    from ml.experiments.sequential import rate_difference_sequence

    frame = members_with_outcomes(n=8_000)
    summary = summarise_experiment(frame, DESIGN)
    page = render_experiment_report(summary, tmp_path / "r.html", context={}).read_text()
    shown = sequential_lift_figures(page)
    counts = frame.groupby("arm")["converted"].agg(["sum", "size"])
    sequences = {
        arm: rate_difference_sequence(
            counts.loc[arm, "sum"], counts.loc[arm, "size"], counts.loc["holdout", "sum"], counts.loc["holdout", "size"],
            planned_sample_size=DESIGN.planned_members,
        )
        for arm in ("control", "treatment")
    }
    holm = multipletests([float(sequences[arm].p_value) for arm in ("control", "treatment")], method="holm")[1]
    for position, arm in enumerate(("control", "treatment")):
        sequence = sequences[arm]
        row = shown[(arm, "holdout", "conversion_rate")]
        assert row["sequential_ci"] == f"[{float(sequence.ci_low) * 100:+.2f} pp, {float(sequence.ci_high) * 100:+.2f} pp]"
        assert row["holm_p"] == ("< 0.001" if holm[position] < 0.001 else f"{holm[position]:.3f}")
        beat = chance_to_beat(rate_posterior(int(counts.loc[arm, "sum"]), int(counts.loc[arm, "size"])),
                              rate_posterior(int(counts.loc["holdout", "sum"]), int(counts.loc["holdout", "size"])))
        assert row["chance_to_beat"] == f"{beat:.2%}"
        # Valid under daily reading costs width: the always-valid interval contains the fixed one.
        fixed = summary.comparison(arm, "holdout").rates["converted"]
        assert fixed.sequential_ci_low < fixed.ci_low and fixed.ci_high < fixed.sequential_ci_high
    assert summary.to_metrics()["treatment_vs_control.conversion_chance_to_beat"] == pytest.approx(
        summary.comparison("treatment", "control").rates["converted"].chance_to_beat)


def test_key_figures_are_few_rounded_one_table_and_the_same_as_the_full_figures():
    summary = summarise_experiment(members_with_outcomes(n=8_000), DESIGN)
    key, table, full = summary.key_metrics(), summary.key_table(), summary.to_metrics()
    assert key == {"n_members": full["n_members"], "srm_p_value": round(full["srm_p_value"], 4), "srm_passed": full["srm_passed"]}
    assert [(row.arm, row.baseline) for row in table.itertuples()] == list(DESIGN.comparisons())
    row = table.set_index(["arm", "baseline"]).loc[("treatment", "holdout")]
    assert row["abs_lift"] == round(full["treatment_vs_holdout.conversion_abs_lift"], 4)
    low, high = full["treatment_vs_holdout.conversion_sequential_ci_low"], full["treatment_vs_holdout.conversion_sequential_ci_high"]
    assert row["always_valid_ci"] == f"[{low:+.4f}, {high:+.4f}]"
    assert row["holm_p_value"] == round(full["treatment_vs_holdout.conversion_sequential_p_value_holm"], 4)
    assert row["verdict"] == ""  # verdicts are against control only
    against_control = table.set_index(["arm", "baseline"]).loc[("treatment", "control")]
    assert against_control["verdict"] == full["treatment_vs_control.verdict"] == "keep_running"


# ----------------------------------------------------------------------------- verdicts and power


def test_an_arm_that_raises_unsubscribes_is_stopped_by_its_guardrail_whatever_its_lift():
    frame = members_with_outcomes(n=60_000, rates={"holdout": 0.02, "control": 0.03, "treatment": 0.05},
                                  unsubscribe_rates={"holdout": 0.0, "control": 0.004, "treatment": 0.012})
    summary = summarise_experiment(frame, DESIGN)
    (verdict,) = summary.verdicts
    assert (verdict.arm, verdict.baseline, verdict.decision.verdict) == ("treatment", "control", "stop")
    assert summary.breached_guardrails() == {"treatment": ("unsubscribe_rate",)}
    unsubscribes = summary.comparison("treatment", "control").rates["unsubscribed"]
    assert unsubscribes.sequential_ci_low > 0
    assert f"{unsubscribes.absolute_lift:+.4g}" in verdict.decision.reason
    # The same lift without the harm ships.
    fine = summarise_experiment(members_with_outcomes(n=60_000, rates={"holdout": 0.02, "control": 0.03,
                                                                        "treatment": 0.05}), DESIGN)
    assert fine.verdicts[0].decision.verdict == "ship" and fine.breached_guardrails() == {}


def test_the_power_analysis_day_is_the_first_with_the_target_power_and_simulation_agrees():
    from statsmodels.stats.proportion import proportions_ztest

    from ml.experiments.power import days_to_detect

    analysis = days_to_detect(4_000, 4_000, baseline_daily_rate=0.002, relative_mde=0.3)
    day = analysis.days_needed
    assert day is not None and analysis.power_by_day[-1] >= 0.8 > analysis.power_by_day[-2]
    # Monte Carlo at that day: the two-proportion z-test rejects about 80% of the time.
    rng = np.random.default_rng(0)
    control = 1 - (1 - 0.002) ** day
    rejections = 0
    for _ in range(2_000):
        successes = [rng.binomial(4_000, control * 1.3), rng.binomial(4_000, control)]
        rejections += proportions_ztest(successes, [4_000, 4_000])[1] < 0.05
    assert 0.78 <= rejections / 2_000 <= 0.86
    too_small = days_to_detect(50, 50, baseline_daily_rate=0.0001, relative_mde=0.05)
    assert too_small.days_needed is None and "too small" in too_small.describe()
    with pytest.raises(ValueError, match="relative_mde"):
        days_to_detect(10, 10, baseline_daily_rate=0.01, relative_mde=0)


def test_the_report_states_each_verdict_with_the_guardrail_figures_from_the_counts(tmp_path):
    from ml.experiments.power import days_to_detect
    from ml.experiments.sequential import rate_difference_sequence
    from tests.report_reader import verdicts

    frame = members_with_outcomes(n=60_000, rates={"holdout": 0.02, "control": 0.03, "treatment": 0.05},
                                  unsubscribe_rates={"holdout": 0.0, "control": 0.004, "treatment": 0.012})
    power = days_to_detect(27_000, 27_000, baseline_daily_rate=0.001, relative_mde=0.1)
    page = render_experiment_report(summarise_experiment(frame, DESIGN), tmp_path / "r.html", context={},
                                    power=power).read_text()
    verdict, reason = verdicts(page)[("treatment", "control")]
    assert verdict == "stop" and "unsubscribe_rate" in reason
    # The difference and always-valid interval in the reason are the ones the counts give.
    arms = {arm: frame[frame["arm"] == arm]["unsubscribed"] for arm in ("treatment", "control")}
    sequence = rate_difference_sequence(
        int(arms["treatment"].sum()), len(arms["treatment"]), int(arms["control"].sum()), len(arms["control"]),
        planned_sample_size=DESIGN.planned_members,
    )
    difference = arms["treatment"].mean() - arms["control"].mean()
    low, high = float(sequence.ci_low), float(sequence.ci_high)
    assert f"difference {difference:+.4g}, always-valid CI [{low:+.4g}, {high:+.4g}]" in reason
    assert f'data-power-days="{power.days_needed}"' in page


def test_the_report_shows_cuped_differences_and_the_variance_they_remove_from_the_members_own_values(tmp_path):
    from ml.experiments.cuped import cuped_difference
    from tests.report_reader import report_tables, shown_figure

    rng = np.random.default_rng(3)
    frame = members_with_outcomes(n=20_000)
    # Buyers before tend to buy again: a covariate the assignment could not have changed.
    frame["pre_period_converted"] = np.where(frame["converted"], rng.random(len(frame)) < 0.5,
                                             rng.random(len(frame)) < 0.05)
    frame["pre_period_revenue"] = np.where(frame["pre_period_converted"], rng.gamma(2.0, 25.0, len(frame)), 0.0)
    summary = summarise_experiment(frame, DESIGN)
    page = render_experiment_report(summary, tmp_path / "r.html", context={}).read_text()
    rows = {(r["attrs"]["data-arm"], r["attrs"]["data-baseline"], r["attrs"]["data-metric"]): r["cells"]
            for r in report_tables(page)["cuped"]}
    treated, control = (frame[frame["arm"] == arm] for arm in ("treatment", "control"))
    expected = cuped_difference(treated["converted"].astype(float), treated["pre_period_converted"].astype(float),
                                control["converted"].astype(float), control["pre_period_converted"].astype(float))
    cells = rows[("treatment", "control", "converted")]
    assert shown_figure(cells[3]["text"]) == (
        f"{expected.difference * 100:+.2f} pp", f"{expected.ci_low * 100:+.2f} pp", f"{expected.ci_high * 100:+.2f} pp")
    assert cells[4]["text"].strip() == f"{expected.variance_reduction:.2%}" and expected.variance_reduction > 0.05
    assert len(rows) == 2 * len(DESIGN.comparisons())
    # Without pre-period outcomes there is nothing to adjust, and no table.
    plain = render_experiment_report(summarise_experiment(members_with_outcomes(n=2_000), DESIGN),
                                     tmp_path / "p.html", context={}).read_text()
    assert 'id="cuped"' not in plain


def test_member_outcomes_read_guardrail_events_and_the_pre_period_by_their_own_boundaries():
    from datetime import datetime

    from ml.experiments.outcomes import PRE_PERIOD_DAYS, member_outcomes

    since, until = datetime(2026, 7, 1), datetime(2026, 7, 7, 23, 59, 59)
    members = pd.DataFrame({"subscriber_key": ["a", "b", "c"], "arm": ["treatment", "control", "holdout"]})
    sends = pd.DataFrame({"send_id": ["s1", "s2"], "subscriber_key": ["a", "b"],
                          "sent_at": [datetime(2026, 7, 2), datetime(2026, 7, 2)]})
    events = pd.DataFrame({"send_id": ["s1", "s1", "s2"], "event_type": ["open", "unsubscribe", "complaint"]})
    start = pd.Timestamp(since) - pd.Timedelta(days=PRE_PERIOD_DAYS)
    orders = pd.DataFrame({
        "subscriber_key": ["a", "a", "b", "c"],
        # a: one just inside the pre-period, one in the period; b: one a second too early; c: at `since`.
        "ordered_at": [start, datetime(2026, 7, 3), start - pd.Timedelta(seconds=1), since],
        "amount_usd": [10.0, 20.0, 30.0, 40.0],
    })
    out = member_outcomes(members, sends, events, orders, since=since, until=until).set_index("subscriber_key")
    assert out.loc["a", ["unsubscribed", "complained", "opened"]].tolist() == [True, False, True]
    assert out.loc["b", ["unsubscribed", "complained"]].tolist() == [False, True]
    assert out[["pre_period_converted", "pre_period_revenue"]].to_dict("index") == {
        "a": {"pre_period_converted": True, "pre_period_revenue": 10.0},
        "b": {"pre_period_converted": False, "pre_period_revenue": 0.0},
        "c": {"pre_period_converted": False, "pre_period_revenue": 0.0},
    }
    assert out["revenue"].to_dict() == {"a": 20.0, "b": 0.0, "c": 40.0}


# --- empty is a state: nobody assigned, nobody read -----------------------------------------------


def test_no_assignments_pass_the_sample_ratio_check_with_nothing_to_test():
    result = sample_ratio_check(assign_arms(pd.Series([], dtype=object), DESIGN), DESIGN)
    assert result["passed"] is True and result["n"] == 0
    assert math.isnan(result["p_value"]) and math.isnan(result["chi2"])
    assert result["observed"] == {arm: 0 for arm in DESIGN.arm_names}


def test_a_readout_of_no_members_keeps_running_and_renders(tmp_path):
    from ml.experiments.readout import verdict_rows

    summary = summarise_experiment(members_with_outcomes(n=10).iloc[:0], DESIGN)
    assert summary.n_members == 0 and all(arm.n == 0 for arm in summary.arms)
    json.dumps(summary.to_metrics(), allow_nan=False)
    verdicts = verdict_rows(summary, "2026-07-01", DESIGN.experiment_id)
    assert set(verdicts["verdict"]) == {"keep_running"}
    assert render_experiment_report(summary, tmp_path / "report.html", context={}, power=None).exists()
