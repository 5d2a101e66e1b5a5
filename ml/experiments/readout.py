"""The experiment readout: per-arm outcomes, lifts and the sample-ratio check, as data.

The report (ml/reports/experiment_report.py) and the asset metadata are both drawn from the
`ExperimentSummary` built here; it holds no subscriber keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ml.experiments.bayesian import compare_rates_bayesian
from ml.experiments.comparisons import compare_arms_with_control
from ml.experiments.cuped import CupedEstimate, cuped_comparison
from ml.experiments.decision import Decision, MetricInterval, decide
from ml.experiments.design import ExperimentDesign
from ml.experiments.statistics import (
    MEAN_DIFFERENCE_METHOD,
    RATE_DIFFERENCE_METHOD,
    MeanDifference,
    MeanEstimate,
    RateEstimate,
    mean_interval,
    rate_difference,
    sample_ratio_check,
    welch_difference,
    wilson_interval,
)

# Engagement and the primary metric, then the guardrails (an unsubscribe or complaint by the
# experiment's email): every one a rate per member, read the same way.
GUARDRAIL_METRICS = ("unsubscribed", "complained")
OUTCOME_METRICS = ("opened", "clicked", "converted", *GUARDRAIL_METRICS)
MEMBER_OUTCOME_COLUMNS = ("subscriber_key", "arm", *OUTCOME_METRICS, "revenue")
# Optional: each outcome CUPED adjusts, and the member's same outcome before the experiment.
CUPED_COVARIATES = {"converted": "pre_period_converted", "revenue": "pre_period_revenue"}

# Metric names as they appear in metrics, the report and the decision rule (name + "_rate").
RATE_NAMES = {"opened": "open", "clicked": "click", "converted": "conversion", "unsubscribed": "unsubscribe",
              "complained": "complaint"}


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
    # Valid when read every day (the report is): the always-valid interval and p-value, the
    # p-values Holm-adjusted across the arms compared with the same baseline, and the
    # Beta-Binomial chance that the arm's rate beats the baseline's.
    sequential_ci_low: float = math.nan
    sequential_ci_high: float = math.nan
    sequential_p_value: float = math.nan
    sequential_p_value_holm: float = math.nan
    chance_to_beat: float = math.nan


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
class ArmComparison:
    """One arm against a baseline arm."""

    arm: str
    baseline: str
    rates: Mapping[str, RateDifference]  # keyed by outcome column
    revenue_per_member: MeanDifference
    # Keyed by outcome column (CUPED_COVARIATES), when the members came with pre-period outcomes.
    cuped: Mapping[str, CupedEstimate] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmVerdict:
    """The declared decision rule applied to one arm against control."""

    arm: str
    baseline: str
    decision: Decision


@dataclass(frozen=True)
class ExperimentSummary:
    """Everything the experiment report and the asset metadata need; no subscriber keys."""

    design: ExperimentDesign
    confidence_level: float
    arms: tuple[ArmStatistics, ...]
    comparisons: tuple[ArmComparison, ...]
    sample_ratio: Mapping[str, Any]
    # One per arm compared with the design's control arm (the holdout gets no email, so its
    # unsubscribe rate is no baseline for a guardrail).
    verdicts: tuple[ArmVerdict, ...] = ()

    def breached_guardrails(self) -> dict[str, tuple[str, ...]]:
        """arm -> the guardrails its verdict says it breached (arms with none left out)."""
        return {v.arm: v.decision.breached_guardrails for v in self.verdicts if v.decision.breached_guardrails}

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
                name = RATE_NAMES[metric]
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
                        "metric": f"{RATE_NAMES[metric]}_rate",
                        "arm_value": diff.rate,
                        "baseline_value": diff.baseline_rate,
                        "absolute_lift": diff.absolute_lift,
                        "ci_low": diff.ci_low,
                        "ci_high": diff.ci_high,
                        "relative_lift": diff.relative_lift,
                        "p_value": diff.p_value,
                        "method": RATE_DIFFERENCE_METHOD,
                        "sequential_ci_low": diff.sequential_ci_low,
                        "sequential_ci_high": diff.sequential_ci_high,
                        "sequential_p_value_holm": diff.sequential_p_value_holm,
                        "chance_to_beat": diff.chance_to_beat,
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
                    "sequential_ci_low": math.nan,
                    "sequential_ci_high": math.nan,
                    "sequential_p_value_holm": math.nan,
                    "chance_to_beat": math.nan,
                }
            )
        return pd.DataFrame(rows)

    def key_metrics(self) -> dict[str, float | int | bool | str | None]:
        """The headline figures, rounded (asset metadata): members and the sample-ratio check.
        Per comparison, the figures to glance at are `key_table`; the full set `to_metrics`."""
        figures: dict[str, Any] = {
            "n_members": self.n_members,
            "srm_p_value": self.sample_ratio["p_value"],
            "srm_passed": self.sample_ratio["passed"],
        }
        return {
            key: round(value, 4) if isinstance(value, float) and math.isfinite(value) else _json_number(value)
            for key, value in figures.items()
        }

    def key_table(self, metric: str = "converted") -> pd.DataFrame:
        """One row per comparison of `metric`, rounded: the lift with its always-valid
        interval, the Holm-adjusted always-valid p-value, the chance to beat the baseline and,
        against control, the day's verdict. One table in the asset's metadata instead of a
        flat entry per figure."""
        verdicts = {(v.arm, v.baseline): v.decision.verdict for v in self.verdicts}
        rows = []
        for comparison in self.comparisons:
            diff = comparison.rates[metric]
            rows.append({
                "arm": comparison.arm,
                "baseline": comparison.baseline,
                "abs_lift": round(diff.absolute_lift, 4),
                "always_valid_ci": f"[{diff.sequential_ci_low:+.4f}, {diff.sequential_ci_high:+.4f}]",
                "holm_p_value": round(diff.sequential_p_value_holm, 4),
                "chance_to_beat": round(diff.chance_to_beat, 4),
                "verdict": verdicts.get((comparison.arm, comparison.baseline), ""),
            })
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
                name = RATE_NAMES[metric]
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
                name = RATE_NAMES[metric]
                metrics[f"{prefix}.{name}_abs_lift"] = diff.absolute_lift
                metrics[f"{prefix}.{name}_abs_lift_ci_low"] = diff.ci_low
                metrics[f"{prefix}.{name}_abs_lift_ci_high"] = diff.ci_high
                metrics[f"{prefix}.{name}_relative_lift"] = diff.relative_lift
                metrics[f"{prefix}.{name}_p_value"] = diff.p_value
                metrics[f"{prefix}.{name}_sequential_ci_low"] = diff.sequential_ci_low
                metrics[f"{prefix}.{name}_sequential_ci_high"] = diff.sequential_ci_high
                metrics[f"{prefix}.{name}_sequential_p_value_holm"] = diff.sequential_p_value_holm
                metrics[f"{prefix}.{name}_chance_to_beat"] = diff.chance_to_beat
            revenue = comparison.revenue_per_member
            metrics[f"{prefix}.revenue_per_member_diff"] = revenue.difference
            metrics[f"{prefix}.revenue_per_member_diff_ci_low"] = revenue.ci_low
            metrics[f"{prefix}.revenue_per_member_diff_ci_high"] = revenue.ci_high
            metrics[f"{prefix}.revenue_per_member_p_value"] = revenue.p_value
            for outcome, estimate in comparison.cuped.items():
                name = f"{prefix}.{'conversion' if outcome == 'converted' else 'revenue_per_member'}_cuped"
                metrics[f"{name}_diff"] = estimate.difference
                metrics[f"{name}_ci_low"] = estimate.ci_low
                metrics[f"{name}_ci_high"] = estimate.ci_high
                metrics[f"{name}_variance_reduction"] = estimate.variance_reduction
        for verdict in self.verdicts:
            prefix = f"{verdict.arm}_vs_{verdict.baseline}"
            metrics[f"{prefix}.verdict"] = verdict.decision.verdict
            metrics[f"{prefix}.verdict_reason"] = verdict.decision.reason
            metrics[f"{prefix}.breached_guardrails"] = ", ".join(verdict.decision.breached_guardrails)
        return {key: _json_number(value) for key, value in metrics.items()}


# ml.experiment_verdicts: one row per arm compared with control, per readout day.
VERDICT_COLUMN_TYPES = {
    "read_on": "date",
    "experiment_id": "varchar",
    "arm": "varchar",
    "baseline": "varchar",
    "verdict": "varchar",
    "reason": "varchar",
    "breached_guardrails": "varchar[]",
}


def verdict_rows(summary: ExperimentSummary | None, read_on, experiment_id: str) -> pd.DataFrame:
    """VERDICT_COLUMN_TYPES rows of the day's verdicts (none when there is no summary yet)."""
    verdicts = summary.verdicts if summary is not None else ()
    return pd.DataFrame(
        [{"read_on": pd.Timestamp(read_on).date(), "experiment_id": experiment_id, "arm": v.arm, "baseline": v.baseline,
          "verdict": v.decision.verdict, "reason": v.decision.reason,
          "breached_guardrails": list(v.decision.breached_guardrails)} for v in verdicts],
        columns=list(VERDICT_COLUMN_TYPES),
    )


