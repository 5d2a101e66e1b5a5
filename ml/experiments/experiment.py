"""The campaign experiment: deterministic arm assignment, statistics and the HTML report.

Arms are assigned by hashing `experiment_id:subscriber_key` into a uniform bucket, so the
same subscriber lands in the same arm on every run and on every machine, and a new
experiment id re-randomises independently. The holdout receives nothing; control gets the
generic approved subject line and treatment the personalised one.

Statistics (all two-sided, 95% by default):
- rates: Wilson score interval;
- revenue per member: Student t interval;
- difference of two rates: Newcombe hybrid score interval (Newcombe 1998, method 10) with
  a pooled two-proportion z-test p-value;
- difference of revenue per member: Welch t interval and Welch t-test;
- sample ratio mismatch (SRM): chi-square goodness of fit against the design's shares.
"""

from __future__ import annotations

import hashlib
import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

HOLDOUT_ARM = "holdout"
CONTROL_ARM = "control"
TREATMENT_ARM = "treatment"
DEFAULT_ARMS = {HOLDOUT_ARM: 0.10, CONTROL_ARM: 0.45, TREATMENT_ARM: 0.45}

ASSIGNMENT_COLUMNS = ("subscriber_key", "experiment_id", "arm", "bucket")
OUTCOME_METRICS = ("opened", "clicked", "converted")
MEMBER_OUTCOME_COLUMNS = ("subscriber_key", "arm", *OUTCOME_METRICS, "revenue")

SRM_P_VALUE_THRESHOLD = 0.001

RATE_CI_METHOD = "Wilson score interval"
MEAN_CI_METHOD = "Student t interval"
RATE_DIFFERENCE_METHOD = "Newcombe hybrid score interval (method 10); pooled two-proportion z-test"
MEAN_DIFFERENCE_METHOD = "Welch t interval; Welch two-sample t-test"
SRM_METHOD = f"chi-square goodness of fit; passes when p >= {SRM_P_VALUE_THRESHOLD}"

# Metric names as they appear in metrics and the report.
_RATE_NAMES = {"opened": "open", "clicked": "click", "converted": "conversion"}


@dataclass(frozen=True)
class ExperimentDesign:
    """An experiment's id and arms (name -> share of members, in assignment order).

    `salt` re-randomises an experiment without renaming it; empty by default, in which case
    the hashed string is exactly ``f"{experiment_id}:{subscriber_key}"``.
    """

    experiment_id: str
    arms: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ARMS))
    salt: str = ""
    holdout_arm: str = HOLDOUT_ARM
    control_arm: str = CONTROL_ARM
    treatment_arm: str = TREATMENT_ARM

    def __post_init__(self) -> None:
        if not isinstance(self.experiment_id, str) or not self.experiment_id.strip():
            raise ValueError("experiment_id must be a non-empty string")
        if not self.arms:
            raise ValueError("an experiment needs arms")
        for arm, share in self.arms.items():
            if not isinstance(arm, str) or not arm:
                raise ValueError(f"arm names must be non-empty strings, got {arm!r}")
            if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share < 1):
                raise ValueError(f"arm {arm!r} share must be in (0, 1), got {share!r}")
        total = sum(self.arms.values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"arm shares must sum to 1, got {total}")
        if self.holdout_arm not in self.arms:
            raise ValueError(f"the design must have a holdout arm named {self.holdout_arm!r}")
        # A private copy, so changing the caller's dict cannot change a validated design.
        object.__setattr__(self, "arms", dict(self.arms))

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(self.arms)

    def comparisons(self) -> tuple[tuple[str, str], ...]:
        """(arm, baseline) pairs: every arm vs the holdout, and treatment vs control."""
        pairs = [(arm, self.holdout_arm) for arm in self.arms if arm != self.holdout_arm]
        if self.treatment_arm in self.arms and self.control_arm in self.arms:
            pairs.append((self.treatment_arm, self.control_arm))
        return tuple(pairs)


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
class ArmStatistics:
    """Outcomes of one arm."""

    arm: str
    expected_share: float
    n: int
    rates: Mapping[str, RateEstimate]  # keyed by outcome column: opened, clicked, converted
    revenue_per_member: MeanEstimate
    revenue_total: float


