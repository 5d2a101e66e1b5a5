"""CUPED: a narrower interval for the same difference, using each person's pre-period outcome.

Deng, Xu, Kohavi & Walker, "Improving the sensitivity of online controlled experiments by
utilizing pre-experiment data" (WSDM 2013), section 3: with Y the outcome in the experiment
and X the same person's outcome before it (unaffected by the assignment),

    theta = cov(X, Y) / var(X),    Y_cv = Y - theta (X - mean(X)),

computed on both arms together. Because X is independent of the assignment, the adjustment
subtracts a term with expectation zero from the difference of means: the estimate stays
unbiased, and its variance falls by the factor 1 - corr(X, Y)^2. The adjusted difference is
compared with Welch's interval and test (statsmodels, via `welch_difference`); the standard
errors that give the variance reduction are statsmodels' `CompareMeans.std_meandiff_separatevar`.
The adjusted estimate and standard error can be fed to `ml.experiments.sequential` like any
other, to get an always-valid CUPED interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from ml.experiments.statistics import welch_difference

CUPED_METHOD = "CUPED (Deng et al. 2013), theta pooled over both arms; Welch interval on the adjusted outcome"


@dataclass(frozen=True)
class CupedEstimate:
    """Arm mean minus baseline mean, adjusted by CUPED, beside the unadjusted figures."""

    difference: float
    standard_error: float
    ci_low: float
    ci_high: float
    p_value: float
    unadjusted_difference: float
    unadjusted_standard_error: float
    unadjusted_ci_low: float
    unadjusted_ci_high: float
    unadjusted_p_value: float
    theta: float
    # 1 - (adjusted SE / unadjusted SE)^2: the share of the difference's variance removed.
    variance_reduction: float
    n: int
    baseline_n: int


def cuped_difference(
    outcome: np.ndarray,
    pre_period_outcome: np.ndarray,
    baseline_outcome: np.ndarray,
    baseline_pre_period_outcome: np.ndarray,
    *,
    confidence_level: float = 0.95,
) -> CupedEstimate:
    """CUPED-adjusted difference of means (arm minus baseline) from per-person values.

    Each arm gives its members' outcomes and their pre-period outcomes, in the same order.
    Both arms need at least two members. A covariate with no variance adjusts nothing
    (theta 0, variance reduction 0).
    """
    y1, x1, y0, x0 = (
        np.asarray(a, dtype=float) for a in (outcome, pre_period_outcome, baseline_outcome, baseline_pre_period_outcome)
    )
    if y1.shape != x1.shape or y0.shape != x0.shape or y1.ndim != 1 or y0.ndim != 1:
        raise ValueError("each arm needs one pre-period outcome per outcome, as 1-d arrays")
    if len(y1) < 2 or len(y0) < 2:
        raise ValueError("each arm needs at least two members")
    if not all(np.isfinite(a).all() for a in (y1, x1, y0, x0)):
        raise ValueError("outcomes and pre-period outcomes must be finite")
    x, y = np.concatenate([x1, x0]), np.concatenate([y1, y0])
    covariance = np.cov(x, y, ddof=1)
    theta = float(covariance[0, 1] / covariance[0, 0]) if covariance[0, 0] > 0 else 0.0
    x_mean = x.mean()
    adjusted1, adjusted0 = y1 - theta * (x1 - x_mean), y0 - theta * (x0 - x_mean)

    adjusted = welch_difference(adjusted1, adjusted0, confidence_level)
    unadjusted = welch_difference(y1, y0, confidence_level)
    se_adjusted = _standard_error(adjusted1, adjusted0)
    se_unadjusted = _standard_error(y1, y0)
    return CupedEstimate(
        difference=adjusted.difference,
        standard_error=se_adjusted,
        ci_low=adjusted.ci_low,
        ci_high=adjusted.ci_high,
        p_value=adjusted.p_value,
        unadjusted_difference=unadjusted.difference,
        unadjusted_standard_error=se_unadjusted,
        unadjusted_ci_low=unadjusted.ci_low,
        unadjusted_ci_high=unadjusted.ci_high,
        unadjusted_p_value=unadjusted.p_value,
        theta=theta,
        variance_reduction=1 - (se_adjusted / se_unadjusted) ** 2 if se_unadjusted > 0 else 0.0,
        n=len(y1),
        baseline_n=len(y0),
    )


def cuped_comparison(
    members: pd.DataFrame,
    *,
    arm: str,
    baseline: str,
    outcome: str,
    pre_period_outcome: str,
    confidence_level: float = 0.95,
) -> CupedEstimate:
    """`cuped_difference` of two arms of `members` (one row per person, with an `arm` column).

    Booleans (converted in the period and before it) are taken as 0/1, so a rate is adjusted
    by the person's pre-period rate the same way a revenue is by pre-period revenue.
    """
    for column in ("arm", outcome, pre_period_outcome):
        if column not in members.columns:
            raise ValueError(f"members lack column {column!r}")
    values = {}
    for name in (arm, baseline):
        rows = members[members["arm"] == name]
        if rows[[outcome, pre_period_outcome]].isna().any().any():
            raise ValueError(f"arm {name!r} has missing {outcome} or {pre_period_outcome}")
        values[name] = (rows[outcome].to_numpy(dtype=float), rows[pre_period_outcome].to_numpy(dtype=float))
    return cuped_difference(*values[arm], *values[baseline], confidence_level=confidence_level)


def _standard_error(values: np.ndarray, baseline: np.ndarray) -> float:
    return float(CompareMeans(DescrStatsW(values), DescrStatsW(baseline)).std_meandiff_separatevar)