def summarise_experiment(
    members_with_outcomes: pd.DataFrame, design: ExperimentDesign, *, confidence_level: float = 0.95
) -> ExperimentSummary:
    """Per-arm statistics, lifts against the holdout (and each personalised arm vs control), and SRM.

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
    daily = _read_every_day(by_arm, design, confidence_level)
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
                **daily.get((arm, baseline, metric), {}),
            )
        revenue = welch_difference(
            frame.loc[frame["arm"] == arm, "revenue"].to_numpy(dtype=float),
            frame.loc[frame["arm"] == baseline, "revenue"].to_numpy(dtype=float),
            confidence_level,
        )
        cuped = {
            outcome: cuped_comparison(frame, arm=arm, baseline=baseline, outcome=outcome, pre_period_outcome=covariate,
                                      confidence_level=confidence_level)
            for outcome, covariate in CUPED_COVARIATES.items()
            if covariate in frame.columns and min(by_arm[arm].n, by_arm[baseline].n) >= 2
        }
        comparisons.append(ArmComparison(arm=arm, baseline=baseline, rates=rates, revenue_per_member=revenue,
                                         cuped=cuped))
    sample_ratio = sample_ratio_check(frame, design)
    return ExperimentSummary(
        design=design,
        confidence_level=confidence_level,
        arms=tuple(arm_statistics),
        comparisons=tuple(comparisons),
        sample_ratio=sample_ratio,
        verdicts=tuple(
            ArmVerdict(c.arm, c.baseline, _verdict(c, design, srm_passed=bool(sample_ratio["passed"])))
            for c in comparisons if c.baseline == design.control_arm
        ),
    )


def _verdict(comparison: ArmComparison, design: ExperimentDesign, *, srm_passed: bool) -> Decision:
    """The declared rule on the comparison's always-valid intervals (valid read every day)."""
    intervals = {
        f"{RATE_NAMES[metric]}_rate": MetricInterval(diff.absolute_lift, diff.sequential_ci_low, diff.sequential_ci_high)
        for metric, diff in comparison.rates.items()
    }
    return decide(design.decision_rule, intervals, srm_passed=srm_passed)