@dataclass(frozen=True)
class RateDifference:
    """Arm rate minus baseline rate."""

    metric: str
    rate: float
    baseline_rate: float
    absolute_lift: float
    ci_low: float
    ci_high: float
    relative_lift: float
    p_value: float


@dataclass(frozen=True)
class MeanDifference:
    """Arm mean minus baseline mean (Welch)."""

    difference: float
    ci_low: float
    ci_high: float
    degrees_of_freedom: float
    p_value: float


@dataclass(frozen=True)
class ArmComparison:
    """One arm against a baseline arm."""

    arm: str
    baseline: str
    rates: Mapping[str, RateDifference]  # keyed by outcome column
    revenue_per_member: MeanDifference


@dataclass(frozen=True)
class ExperimentSummary:
    """Everything the experiment report and the asset metadata need; no subscriber keys."""

    design: ExperimentDesign
    confidence_level: float
    arms: tuple[ArmStatistics, ...]
    comparisons: tuple[ArmComparison, ...]
    sample_ratio: Mapping[str, Any]

    @property
    def experiment_id(self) -> str:
        return self.design.experiment_id

    @property
    def n_members(self) -> int:
        return sum(arm.n for arm in self.arms)

    def arm(self, name: str) -> ArmStatistics:
        """The statistics of one arm by name."""
        for arm in self.arms:
            if arm.arm == name:
                return arm
        raise KeyError(name)

    def comparison(self, arm: str, baseline: str) -> ArmComparison:
        """The comparison of `arm` against `baseline`."""
        for comparison in self.comparisons:
            if (comparison.arm, comparison.baseline) == (arm, baseline):
                return comparison
        raise KeyError((arm, baseline))

    def arm_table(self) -> pd.DataFrame:
        """One row per arm: size, shares, rates and revenue per member with their CIs."""
        rows = []
        for arm in self.arms:
            row: dict[str, Any] = {
                "arm": arm.arm,
                "n": arm.n,
                "expected_share": arm.expected_share,
                "observed_share": arm.n / self.n_members if self.n_members else math.nan,
            }
            for metric, estimate in arm.rates.items():
                name = _RATE_NAMES[metric]
                row[f"{name}s"] = estimate.successes
                row[f"{name}_rate"] = estimate.rate
                row[f"{name}_rate_ci_low"] = estimate.ci_low
                row[f"{name}_rate_ci_high"] = estimate.ci_high
            row["revenue_total"] = arm.revenue_total
            row["revenue_per_member"] = arm.revenue_per_member.mean
            row["revenue_per_member_ci_low"] = arm.revenue_per_member.ci_low
            row["revenue_per_member_ci_high"] = arm.revenue_per_member.ci_high
            rows.append(row)
        return pd.DataFrame(rows)

    def comparison_table(self) -> pd.DataFrame:
        """One row per (arm, baseline, metric) with the lift, its CI and p-value."""
        rows = []
        for comparison in self.comparisons:
            for metric, diff in comparison.rates.items():
                rows.append(
                    {
                        "arm": comparison.arm,
                        "baseline": comparison.baseline,
                        "metric": f"{_RATE_NAMES[metric]}_rate",
                        "arm_value": diff.rate,
                        "baseline_value": diff.baseline_rate,
                        "absolute_lift": diff.absolute_lift,
                        "ci_low": diff.ci_low,
                        "ci_high": diff.ci_high,
                        "relative_lift": diff.relative_lift,
                        "p_value": diff.p_value,
                        "method": RATE_DIFFERENCE_METHOD,
                    }
                )
            revenue = comparison.revenue_per_member
            rows.append(
                {
                    "arm": comparison.arm,
                    "baseline": comparison.baseline,
                    "metric": "revenue_per_member",
                    "arm_value": self.arm(comparison.arm).revenue_per_member.mean,
                    "baseline_value": self.arm(comparison.baseline).revenue_per_member.mean,
                    "absolute_lift": revenue.difference,
                    "ci_low": revenue.ci_low,
                    "ci_high": revenue.ci_high,
                    "relative_lift": _relative(
                        self.arm(comparison.arm).revenue_per_member.mean,
                        self.arm(comparison.baseline).revenue_per_member.mean,
                    ),
                    "p_value": revenue.p_value,
                    "method": MEAN_DIFFERENCE_METHOD,
                }
            )
        return pd.DataFrame(rows)

    def to_metrics(self) -> dict[str, float | int | bool | str | None]:
        """Flat, JSON-serialisable metrics (NaN becomes None) for asset metadata and MLflow."""
        metrics: dict[str, Any] = {
            "experiment_id": self.experiment_id,
            "confidence_level": self.confidence_level,
            "n_members": self.n_members,
            "srm_chi2": self.sample_ratio["chi2"],
            "srm_p_value": self.sample_ratio["p_value"],
            "srm_passed": self.sample_ratio["passed"],
        }
        for arm in self.arms:
            prefix = arm.arm
            metrics[f"{prefix}.n"] = arm.n
            for metric, estimate in arm.rates.items():
                name = _RATE_NAMES[metric]
                metrics[f"{prefix}.{name}_rate"] = estimate.rate
                metrics[f"{prefix}.{name}_rate_ci_low"] = estimate.ci_low
                metrics[f"{prefix}.{name}_rate_ci_high"] = estimate.ci_high
            metrics[f"{prefix}.revenue_total"] = arm.revenue_total
            metrics[f"{prefix}.revenue_per_member"] = arm.revenue_per_member.mean
            metrics[f"{prefix}.revenue_per_member_ci_low"] = arm.revenue_per_member.ci_low
            metrics[f"{prefix}.revenue_per_member_ci_high"] = arm.revenue_per_member.ci_high
        for comparison in self.comparisons:
            prefix = f"{comparison.arm}_vs_{comparison.baseline}"
            for metric, diff in comparison.rates.items():
                name = _RATE_NAMES[metric]
                metrics[f"{prefix}.{name}_abs_lift"] = diff.absolute_lift
                metrics[f"{prefix}.{name}_abs_lift_ci_low"] = diff.ci_low
                metrics[f"{prefix}.{name}_abs_lift_ci_high"] = diff.ci_high
                metrics[f"{prefix}.{name}_relative_lift"] = diff.relative_lift
                metrics[f"{prefix}.{name}_p_value"] = diff.p_value
            revenue = comparison.revenue_per_member
            metrics[f"{prefix}.revenue_per_member_diff"] = revenue.difference
            metrics[f"{prefix}.revenue_per_member_diff_ci_low"] = revenue.ci_low
            metrics[f"{prefix}.revenue_per_member_diff_ci_high"] = revenue.ci_high
            metrics[f"{prefix}.revenue_per_member_p_value"] = revenue.p_value
        return {key: _json_number(value) for key, value in metrics.items()}


