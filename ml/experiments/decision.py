"""The decision rule, declared before launch: ship, stop or keep running, and why.

The rule reads always-valid intervals (`ml.experiments.sequential`), so applying it every
day does not inflate its error rates. In order, the first that applies decides:

1. the sample-ratio check failed: stop; the assignment or the data is broken and no
   figure can be trusted;
2. a guardrail's interval excludes 0 in its harmful direction (e.g. the arm's unsubscribe
   rate is above control's): stop the arm;
3. the primary metric's interval excludes 0 in the wrong direction: stop, the arm is worse;
4. the primary metric's interval excludes 0 in the right direction: ship;
5. otherwise (including before any data): keep running.

An interval that merely touches 0 does not exclude it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from ml.vocabulary import EXPERIMENT_VERDICTS

SHIP, STOP, KEEP_RUNNING = EXPERIMENT_VERDICTS
HARMFUL_DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class Guardrail:
    """A metric the arm must not harm; `harmful_direction` says which way is harm."""

    metric: str
    harmful_direction: str = "increase"

    def __post_init__(self) -> None:
        if not self.metric:
            raise ValueError("a guardrail needs a metric name")
        if self.harmful_direction not in HARMFUL_DIRECTIONS:
            raise ValueError(f"harmful_direction must be one of {HARMFUL_DIRECTIONS}, got {self.harmful_direction!r}")


@dataclass(frozen=True)
class DecisionRule:
    """What ships, what stops; declared with the experiment, before its first readout."""

    primary_metric: str
    guardrails: tuple[Guardrail, ...] = (Guardrail("unsubscribe_rate"), Guardrail("complaint_rate"))
    primary_higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not self.primary_metric:
            raise ValueError("a decision rule needs a primary metric")
        names = [g.metric for g in self.guardrails]
        if self.primary_metric in names or len(set(names)) != len(names):
            raise ValueError("each metric may appear once, as the primary metric or as one guardrail")
        object.__setattr__(self, "guardrails", tuple(self.guardrails))

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.primary_metric, *(g.metric for g in self.guardrails))


@dataclass(frozen=True)
class MetricInterval:
    """Arm minus control for one metric, with its always-valid interval."""

    difference: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Decision:
    """The verdict (one of `EXPERIMENT_VERDICTS`) and the reason, in words with the figures."""

    verdict: str
    reason: str
    breached_guardrails: tuple[str, ...] = ()


def decide(rule: DecisionRule, intervals: Mapping[str, MetricInterval], *, srm_passed: bool) -> Decision:
    """Apply `rule` to one arm's intervals against control (keyed by metric name)."""
    missing = [metric for metric in rule.metrics if metric not in intervals]
    if missing:
        raise ValueError(f"no interval for the rule's metrics {missing}")
    if not srm_passed:
        return Decision(
            STOP, "the sample-ratio check failed: the assignment or the data is broken, so no figure can be trusted"
        )

    breached = tuple(g.metric for g in rule.guardrails if excludes_zero(intervals[g.metric], g.harmful_direction))
    if breached:
        details = "; ".join(f"{metric} {describe(intervals[metric])}" for metric in breached)
        return Decision(STOP, f"guardrail breached, the arm harms {', '.join(breached)}: {details}", breached)

    primary = intervals[rule.primary_metric]
    good, bad = ("increase", "decrease") if rule.primary_higher_is_better else ("decrease", "increase")
    if excludes_zero(primary, bad):
        return Decision(STOP, f"the primary metric {rule.primary_metric} is worse than control: {describe(primary)}")
    if excludes_zero(primary, good):
        return Decision(
            SHIP,
            f"the primary metric {rule.primary_metric} beats control and no guardrail is breached: "
            f"{describe(primary)}",
        )
    if math.isnan(primary.ci_low) or math.isnan(primary.ci_high):
        return Decision(KEEP_RUNNING, f"no interval yet for the primary metric {rule.primary_metric}")
    return Decision(
        KEEP_RUNNING, f"the primary metric {rule.primary_metric}'s interval still includes 0: {describe(primary)}"
    )


def excludes_zero(interval: MetricInterval, direction: str) -> bool:
    """Whether the interval lies wholly above 0 ("increase") or wholly below it ("decrease"); NaN never does."""
    if direction == "increase":
        return interval.ci_low > 0
    return interval.ci_high < 0


def describe(interval: MetricInterval) -> str:
    return f"difference {interval.difference:+.4g}, always-valid CI [{interval.ci_low:+.4g}, {interval.ci_high:+.4g}]"