def _read_every_day(
    by_arm: Mapping[str, ArmStatistics], design: ExperimentDesign, confidence_level: float
) -> dict[tuple[str, str, str], dict[str, float]]:
    """(arm, baseline, metric) -> the RateDifference fields valid under daily reading. Holm
    runs over the arms compared with one baseline, per metric."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    baselines: dict[str, list[str]] = {}
    for arm, baseline in design.comparisons():
        baselines.setdefault(baseline, []).append(arm)
    for baseline, arms in baselines.items():
        for metric in OUTCOME_METRICS:
            counts = pd.DataFrame(
                [{"arm": name, "successes": by_arm[name].rates[metric].successes, "n": by_arm[name].n}
                 for name in (baseline, *arms)]
            )
            if (counts["n"] == 0).any():
                continue
            frequentist = compare_arms_with_control(
                counts, control=baseline, confidence_level=confidence_level,
                planned_sample_size=design.planned_members,
            ).set_index("arm")
            bayesian = compare_rates_bayesian(counts, control=baseline).set_index("arm")
            for arm in arms:
                out[(arm, baseline, metric)] = {
                    "sequential_ci_low": float(frequentist.loc[arm, "sequential_ci_low"]),
                    "sequential_ci_high": float(frequentist.loc[arm, "sequential_ci_high"]),
                    "sequential_p_value": float(frequentist.loc[arm, "sequential_p_value"]),
                    "sequential_p_value_holm": float(frequentist.loc[arm, "sequential_p_value_holm"]),
                    "chance_to_beat": float(bayesian.loc[arm, "chance_to_beat_control"]),
                }
    return out


def _validated_members(frame: pd.DataFrame, design: ExperimentDesign) -> pd.DataFrame:
    missing = [c for c in MEMBER_OUTCOME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"members_with_outcomes lacks columns {missing}")
    if frame["subscriber_key"].isna().any() or frame["subscriber_key"].duplicated().any():
        raise ValueError("members_with_outcomes needs one row per non-missing subscriber_key")
    unknown = set(frame["arm"].unique()) - set(design.arm_names)
    if unknown:
        raise ValueError(f"members_with_outcomes has arms not in the design: {sorted(map(str, unknown))}")
    covariates = [column for column in CUPED_COVARIATES.values() if column in frame.columns]
    out = frame[[*MEMBER_OUTCOME_COLUMNS, *covariates]].copy()
    for column in covariates:
        values = pd.to_numeric(out[column].astype(object), errors="coerce")
        if values.isna().any() or not np.isfinite(values.to_numpy(dtype=float)).all():
            raise ValueError(f"{column} must be a finite number (or boolean) for every member")
        out[column] = values.astype(float)
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