# ----------------------------------------------------------------------------- assignment


def assign_arms(subscriber_keys: pd.Series, design: ExperimentDesign) -> pd.DataFrame:
    """Assign each subscriber to an arm by a deterministic hash bucket in [0, 1).

    The bucket is the first 53 bits of sha256(``experiment_id:subscriber_key``) scaled to
    [0, 1); arms take consecutive ranges of the bucket by cumulative share in design order.
    Returns `ASSIGNMENT_COLUMNS` in the input order. Keys must be unique and non-null.
    """
    keys = pd.Series(subscriber_keys, copy=False)
    if keys.isna().any():
        raise ValueError("subscriber keys must not be missing")
    if keys.duplicated().any():
        raise ValueError("subscriber keys must be unique")
    buckets = hash_buckets(keys.astype(str).tolist(), _hash_prefix(design))
    cumulative = np.cumsum(np.fromiter(design.arms.values(), dtype=float))
    cumulative[-1] = 1.0  # guard against the shares summing to 0.9999999999
    arm_index = np.minimum(np.searchsorted(cumulative, buckets, side="right"), len(cumulative) - 1)
    arm_names = np.array(design.arm_names, dtype=object)
    return pd.DataFrame(
        {
            "subscriber_key": keys.to_numpy(dtype=object),
            "experiment_id": design.experiment_id,
            "arm": arm_names[arm_index],
            "bucket": buckets,
        }
    )


