"""Statistical correctness of the daily readout, against known truths (issue 11, section 2).

Every simulation is seeded and vectorised, so the figures below are exact for this code and
these seeds; the tolerances are set from the Monte Carlo error of each check, not fitted.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from ml.experiments.bayesian import (
    BetaPrior,
    chance_to_beat,
    compare_rates_bayesian,
    expected_loss,
    rate_posterior,
)
from ml.experiments.comparisons import compare_arms_with_control, holm_adjusted
from ml.experiments.cuped import cuped_comparison, cuped_difference
from ml.experiments.decision import Decision, DecisionRule, Guardrail, MetricInterval, decide
from ml.experiments.sequential import (
    always_valid_p_value,
    confidence_sequence_halfwidth,
    daily_rate_difference_sequence,
    rate_difference_sequence,
    sequential_rho,
)
from ml.simulator import behaviour
from ml.simulator.config import AudienceConfig
from ml.simulator.population import draw_people
from ml.vocabulary import EXPERIMENT_VERDICTS

# ----------------------------------------------------------------------------- sequential


def test_rho_and_half_width_follow_waudby_smith_et_al():
    # eq. 161 and eq. 9 at alpha = 0.05, planned N = 10,000, evaluated by hand.
    rho = sequential_rho(10_000, 0.95)
    assert rho == pytest.approx(math.sqrt((-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 10_000))
    assert rho == pytest.approx(0.0281712, rel=1e-6)
    n_rho2 = 10_000 * rho**2
    by_hand = 0.01 * math.sqrt(2 * (n_rho2 + 1) * math.log(math.sqrt(n_rho2 + 1) / 0.05) / n_rho2)
    assert float(confidence_sequence_halfwidth(0.01, 10_000, rho=rho)) == pytest.approx(by_hand, rel=1e-12)
    # About 3.04 standard errors at the planned size, where a fixed-horizon interval is 1.96.
    assert by_hand == pytest.approx(0.0303521, rel=1e-5)


def test_the_sequence_is_wider_than_a_fixed_interval_and_narrowest_near_the_planned_size():
    rho = sequential_rho(10_000)
    n = np.arange(100, 100_001, 100)
    standard_errors_wide = confidence_sequence_halfwidth(1.0, n, rho=rho)
    assert (standard_errors_wide > stats.norm.ppf(0.975)).all()
    # eq. 161 is the closed-form approximation of the minimiser, so the narrowest point is
    # near N, not exactly at it.
    assert n[standard_errors_wide.argmin()] == pytest.approx(10_000, rel=0.05)
    assert np.isnan(confidence_sequence_halfwidth(1.0, 0, rho=rho))


def test_the_always_valid_p_value_is_below_alpha_exactly_when_the_sequence_excludes_zero():
    rng = np.random.default_rng(11)
    estimate = rng.normal(0, 0.01, 5_000)
    standard_error = rng.uniform(0.001, 0.01, 5_000)
    n = rng.integers(10, 50_000, 5_000)
    rho = sequential_rho(20_000)
    half_width = confidence_sequence_halfwidth(standard_error, n, rho=rho)
    p_value = always_valid_p_value(estimate, standard_error, n, rho=rho)
    excludes_zero = np.abs(estimate) > half_width
    assert 500 < excludes_zero.sum() < 4_500  # both sides of the boundary are exercised
    np.testing.assert_array_equal(p_value < 0.05, excludes_zero)
    assert (p_value <= 1).all() and (p_value > 0).all()
    assert always_valid_p_value(0.0, 0.0, 100, rho=rho) == 1.0


def _daily_peeking_simulation(runs, days, per_arm_per_day, rate, baseline_rate, seed):
    """Cumulative counts of `runs` two-arm experiments read on each of `days` days."""
    rng = np.random.default_rng(seed)
    daily = np.stack(
        [rng.binomial(per_arm_per_day, rate, (runs, days)), rng.binomial(per_arm_per_day, baseline_rate, (runs, days))]
    )
    successes = daily.cumsum(axis=2)
    n = np.broadcast_to(per_arm_per_day * np.arange(1, days + 1), successes[0].shape)
    return successes[0], successes[1], n


AA_RUNS, AA_DAYS, AA_PER_ARM_PER_DAY, AA_RATE = 1_000, 28, 400, 0.03


def test_sequential_intervals_hold_the_true_difference_under_daily_peeking_and_naive_ones_do_not():
    """A/A: 1,000 seeded runs read every day for 28 days, 400 people per arm per day, rate 3%."""
    successes, baseline_successes, n = _daily_peeking_simulation(
        AA_RUNS, AA_DAYS, AA_PER_ARM_PER_DAY, AA_RATE, AA_RATE, seed=2025
    )
    sequence = rate_difference_sequence(
        successes, n, baseline_successes, n, planned_sample_size=2 * AA_PER_ARM_PER_DAY * AA_DAYS
    )
    sequential_covers = (sequence.ci_low <= 0) & (sequence.ci_high >= 0)
    # The fixed-horizon interval the one-shot readout prints (Newcombe), read on every day.
    naive_low, naive_high = confint_proportions_2indep(
        successes, n, baseline_successes, n, method="newcomb", compare="diff", alpha=0.05
    )
    naive_covers = (naive_low <= 0) & (naive_high >= 0)

    sequential_joint = sequential_covers.all(axis=1).mean()
    naive_joint = naive_covers.all(axis=1).mean()
    # Joint coverage: the share of runs whose interval held 0 on every one of the 28 days.
    assert sequential_joint == pytest.approx(0.987, abs=1e-9)
    assert naive_joint == pytest.approx(0.736, abs=1e-9)
    assert sequential_joint >= 0.95
    # 95% coverage with 1,000 runs has a binomial standard error of 0.7 points, so 0.736
    # is far below what a valid daily readout allows, and far below the sequence.
    assert naive_joint < 0.90 < sequential_joint
    # Read once, on any single day, the naive interval is fine: the failure is the peeking.
    assert naive_covers[:, -1].mean() == pytest.approx(0.95, abs=0.02)


def test_sequential_intervals_cover_a_real_difference_under_daily_peeking():
    """A/B with a true lift of +0.8 pp on 3%, 500 runs of 21 days: coverage of the true difference."""
    successes, baseline_successes, n = _daily_peeking_simulation(500, 21, 1_000, 0.038, 0.030, 7)
    sequence = rate_difference_sequence(successes, n, baseline_successes, n, planned_sample_size=2 * 1_000 * 21)
    covers = (sequence.ci_low <= 0.008) & (sequence.ci_high >= 0.008)
    assert covers.all(axis=1).mean() == pytest.approx(0.992, abs=1e-9)
    naive_low, naive_high = confint_proportions_2indep(
        successes, n, baseline_successes, n, method="newcomb", compare="diff"
    )
    assert ((naive_low <= 0.008) & (naive_high >= 0.008)).all(axis=1).mean() == pytest.approx(0.75, abs=1e-9)
    # ... and it is not uselessly wide: by the planned size 94.6% of runs see the lift.
    assert (sequence.ci_low[:, -1] > 0).mean() == pytest.approx(0.946, abs=1e-9)


def test_daily_sequence_reads_cumulative_counts_per_day():
    daily_counts = pd.DataFrame(
        {
            "day": [3, 1, 2, 1, 2, 3],
            "arm": ["treatment", "treatment", "treatment", "control", "control", "control"],
            "successes": [95, 30, 61, 24, 50, 70],
            "n": [3000, 1000, 2000, 1000, 2000, 3000],
        }
    )
    out = daily_rate_difference_sequence(daily_counts, arm="treatment", baseline="control", planned_sample_size=6000)
    assert out["day"].tolist() == [1, 2, 3]
    assert out["difference"].tolist() == pytest.approx([0.006, 0.0055, 25 / 3000])
    # Day 3 by hand: the unpooled standard error, the half-width at n = 6,000 = N.
    p1, p0 = 95 / 3000, 70 / 3000
    se = math.sqrt(p1 * (1 - p1) / 3000 + p0 * (1 - p0) / 3000)
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 6000
    half = se * math.sqrt(2 * (6000 * rho2 + 1) * math.log(math.sqrt(6000 * rho2 + 1) / 0.05) / (6000 * rho2))
    assert out.loc[2, "ci_low"] == pytest.approx(25 / 3000 - half, rel=1e-10)
    assert out.loc[2, "ci_high"] == pytest.approx(25 / 3000 + half, rel=1e-10)
    assert out["excludes_zero"].tolist() == [False, False, False]
    assert out.loc[2, "p_value"] > 0.05

    falling = daily_counts.assign(n=[3000, 1000, 900, 1000, 2000, 3000])
    with pytest.raises(ValueError, match="not cumulative"):
        daily_rate_difference_sequence(falling, arm="treatment", baseline="control", planned_sample_size=6000)
    with pytest.raises(ValueError, match="no rows for arm 'variant_b'"):
        daily_rate_difference_sequence(daily_counts, arm="variant_b", baseline="control", planned_sample_size=6000)


def test_sequence_is_blank_for_an_arm_without_members_and_rejects_impossible_counts():
    sequence = rate_difference_sequence([0, 5], [0, 100], [0, 3], [0, 100], planned_sample_size=1000)
    assert np.isnan(sequence.ci_low[0]) and np.isnan(sequence.p_value[0])
    assert sequence.difference[1] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="between 0 and n"):
        rate_difference_sequence([5], [4], [0], [10], planned_sample_size=1000)
    with pytest.raises(ValueError, match="planned_sample_size"):
        sequential_rho(0)


# ----------------------------------------------------------------------------- several arms

ARM_COUNTS = pd.DataFrame(
    {
        "arm": ["control", "variant_a", "variant_b", "variant_c"],
        "successes": [300, 345, 330, 372],
        "n": [10_000, 10_000, 9_900, 10_100],
    }
)


def test_holm_adjusted_p_values_equal_statsmodels():
    out = compare_arms_with_control(ARM_COUNTS, control="control", planned_sample_size=40_000)
    assert out["arm"].tolist() == ["variant_a", "variant_b", "variant_c"]
    raw = [
        proportions_ztest([s, 300], [n, 10_000])[1]
        for s, n in zip(ARM_COUNTS["successes"][1:], ARM_COUNTS["n"][1:])
    ]
    np.testing.assert_allclose(out["p_value"], raw, rtol=1e-12)
    reject, holm, _, _ = multipletests(raw, alpha=0.05, method="holm")
    np.testing.assert_allclose(out["p_value_holm"], holm, rtol=1e-12)
    assert out["significant_holm"].tolist() == reject.tolist()
    # The figures of this example: only variant_c survives the adjustment.
    assert out["p_value"].round(4).tolist() == [0.0717, 0.1793, 0.0071]
    assert out["p_value_holm"].round(4).tolist() == [0.1434, 0.1793, 0.0212]
    assert out["significant_holm"].tolist() == [False, False, True]
    # Holm on the always-valid p-values, and each arm's sequence, as computed alone.
    np.testing.assert_allclose(
        out["sequential_p_value_holm"], multipletests(out["sequential_p_value"], method="holm")[1], rtol=1e-12
    )
    alone = rate_difference_sequence(372, 10_100, 300, 10_000, planned_sample_size=40_000)
    assert out.loc[2, "sequential_ci_low"] == pytest.approx(float(alone.ci_low))
    # Read daily, variant_c's evidence is not yet enough: the price of peeking.
    assert out.loc[2, "sequential_ci_low"] < 0 < out.loc[2, "ci_low"]


def test_holm_by_hand_and_with_an_empty_arm():
    # p sorted 0.01 < 0.03 < 0.04: 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04).
    adjusted, rejected = holm_adjusted([0.01, 0.04, 0.03])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06])
    assert rejected.tolist() == [True, False, False]
    adjusted, rejected = holm_adjusted([0.01, np.nan, 0.04])
    assert np.isnan(adjusted[1]) and not rejected[1]
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.04])


# ----------------------------------------------------------------------------- Bayesian


@pytest.mark.parametrize(
    "arm_counts, control_counts, prior",
    [
        ((30, 1_000), (25, 1_000), BetaPrior()),
        ((330, 10_000), (300, 10_000), BetaPrior()),
        ((3, 50), (5, 60), BetaPrior(2.5, 40.0)),  # a declared, non-integer prior and few units
        ((1_200, 40_000), (1_200, 40_000), BetaPrior()),
    ],
)
def test_chance_to_beat_and_expected_loss_match_monte_carlo(arm_counts, control_counts, prior):
    arm, control = rate_posterior(*arm_counts, prior), rate_posterior(*control_counts, prior)
    draws = 1_000_000
    rng = np.random.default_rng(20)
    arm_draws, control_draws = arm.rvs(draws, random_state=rng), control.rvs(draws, random_state=rng)
    beats = arm_draws > control_draws
    shortfall = np.maximum(control_draws - arm_draws, 0)
    # Within 4 Monte Carlo standard errors (a 6e-5 chance of a false failure per figure).
    chance = chance_to_beat(arm, control)
    assert abs(chance - beats.mean()) < 4 * math.sqrt(beats.mean() * (1 - beats.mean()) / draws)
    loss = expected_loss(arm, control)
    assert abs(loss - shortfall.mean()) < 4 * shortfall.std() / math.sqrt(draws)
    # Exact identities: the two chances sum to 1, and the losses differ by the difference of means.
    assert chance + chance_to_beat(control, arm) == pytest.approx(1, abs=1e-9)
    assert expected_loss(control, arm) - loss == pytest.approx(arm.mean() - control.mean(), abs=1e-10)


def test_chance_to_beat_holds_when_the_control_is_far_narrower_than_the_arm():
    """A 12-unit arm against a million-unit control: inside the arm's wide range the control's
    distribution function is a step 0.0003 wide (scipy's adaptive quad was 2e-4 off here).
    The reference swaps the roles: the arm's smooth tail integrated over the control's bulk."""
    arm, control = rate_posterior(1, 12), rate_posterior(97_989, 1_037_464)
    x = np.linspace(control.ppf(1e-14), control.isf(1e-14), 200_001)
    reference = integrate.simpson(control.pdf(x) * arm.sf(x), x=x)
    assert chance_to_beat(arm, control) == pytest.approx(reference, abs=1e-9)
    assert chance_to_beat(arm, control) + chance_to_beat(control, arm) == pytest.approx(1, abs=1e-9)


def test_bayesian_comparison_per_arm():
    out = compare_rates_bayesian(ARM_COUNTS, control="control")
    assert out["arm"].tolist() == ["variant_a", "variant_b", "variant_c"]
    # variant_c: Beta(373, 9729) against Beta(301, 9701).
    row = out.iloc[2]
    assert row["posterior_mean"] == pytest.approx(373 / 10_102)
    assert (row["credible_low"], row["credible_high"]) == pytest.approx(stats.beta(373, 9729).interval(0.95))
    assert row["chance_to_beat_control"] == pytest.approx(
        chance_to_beat(stats.beta(373, 9729), stats.beta(301, 9701)), abs=1e-12
    )
    assert row["chance_to_beat_control"] > 0.99
    assert out["chance_to_beat_control"].round(3).tolist() == [0.964, 0.91, 0.996]
    with pytest.raises(ValueError, match="positive"):
        BetaPrior(0, 1)
    with pytest.raises(ValueError, match="control arm"):
        compare_rates_bayesian(ARM_COUNTS, control="holdout")


# ----------------------------------------------------------------------------- CUPED


def _revenue_like(rng, n, rho):
    """Pre-period (sd 2) and in-period (sd 3) outcomes with correlation `rho`."""
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
    return 8 + 2 * x, 10 + 3 * y


def test_cuped_is_unbiased_in_a_a_and_for_a_real_effect():
    runs, n = 400, 1_000
    rng = np.random.default_rng(5)
    for true_effect in (0.0, 0.25):
        estimates, covered = [], []
        for _ in range(runs):
            x1, y1 = _revenue_like(rng, n, 0.7)
            x0, y0 = _revenue_like(rng, n, 0.7)
            estimate = cuped_difference(y1 + true_effect, x1, y0, x0)
            estimates.append(estimate.difference)
            covered.append(estimate.ci_low <= true_effect <= estimate.ci_high)
        estimates = np.array(estimates)
        monte_carlo_se = estimates.std(ddof=1) / math.sqrt(runs)
        assert abs(estimates.mean() - true_effect) < 4 * monte_carlo_se
        # The adjusted interval keeps its level: 95% within 4 binomial SEs of 400 runs.
        assert abs(np.mean(covered) - 0.95) < 4 * math.sqrt(0.95 * 0.05 / runs)
        # The adjusted estimates scatter less: sd(Y)*sqrt(2/n)*sqrt(1-0.49) = 0.0958.
        assert estimates.std(ddof=1) == pytest.approx(3 * math.sqrt(2 / n) * math.sqrt(1 - 0.49), rel=0.1)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, 0.9])
def test_cuped_variance_reduction_is_the_squared_correlation(rho):
    rng = np.random.default_rng(int(rho * 10))
    x1, y1 = _revenue_like(rng, 20_000, rho)
    x0, y0 = _revenue_like(rng, 20_000, rho)
    estimate = cuped_difference(y1, x1, y0, x0)
    # With 40,000 people the sample correlation is within about 0.005 of rho.
    assert estimate.variance_reduction == pytest.approx(rho**2, abs=0.012)
    assert estimate.theta == pytest.approx(rho * 3 / 2, abs=0.03)  # cov/var = rho * sd(Y) / sd(X)
    unadjusted_width = estimate.unadjusted_ci_high - estimate.unadjusted_ci_low
    adjusted_width = estimate.ci_high - estimate.ci_low
    assert adjusted_width / unadjusted_width == pytest.approx(math.sqrt(1 - estimate.variance_reduction), rel=1e-3)


def test_cuped_narrows_the_interval_on_the_simulators_people():
    """The simulator's own people and open model: opens of four e-mails, eight before as covariate."""
    people = draw_people(AudienceConfig(seed=42), np.arange(40_000))
    match = behaviour.category_match(people.affinity, behaviour.category_codes(["apparel"])[0])
    open_probability = behaviour.open_probability(
        people.engagement, match, np.zeros(len(people)), np.zeros(len(people), dtype=bool)
    )
    rng = np.random.default_rng(3)
    treated = rng.random(len(people)) < 0.5
    pre_period_opens = rng.binomial(8, open_probability)
    opens = rng.binomial(4, np.clip(open_probability * np.where(treated, 1.05, 1.0), 0, 1))
    members = pd.DataFrame(
        {"arm": np.where(treated, "treatment", "control"), "opens": opens, "pre_period_opens": pre_period_opens}
    )
    estimate = cuped_comparison(
        members, arm="treatment", baseline="control", outcome="opens", pre_period_outcome="pre_period_opens"
    )
    assert estimate.variance_reduction == pytest.approx(np.corrcoef(pre_period_opens, opens)[0, 1] ** 2, abs=0.01)
    assert estimate.variance_reduction == pytest.approx(0.27, abs=0.02)
    assert estimate.ci_high - estimate.ci_low < 0.86 * (estimate.unadjusted_ci_high - estimate.unadjusted_ci_low)
    same = cuped_difference(
        opens[treated], pre_period_opens[treated], opens[~treated], pre_period_opens[~treated]
    )
    assert same == estimate

    # A 28-day conversion with the 120 days' order count before it as covariate: the
    # simulator's purchase hazards differ between people far less than a rare yes/no event
    # varies, so CUPED removes only about 1% of the variance here.
    hazard = people.base_purchase_hazard
    pre_period_orders = rng.poisson(120 * hazard)
    converted = rng.random(len(people)) < 1 - np.exp(-28 * hazard)
    conversion = cuped_difference(
        converted[treated], pre_period_orders[treated], converted[~treated], pre_period_orders[~treated]
    )
    squared_correlation = np.corrcoef(pre_period_orders, converted)[0, 1] ** 2
    assert conversion.variance_reduction == pytest.approx(squared_correlation, abs=0.003)
    assert 0.005 < conversion.variance_reduction < 0.02


def test_cuped_with_a_constant_covariate_adjusts_nothing():
    rng = np.random.default_rng(1)
    y1, y0 = rng.normal(size=200), rng.normal(size=200)
    estimate = cuped_difference(y1, np.ones(200), y0, np.ones(200))
    assert estimate.theta == 0.0 and estimate.variance_reduction == 0.0
    assert estimate.difference == pytest.approx(estimate.unadjusted_difference)
    with pytest.raises(ValueError, match="finite"):
        cuped_difference(y1, np.full(200, np.nan), y0, np.ones(200))


# ----------------------------------------------------------------------------- decision rule

RULE = DecisionRule(
    primary_metric="conversion_rate",
    guardrails=(Guardrail("unsubscribe_rate"), Guardrail("complaint_rate")),
)
HARMLESS = MetricInterval(0.0, -0.001, 0.001)


def _intervals(primary, unsubscribe=HARMLESS, complaint=HARMLESS):
    return {"conversion_rate": primary, "unsubscribe_rate": unsubscribe, "complaint_rate": complaint}


@pytest.mark.parametrize(
    "primary, unsubscribe, srm_passed, verdict, reason",
    [
        (MetricInterval(0.004, 0.001, 0.007), HARMLESS, True, "ship", "beats control"),
        (MetricInterval(0.004, 0.0, 0.008), HARMLESS, True, "keep_running", "still includes 0"),  # touching 0
        (MetricInterval(-0.004, -0.008, 0.0), HARMLESS, True, "keep_running", "still includes 0"),
        (MetricInterval(-0.004, -0.007, -0.001), HARMLESS, True, "stop", "worse than control"),
        (MetricInterval(0.004, 0.001, 0.007), MetricInterval(0.002, 0.0005, 0.0035), True, "stop", "unsubscribe_rate"),
        # Fewer unsubscribes than control is no breach.
        (MetricInterval(0.004, 0.001, 0.007), MetricInterval(-0.002, -0.0035, -0.0005), True, "ship", "beats control"),
        (MetricInterval(0.004, 0.001, 0.007), HARMLESS, False, "stop", "sample-ratio"),
        (MetricInterval(math.nan, math.nan, math.nan), HARMLESS, True, "keep_running", "no interval yet"),
    ],
)
def test_decision_rule_at_its_edges(primary, unsubscribe, srm_passed, verdict, reason):
    decision = decide(RULE, _intervals(primary, unsubscribe), srm_passed=srm_passed)
    assert decision.verdict == verdict and verdict in EXPERIMENT_VERDICTS
    assert reason in decision.reason


def test_decision_names_every_breached_guardrail_and_needs_every_declared_metric():
    breach = MetricInterval(0.001, 0.0002, 0.0018)
    decision = decide(RULE, _intervals(MetricInterval(0.004, 0.001, 0.007), breach, breach), srm_passed=True)
    assert decision == Decision(
        "stop",
        "guardrail breached, the arm harms unsubscribe_rate, complaint_rate: "
        "unsubscribe_rate difference +0.001, always-valid CI [+0.0002, +0.0018]; "
        "complaint_rate difference +0.001, always-valid CI [+0.0002, +0.0018]",
        ("unsubscribe_rate", "complaint_rate"),
    )
    lower_is_better = DecisionRule("unsubscribe_rate", guardrails=(), primary_higher_is_better=False)
    fewer_unsubscribes = {"unsubscribe_rate": MetricInterval(-0.002, -0.003, -0.001)}
    assert decide(lower_is_better, fewer_unsubscribes, srm_passed=True).verdict == "ship"
    with pytest.raises(ValueError, match="complaint_rate"):
        decide(RULE, {"conversion_rate": HARMLESS, "unsubscribe_rate": HARMLESS}, srm_passed=True)
    with pytest.raises(ValueError, match="once"):
        DecisionRule("conversion_rate", guardrails=(Guardrail("conversion_rate"),))
    with pytest.raises(ValueError, match="harmful_direction"):
        Guardrail("unsubscribe_rate", "up")


def test_decision_on_a_simulated_daily_experiment_ships_only_once_the_sequence_clears_zero():
    """A real +0.8 pp lift read daily: keep running until the always-valid CI clears 0, then ship."""
    successes, baseline_successes, n = _daily_peeking_simulation(1, 28, 500, 0.038, 0.030, 12)
    counts = pd.DataFrame(
        {
            "day": np.tile(np.arange(1, 29), 2),
            "arm": ["treatment"] * 28 + ["control"] * 28,
            "successes": np.concatenate([successes[0], baseline_successes[0]]),
            "n": np.concatenate([n[0], n[0]]),
        }
    )
    daily = daily_rate_difference_sequence(counts, arm="treatment", baseline="control", planned_sample_size=28_000)
    verdicts = [
        decide(RULE, _intervals(MetricInterval(row.difference, row.ci_low, row.ci_high)), srm_passed=True).verdict
        for row in daily.itertuples()
    ]
    first_ship = verdicts.index("ship")
    assert set(verdicts[:first_ship]) == {"keep_running"}
    assert daily.loc[first_ship, "ci_low"] > 0 >= daily.loc[first_ship - 1, "ci_low"]
    assert first_ship + 1 == 24  # the day, for this seed


@pytest.mark.parametrize("seed", range(40))
def test_holm_equals_statsmodels_on_random_families(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 8))
    # small p-values, any p-values, and ties (rounded)
    p_values = [rng.uniform(0, 0.2, size), rng.uniform(0, 1, size), np.round(rng.uniform(0, 0.1, size), 2)][seed % 3]
    alpha = [0.05, 0.1, 0.01][seed % 3]
    adjusted, rejected = holm_adjusted(p_values, alpha)
    reject, corrected, _, _ = multipletests(p_values, alpha=alpha, method="holm")
    np.testing.assert_allclose(adjusted, corrected, rtol=1e-12)
    assert rejected.tolist() == reject.tolist()
