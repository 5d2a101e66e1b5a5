"""Always-valid confidence intervals: readouts that stay valid when read every day.

A fixed-horizon 95% interval read once a day for four weeks excludes a true difference of 0
on at least one day far more often than 5% of the time. A confidence sequence is a family of
intervals, one per look, that holds the true difference *on every look at once* with
probability at least the confidence level, so it can be read daily and acted on any day.

The form used here is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha,
Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences"
(Annals of Statistics, 2024; arXiv:2103.06476), the one GrowthBook documents for its
sequential testing. It is Robbins' normal-mixture boundary applied to an estimate that is
asymptotically normal, with

    half-width = sigma_hat * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * ln( sqrt(n rho^2 + 1) / alpha ) )

(their eq. 9 / Theorem 2.2, two-sided), where n is the number of units seen so far (both arms),
sigma_hat^2 = n * SE^2 is the per-unit variance of the estimate, and rho is a tuning parameter
chosen so that the sequence is narrowest at a planned sample size N:

    rho^2 = ( -2 ln(alpha) + ln(-2 ln(alpha) + 1) ) / N            (their eq. 161)

The matching always-valid p-value is 1 / e-value, with the normal-mixture e-value

    e = exp( rho^2 n (theta_hat / sigma_hat)^2 / (2 (n rho^2 + 1)) ) / sqrt(n rho^2 + 1)

(their eq. 155); p < alpha exactly when the sequence excludes 0. None of this is in
statsmodels or scipy; the standard errors it is fed come from statsmodels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import test_proportions_2indep

SEQUENTIAL_METHOD = "asymptotic confidence sequence (Waudby-Smith et al. 2024, normal mixture)"

DAILY_COUNT_COLUMNS = ("day", "arm", "successes", "n")


def sequential_rho(planned_sample_size: float, confidence_level: float = 0.95) -> float:
    """The mixture's rho that makes the sequence narrowest at `planned_sample_size` units.

    Eq. 161 of Waudby-Smith et al. (2024), two-sided. `planned_sample_size` is the number of
    units in both arms together at the experiment's planned end (the power analysis's figure).
    It is declared before the data: choosing it from the data would spend the guarantee.
    """
    _check_confidence_level(confidence_level)
    if not (math.isfinite(planned_sample_size) and planned_sample_size > 0):
        raise ValueError(f"planned_sample_size must be a positive number, got {planned_sample_size!r}")
    log_alpha = math.log(1 - confidence_level)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / planned_sample_size)


def confidence_sequence_halfwidth(
    standard_error: np.ndarray | float, n: np.ndarray | float, *, rho: float, confidence_level: float = 0.95
) -> np.ndarray:
    """Half-width of the two-sided asymptotic confidence sequence (eq. 9 of Waudby-Smith et al.).

    `standard_error` is the estimate's standard error at this look and `n` the units seen so
    far in both arms; both broadcast, so one call covers every day of every run. Written in
    terms of SE: with sigma_hat^2 = n SE^2 the half-width is
    SE * sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / alpha) / (n rho^2)).
    NaN where n < 1.
    """
    _check_confidence_level(confidence_level)
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho!r}")
    standard_error = np.asarray(standard_error, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_rho2 = n * rho**2
        factor = np.sqrt(2 * (n_rho2 + 1) * np.log(np.sqrt(n_rho2 + 1) / (1 - confidence_level)) / n_rho2)
    return np.where(n >= 1, standard_error * factor, np.nan)


def always_valid_p_value(
    estimate: np.ndarray | float, standard_error: np.ndarray | float, n: np.ndarray | float, *, rho: float
) -> np.ndarray:
    """Two-sided always-valid p-value of `estimate` against 0: min(1, 1 / e-value) (eq. 155).

    Early on the e-value is below 1 and the p-value is exactly 1: the sequence has not yet
    seen enough to say anything, which is the price of being allowed to look every day.
    With a zero standard error it is 1 for a zero estimate and 0 otherwise.
    """
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho!r}")
    estimate = np.asarray(estimate, dtype=float)
    standard_error = np.asarray(standard_error, dtype=float)
    n = np.asarray(n, dtype=float)
    n_rho2_plus_1 = n * rho**2 + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        z_squared = np.where(estimate == 0, 0.0, (estimate / standard_error) ** 2)
        # In log space: overwhelming evidence would overflow exp() to inf.
        log_e_value = rho**2 * n * z_squared / (2 * n_rho2_plus_1) - 0.5 * np.log(n_rho2_plus_1)
    p_value = np.exp(-np.maximum(log_e_value, 0.0))
    return np.where(n >= 1, p_value, np.nan)


@dataclass(frozen=True)
class RateDifferenceSequence:
    """Arm rate minus baseline rate at each look, with its confidence sequence; arrays."""

    difference: np.ndarray
    standard_error: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray  # always valid


def rate_difference_sequence(
    successes: np.ndarray,
    n: np.ndarray,
    baseline_successes: np.ndarray,
    baseline_n: np.ndarray,
    *,
    planned_sample_size: float,
    confidence_level: float = 0.95,
) -> RateDifferenceSequence:
    """Confidence sequence of (rate - baseline rate) from cumulative counts at each look.

    The counts broadcast: pass one value per day for one experiment, or a (runs, days) grid
    for a simulation. The standard error is the unpooled (Wald) one, taken from statsmodels'
    `test_proportions_2indep`; the sequence is NaN where either arm has no units yet.
    """
    counts = [np.asarray(a, dtype=float) for a in (successes, n, baseline_successes, baseline_n)]
    successes, n, baseline_successes, baseline_n = np.broadcast_arrays(*counts)
    if ((successes < 0) | (baseline_successes < 0) | (successes > n) | (baseline_successes > baseline_n)).any():
        raise ValueError("successes must be between 0 and n in both arms")
    rho = sequential_rho(planned_sample_size, confidence_level)
    observed = (n > 0) & (baseline_n > 0)
    # statsmodels divides by n; give empty arms n = 1 and blank their results afterwards.
    safe_n, safe_baseline_n = np.where(observed, n, 1.0), np.where(observed, baseline_n, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wald = test_proportions_2indep(
            successes, safe_n, baseline_successes, safe_baseline_n,
            method="wald", compare="diff", return_results=True,
        )
    difference = np.where(observed, np.asarray(wald.diff, dtype=float), np.nan)
    standard_error = np.where(observed, np.sqrt(np.asarray(wald.variance, dtype=float)), np.nan)
    units = n + baseline_n
    halfwidth = confidence_sequence_halfwidth(standard_error, units, rho=rho, confidence_level=confidence_level)
    return RateDifferenceSequence(
        difference=difference,
        standard_error=standard_error,
        ci_low=difference - halfwidth,
        ci_high=difference + halfwidth,
        p_value=np.where(observed, always_valid_p_value(difference, standard_error, units, rho=rho), np.nan),
    )


def daily_rate_difference_sequence(
    daily_counts: pd.DataFrame,
    *,
    arm: str,
    baseline: str,
    planned_sample_size: float,
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """Per day: the arm's and baseline's cumulative rates and the always-valid CI of their difference.

    `daily_counts` has `DAILY_COUNT_COLUMNS`: one row per (day, arm) with the *cumulative*
    successes and units up to and including that day. Returns one row per day on which both
    arms have a row, in day order: day, n, baseline_n, rate, baseline_rate, difference,
    ci_low, ci_high, p_value (always valid) and `excludes_zero`.
    """
    missing = [c for c in DAILY_COUNT_COLUMNS if c not in daily_counts.columns]
    if missing:
        raise ValueError(f"daily_counts lack columns {missing}")
    if daily_counts.duplicated(["day", "arm"]).any():
        raise ValueError("daily_counts have more than one row for a (day, arm)")
    wide = {}
    for name in (arm, baseline):
        rows = daily_counts[daily_counts["arm"] == name].sort_values("day")
        if rows.empty:
            raise ValueError(f"daily_counts have no rows for arm {name!r}")
        if (rows["n"].diff().dropna() < 0).any() or (rows["successes"].diff().dropna() < 0).any():
            raise ValueError(f"daily_counts of arm {name!r} are not cumulative: a count falls from one day to the next")
        wide[name] = rows.set_index("day")[["successes", "n"]]
    joined = wide[arm].join(wide[baseline], how="inner", lsuffix="_arm", rsuffix="_baseline").sort_index()
    sequence = rate_difference_sequence(
        joined["successes_arm"].to_numpy(), joined["n_arm"].to_numpy(),
        joined["successes_baseline"].to_numpy(), joined["n_baseline"].to_numpy(),
        planned_sample_size=planned_sample_size, confidence_level=confidence_level,
    )
    n_arm, n_baseline = joined["n_arm"].to_numpy(dtype=float), joined["n_baseline"].to_numpy(dtype=float)
    successes_arm = joined["successes_arm"].to_numpy(dtype=float)
    successes_baseline = joined["successes_baseline"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n_arm > 0, successes_arm / n_arm, np.nan)
        baseline_rate = np.where(n_baseline > 0, successes_baseline / n_baseline, np.nan)
    return pd.DataFrame(
        {
            "day": joined.index.to_numpy(),
            "n": joined["n_arm"].to_numpy(),
            "baseline_n": joined["n_baseline"].to_numpy(),
            "rate": rate,
            "baseline_rate": baseline_rate,
            "difference": sequence.difference,
            "ci_low": sequence.ci_low,
            "ci_high": sequence.ci_high,
            "p_value": sequence.p_value,
            "excludes_zero": (sequence.ci_low > 0) | (sequence.ci_high < 0),
        }
    )


def _check_confidence_level(confidence_level: float) -> None:
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