def hash_buckets(keys: list[str], prefix: str) -> np.ndarray:
    """Uniform floats in [0, 1) from sha256(prefix + key), using the digest's first 53 bits."""
    digests = b"".join(hashlib.sha256(f"{prefix}{key}".encode("utf-8")).digest()[:8] for key in keys)
    as_int = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    return (as_int >> np.uint64(11)).astype(np.float64) / float(2**53)


def _hash_prefix(design: ExperimentDesign) -> str:
    if design.salt:
        return f"{design.experiment_id}:{design.salt}:"
    return f"{design.experiment_id}:"


# ----------------------------------------------------------------------------- statistics


def sample_ratio_check(assignments: pd.DataFrame, design: ExperimentDesign) -> dict[str, Any]:
    """Chi-square goodness of fit of the arm counts against the design's shares.

    Returns observed/expected counts per arm, chi2, degrees of freedom, p-value and
    `passed` (p >= 0.001; a lower p-value means the assignment or the data is broken).
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
    if n == 0:
        raise ValueError("no assignments to check")
    counts = assignments["arm"].value_counts()
    observed = np.array([int(counts.get(arm, 0)) for arm in design.arm_names], dtype=float)
    expected = np.array([share * n for share in design.arms.values()], dtype=float)
    result = stats.chisquare(observed, expected)
    p_value = float(result.pvalue)
    return {
        "test": "chi-square goodness of fit",
        "n": n,
        "observed": {arm: int(o) for arm, o in zip(design.arm_names, observed)},
        "expected": {arm: float(e) for arm, e in zip(design.arm_names, expected)},
        "chi2": float(result.statistic),
        "degrees_of_freedom": len(design.arm_names) - 1,
        "p_value": p_value,
        "threshold": SRM_P_VALUE_THRESHOLD,
        "passed": bool(p_value >= SRM_P_VALUE_THRESHOLD),
    }


def wilson_interval(successes: int, n: int, confidence_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) when n is 0."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    z = float(stats.norm.ppf(0.5 + confidence_level / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave 1e-20.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return (low, high)


def mean_interval(values: np.ndarray, confidence_level: float = 0.95) -> MeanEstimate:
    """Mean with a Student t interval; the interval is nan with fewer than two values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return MeanEstimate(n=0, mean=math.nan, sd=math.nan, ci_low=math.nan, ci_high=math.nan)
    mean = float(values.mean())
    if n == 1:
        return MeanEstimate(n=1, mean=mean, sd=math.nan, ci_low=math.nan, ci_high=math.nan)
    sd = float(values.std(ddof=1))
    half_width = float(stats.t.ppf(0.5 + confidence_level / 2, n - 1)) * sd / math.sqrt(n)
    return MeanEstimate(n=n, mean=mean, sd=sd, ci_low=mean - half_width, ci_high=mean + half_width)


def rate_difference(
    successes: int, n: int, baseline_successes: int, baseline_n: int, confidence_level: float = 0.95
) -> tuple[float, float, float, float]:
    """(difference, ci_low, ci_high, p_value) of rate minus baseline rate.

    CI: Newcombe's hybrid score interval from the two Wilson intervals. p-value: two-sided
    pooled two-proportion z-test (identical to the uncorrected 2x2 chi-square test).
    """
    if n <= 0 or baseline_n <= 0:
        return (math.nan, math.nan, math.nan, math.nan)
    p1, p0 = successes / n, baseline_successes / baseline_n
    l1, u1 = wilson_interval(successes, n, confidence_level)
    l0, u0 = wilson_interval(baseline_successes, baseline_n, confidence_level)
    difference = p1 - p0
    ci_low = difference - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    ci_high = difference + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pooled = (successes + baseline_successes) / (n + baseline_n)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / baseline_n))
    if standard_error == 0:
        p_value = 1.0  # both arms all-0 or all-1: no difference to test
    else:
        p_value = float(2 * stats.norm.sf(abs(difference) / standard_error))
    return (difference, ci_low, ci_high, p_value)


