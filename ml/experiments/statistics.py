"""Interval estimates and tests for experiment readouts, from statsmodels and scipy.

All two-sided, 95% by default:
- rates: Wilson score interval;
- revenue per member: Student t interval;
- difference of two rates: Newcombe hybrid score interval (Newcombe 1998, method 10) with
  a pooled two-proportion z-test p-value;
- difference of revenue per member: Welch t interval and Welch t-test;
- sample ratio mismatch (SRM): chi-square goodness of fit against the design's shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from ml.experiments.design import ExperimentDesign

SRM_P_VALUE_THRESHOLD = 0.001

RATE_CI_METHOD = "Wilson score interval"
MEAN_CI_METHOD = "Student t interval"
RATE_DIFFERENCE_METHOD = "Newcombe hybrid score interval (method 10); pooled two-proportion z-test"
MEAN_DIFFERENCE_METHOD = "Welch t interval; Welch two-sample t-test"
SRM_METHOD = f"chi-square goodness of fit; passes when p >= {SRM_P_VALUE_THRESHOLD}"


@dataclass(frozen=True)
class RateEstimate:
    """A proportion with its confidence interval."""

    successes: int
    n: int
    rate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MeanEstimate:
    """A mean with its confidence interval."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MeanDifference:
    """Arm mean minus baseline mean (Welch)."""

    difference: float
    ci_low: float
    ci_high: float
    degrees_of_freedom: float
    p_value: float


def sample_ratio_check(assignments: pd.DataFrame, design: ExperimentDesign) -> dict[str, Any]:
    """Chi-square goodness of fit of the arm counts against the design's shares.

    Returns observed/expected counts per arm, chi2, degrees of freedom, p-value and
    `passed` (p >= 0.001; a lower p-value means the assignment or the data is broken).
    No assignments at all (nobody eligible) pass with NaN chi2 and p-value: nothing to test.
    """
    if "arm" not in assignments.columns:
        raise ValueError("assignments lack an 'arm' column")
    if "experiment_id" in assignments.columns:
        other = set(assignments["experiment_id"].dropna().unique()) - {design.experiment_id}
        if other:
            raise ValueError(f"assignments belong to other experiments: {sorted(other)}")
    unknown = set(assignments["arm"].unique()) - set(design.arm_names)
    if unknown:
        raise ValueError(f"assignments have arms not in the design: {sorted(map(str, unknown))}")
    n = len(assignments)
    counts = assignments["arm"].value_counts()
    observed = np.array([int(counts.get(arm, 0)) for arm in design.arm_names], dtype=float)
    expected = np.array([share * n for share in design.arms.values()], dtype=float)
    if n == 0:
        # Nobody assigned (e.g. nobody eligible): no ratio to be wrong, nothing to test.
        chi2, p_value = math.nan, math.nan
    else:
        result = stats.chisquare(observed, expected)
        chi2, p_value = float(result.statistic), float(result.pvalue)
    return {
        "test": "chi-square goodness of fit",
        "n": n,
        "observed": {arm: int(o) for arm, o in zip(design.arm_names, observed)},
        "expected": {arm: float(e) for arm, e in zip(design.arm_names, expected)},
        "chi2": chi2,
        "degrees_of_freedom": len(design.arm_names) - 1,
        "p_value": p_value,
        "threshold": SRM_P_VALUE_THRESHOLD,
        "passed": n == 0 or bool(p_value >= SRM_P_VALUE_THRESHOLD),
    }


def wilson_interval(successes: int, n: int, confidence_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) when n is 0."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    low, high = proportion_confint(successes, n, alpha=1 - confidence_level, method="wilson")
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave 1e-20.
    return (0.0 if successes == 0 else float(low), 1.0 if successes == n else float(high))


def mean_interval(values: np.ndarray, confidence_level: float = 0.95) -> MeanEstimate:
    """Mean with a Student t interval; the interval is nan with fewer than two values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return MeanEstimate(n=0, mean=math.nan, sd=math.nan, ci_low=math.nan, ci_high=math.nan)
    mean = float(values.mean())
    if n == 1:
        return MeanEstimate(n=1, mean=mean, sd=math.nan, ci_low=math.nan, ci_high=math.nan)
    low, high = DescrStatsW(values).tconfint_mean(alpha=1 - confidence_level)
    return MeanEstimate(n=n, mean=mean, sd=float(values.std(ddof=1)), ci_low=float(low), ci_high=float(high))


def rate_difference(
    successes: int, n: int, baseline_successes: int, baseline_n: int, confidence_level: float = 0.95
) -> tuple[float, float, float, float]:
    """(difference, ci_low, ci_high, p_value) of rate minus baseline rate.

    CI: Newcombe's hybrid score interval. p-value: two-sided pooled two-proportion z-test
    (identical to the uncorrected 2x2 chi-square test).
    """
    if n <= 0 or baseline_n <= 0:
        return (math.nan, math.nan, math.nan, math.nan)
    difference = successes / n - baseline_successes / baseline_n
    low, high = confint_proportions_2indep(
        successes, n, baseline_successes, baseline_n, method="newcomb", compare="diff", alpha=1 - confidence_level
    )
    pooled = (successes + baseline_successes) / (n + baseline_n)
    if pooled in (0.0, 1.0):
        p_value = 1.0  # both arms all-0 or all-1: no difference to test
    else:
        p_value = float(proportions_ztest([successes, baseline_successes], [n, baseline_n])[1])
    return (difference, float(low), float(high), p_value)


def welch_difference(values: np.ndarray, baseline: np.ndarray, confidence_level: float = 0.95) -> MeanDifference:
    """Difference of means with a Welch t interval and two-sided Welch t-test."""
    values, baseline = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    n1, n0 = len(values), len(baseline)
    if n1 < 2 or n0 < 2:
        diff = float(values.mean() - baseline.mean()) if n1 and n0 else math.nan
        return MeanDifference(diff, ci_low=math.nan, ci_high=math.nan, degrees_of_freedom=math.nan, p_value=math.nan)
    difference = float(values.mean() - baseline.mean())
    if values.var(ddof=1) == 0 and baseline.var(ddof=1) == 0:
        # Both arms constant: the difference is exact, there is nothing to test.
        p_value = 1.0 if difference == 0 else math.nan
        return MeanDifference(difference, difference, difference, math.nan, p_value)
    compared = CompareMeans(DescrStatsW(values), DescrStatsW(baseline))
    low, high = compared.tconfint_diff(alpha=1 - confidence_level, usevar="unequal")
    _, p_value, dof = compared.ttest_ind(usevar="unequal")
    return MeanDifference(
        difference=difference, ci_low=float(low), ci_high=float(high), degrees_of_freedom=float(dof), p_value=float(p_value)
    )