def welch_difference(values: np.ndarray, baseline: np.ndarray, confidence_level: float = 0.95) -> MeanDifference:
    """Difference of means with a Welch t interval and two-sided Welch t-test."""
    values, baseline = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    n1, n0 = len(values), len(baseline)
    if n1 < 2 or n0 < 2:
        diff = float(values.mean() - baseline.mean()) if n1 and n0 else math.nan
        return MeanDifference(diff, ci_low=math.nan, ci_high=math.nan, degrees_of_freedom=math.nan, p_value=math.nan)
    difference = float(values.mean() - baseline.mean())
    var1, var0 = values.var(ddof=1) / n1, baseline.var(ddof=1) / n0
    standard_error = math.sqrt(var1 + var0)
    if standard_error == 0:
        # Both arms constant: the difference is exact, there is nothing to test.
        p_value = 1.0 if difference == 0 else math.nan
        return MeanDifference(difference, difference, difference, math.nan, p_value)
    dof = (var1 + var0) ** 2 / (var1**2 / (n1 - 1) + var0**2 / (n0 - 1))
    t_critical = float(stats.t.ppf(0.5 + confidence_level / 2, dof))
    p_value = float(2 * stats.t.sf(abs(difference) / standard_error, dof))
    return MeanDifference(
        difference=difference,
        ci_low=difference - t_critical * standard_error,
        ci_high=difference + t_critical * standard_error,
        degrees_of_freedom=float(dof),
        p_value=p_value,
    )


def summarise_experiment(
    members_with_outcomes: pd.DataFrame, design: ExperimentDesign, *, confidence_level: float = 0.95
) -> ExperimentSummary:
    """Per-arm statistics, lifts against the holdout (and treatment vs control), and SRM.

    `members_with_outcomes` has one row per member: `MEMBER_OUTCOME_COLUMNS` (booleans for
    opened/clicked/converted, a float revenue). Arms of the design without members appear
    with n = 0 and NaN statistics.
    """
    if not 0 < confidence_level < 1:
        raise ValueError("confidence_level must be in (0, 1)")
    frame = _validated_members(members_with_outcomes, design)
    arm_statistics = []
    for arm, share in design.arms.items():
        members = frame[frame["arm"] == arm]
        n = len(members)
        rates = {}
        for metric in OUTCOME_METRICS:
            successes = int(members[metric].sum())
            low, high = wilson_interval(successes, n, confidence_level)
            rates[metric] = RateEstimate(successes, n, successes / n if n else math.nan, low, high)
        revenue = members["revenue"].to_numpy(dtype=float)
        arm_statistics.append(
            ArmStatistics(
                arm=arm,
                expected_share=float(share),
                n=n,
                rates=rates,
                revenue_per_member=mean_interval(revenue, confidence_level),
                revenue_total=float(revenue.sum()),
            )
        )
    by_arm = {stat.arm: stat for stat in arm_statistics}
    comparisons = []
    for arm, baseline in design.comparisons():
        rates = {}
        for metric in OUTCOME_METRICS:
            a, b = by_arm[arm].rates[metric], by_arm[baseline].rates[metric]
            diff, low, high, p_value = rate_difference(a.successes, a.n, b.successes, b.n, confidence_level)
            rates[metric] = RateDifference(
                metric=metric,
                rate=a.rate,
                baseline_rate=b.rate,
                absolute_lift=diff,
                ci_low=low,
                ci_high=high,
                relative_lift=_relative(a.rate, b.rate),
                p_value=p_value,
            )
        revenue = welch_difference(
            frame.loc[frame["arm"] == arm, "revenue"].to_numpy(dtype=float),
            frame.loc[frame["arm"] == baseline, "revenue"].to_numpy(dtype=float),
            confidence_level,
        )
        comparisons.append(ArmComparison(arm=arm, baseline=baseline, rates=rates, revenue_per_member=revenue))
    return ExperimentSummary(
        design=design,
        confidence_level=confidence_level,
        arms=tuple(arm_statistics),
        comparisons=tuple(comparisons),
        sample_ratio=sample_ratio_check(frame, design),
    )


def _validated_members(frame: pd.DataFrame, design: ExperimentDesign) -> pd.DataFrame:
    missing = [c for c in MEMBER_OUTCOME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"members_with_outcomes lacks columns {missing}")
    if frame["subscriber_key"].isna().any() or frame["subscriber_key"].duplicated().any():
        raise ValueError("members_with_outcomes needs one row per non-missing subscriber_key")
    unknown = set(frame["arm"].unique()) - set(design.arm_names)
    if unknown:
        raise ValueError(f"members_with_outcomes has arms not in the design: {sorted(map(str, unknown))}")
    out = frame[list(MEMBER_OUTCOME_COLUMNS)].copy()
    for metric in OUTCOME_METRICS:
        if out[metric].isna().any():
            raise ValueError(f"{metric} has missing values")
        values = out[metric]
        if not values.isin([True, False, 0, 1]).all():
            raise ValueError(f"{metric} must be boolean")
        out[metric] = values.astype(bool)
    revenue = pd.to_numeric(out["revenue"], errors="coerce")
    if revenue.isna().any() or not np.isfinite(revenue.to_numpy(dtype=float)).all():
        raise ValueError("revenue must be a finite number for every member")
    out["revenue"] = revenue.astype(float)
    return out


def _relative(value: float, baseline: float) -> float:
    if baseline == 0 or math.isnan(baseline) or math.isnan(value):
        return math.nan
    return value / baseline - 1


def _json_number(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value


# ----------------------------------------------------------------------------- report


def render_experiment_report(summary: ExperimentSummary, html_path: str | Path, *, context: Mapping[str, Any]) -> Path:
    """Write a self-contained HTML report (inline CSS, no external assets); return its path.

    `context` holds run facts to show (model version, blocks version, run ids, ...). Values
    that look like an email address are refused so the report cannot carry PII.
    """
    for key, value in context.items():
        if "@" in str(key) or "@" in str(value):
            raise ValueError(f"context entry {key!r} looks like it contains an email address")
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_report_html(summary, context), encoding="utf-8")
    return path


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1f2933; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d9e2ec; padding-bottom: 0.2rem; }
.muted { color: #627d98; font-size: 0.9rem; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d9e2ec; padding: 0.35rem 0.5rem; text-align: right; }
th { background: #f0f4f8; }
td:first-child, th:first-child, td.text { text-align: left; }
.ci { color: #627d98; white-space: nowrap; }
.banner { padding: 0.8rem 1rem; border-radius: 6px; margin: 1rem 0; font-weight: 600; }
.banner.fail { background: #ffe3e3; border: 2px solid #c92a2a; color: #8a1c1c; }
.banner.pass { background: #e3f9e5; border: 1px solid #2f9e44; color: #1b5e20; }
.sig { font-weight: 600; }
"""


def _report_html(summary: ExperimentSummary, context: Mapping[str, Any]) -> str:
    srm = summary.sample_ratio
    level = f"{summary.confidence_level:.0%}"
    esc = html.escape
    if srm["passed"]:
        banner = (
            f'<div class="banner pass">Sample ratio check passed (chi-square p = {_p(srm["p_value"])}): '
            "arm sizes match the design.</div>"
        )
    else:
        banner = (
            f'<div class="banner fail">WARNING: sample ratio mismatch (chi-square p = {_p(srm["p_value"])} &lt; '
            f'{srm["threshold"]}). Arm sizes do not match the design, so the assignment or the outcome data is '
            "broken; do not trust the lifts below until this is explained.</div>"
        )

    design_rows = "".join(
        f"<tr><td>{esc(arm)}</td><td>{share:.1%}</td><td>{srm['observed'][arm]:,}</td>"
        f"<td>{srm['expected'][arm]:,.1f}</td></tr>"
        for arm, share in summary.design.arms.items()
    )
    arm_rows = []
    for arm in summary.arms:
        cells = [f"<td>{esc(arm.arm)}</td>", f"<td>{arm.n:,}</td>"]
        for metric in OUTCOME_METRICS:
            estimate = arm.rates[metric]
            cells.append(f"<td>{_pct(estimate.rate)} {_ci(_pct, estimate.ci_low, estimate.ci_high)}</td>")
        revenue = arm.revenue_per_member
        cells.append(f"<td>{_num(revenue.mean)} {_ci(_num, revenue.ci_low, revenue.ci_high)}</td>")
        cells.append(f"<td>{_num(arm.revenue_total)}</td>")
        arm_rows.append("<tr>" + "".join(cells) + "</tr>")

    lift_rows = []
    for row in summary.comparison_table().itertuples(index=False):
        is_revenue = row.metric == "revenue_per_member"
        fmt = _signed_num if is_revenue else _pct_points
        excludes_zero = bool(row.ci_low > 0 or row.ci_high < 0)  # False for NaN bounds
        lift_rows.append(
            "<tr>"
            f"<td>{esc(row.arm)} vs {esc(row.baseline)}</td>"
            f"<td class='text'>{esc(row.metric.replace('_', ' '))}</td>"
            f"<td>{_num(row.arm_value) if is_revenue else _pct(row.arm_value)}</td>"
            f"<td>{_num(row.baseline_value) if is_revenue else _pct(row.baseline_value)}</td>"
            f"<td class='{'sig' if excludes_zero else ''}'>{fmt(row.absolute_lift)} {_ci(fmt, row.ci_low, row.ci_high)}</td>"
            f"<td>{_pct(row.relative_lift, signed=True)}</td>"
            f"<td>{_p(row.p_value)}</td>"
            "</tr>"
        )

    context_rows = "".join(
        f"<tr><td>{esc(str(key))}</td><td class='text'>{esc(str(value))}</td></tr>" for key, value in context.items()
    ) or "<tr><td colspan='2' class='text muted'>No context given.</td></tr>"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Experiment report: {esc(summary.experiment_id)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Experiment report: {esc(summary.experiment_id)}</h1>
<p class="muted">{summary.n_members:,} members &middot; {level} confidence intervals &middot; generated {generated}</p>
{banner}

<h2>Design</h2>
<p>Members are assigned by a deterministic hash of the experiment id and their pseudonymous key.
The holdout receives no email; control receives the generic approved subject line; treatment
receives a personalised subject line composed from approved blocks.</p>
<table>
<tr><th>Arm</th><th>Planned share</th><th>Observed members</th><th>Expected members</th></tr>
{design_rows}
</table>
<p class="muted">Sample ratio check: {esc(SRM_METHOD)}; chi2 = {_num(srm["chi2"])},
df = {srm["degrees_of_freedom"]}, p = {_p(srm["p_value"])}.</p>

<h2>Outcomes per arm</h2>
<table>
<tr><th>Arm</th><th>Members</th><th>Open rate</th><th>Click rate</th><th>Conversion rate</th>
<th>Revenue per member</th><th>Revenue total</th></tr>
{''.join(arm_rows)}
</table>
<p class="muted">Rates: {esc(RATE_CI_METHOD)}; revenue per member: {esc(MEAN_CI_METHOD)}.
Brackets are {level} intervals.</p>

<h2>Lifts</h2>
<table>
<tr><th>Comparison</th><th>Metric</th><th>Arm</th><th>Baseline</th><th>Absolute lift [{level} CI]</th>
<th>Relative lift</th><th>p-value</th></tr>
{''.join(lift_rows)}
</table>
<p class="muted">Rate lifts in percentage points: {esc(RATE_DIFFERENCE_METHOD)}. Revenue:
{esc(MEAN_DIFFERENCE_METHOD)}. Bold lifts have an interval that excludes zero. The holdout is not
emailed, so its open and click rates are zero by construction.</p>

<h2>Context</h2>
<table>
<tr><th>Item</th><th>Value</th></tr>
{context_rows}
</table>
</body>
</html>
"""


def _ci(fmt: Any, low: float, high: float) -> str:
    return f"<span class='ci'>[{fmt(low)}, {fmt(high)}]</span>"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pct(value: float | None, *, signed: bool = False) -> str:
    if _missing(value):
        return "&ndash;"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _pct_points(value: float | None) -> str:
    if _missing(value):
        return "&ndash;"
    return f"{value * 100:+.2f} pp"


def _num(value: float | None) -> str:
    if _missing(value):
        return "&ndash;"
    return f"{value:,.2f}"


def _signed_num(value: float | None) -> str:
    if _missing(value):
        return "&ndash;"
    return f"{value:+,.2f}"


def _p(value: float | None) -> str:
    if _missing(value):
        return "&ndash;"
    return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"
