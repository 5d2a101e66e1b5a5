"""Before launch: how many days the declared minimum detectable effect needs.

The primary metric is read intention-to-treat and cumulatively: a member converts if they
buy any time from the first send day to the readout. With a daily purchase chance `r`, the
control rate after `d` days is 1 - (1 - r)^d; the arm's is that times (1 + relative MDE).
The power of the two-sided two-proportion z-test at the members each arm holds is
statsmodels' (`NormalIndPower`, Cohen's h from `proportion_effectsize`). The first day on
which it reaches the target is the answer.

This is the fixed-horizon test's horizon. The daily readout's always-valid intervals are
wider (the price of reading every day), so the readout needs at least this many days; the
figure is a floor, stated as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

MAX_DAYS = 365


@dataclass(frozen=True)
class PowerAnalysis:
    members_per_arm: int
    control_members: int
    baseline_daily_rate: float
    relative_mde: float
    alpha: float
    power: float
    days_needed: int | None  # None: not within MAX_DAYS at this audience
    power_by_day: tuple[float, ...]  # power after 1, 2, ... days, up to days_needed (or MAX_DAYS)

    def describe(self) -> str:
        if self.days_needed is None:
            return (
                f"a {self.relative_mde:.0%} relative lift in conversion cannot reach {self.power:.0%} power within "
                f"{MAX_DAYS} days with {self.members_per_arm:,} members in the arm and {self.control_members:,} in "
                f"control (daily purchase chance {self.baseline_daily_rate:.3%}): the audience is too small"
            )
        return (
            f"a {self.relative_mde:.0%} relative lift in conversion needs at least {self.days_needed} days for "
            f"{self.power:.0%} power at alpha {self.alpha:g} (fixed horizon; the daily always-valid readout needs "
            f"more), with {self.members_per_arm:,} members in the arm, {self.control_members:,} in control and a "
            f"daily purchase chance of {self.baseline_daily_rate:.3%}"
        )


def days_to_detect(
    members_per_arm: int,
    control_members: int,
    baseline_daily_rate: float,
    relative_mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerAnalysis:
    """The first day on which the cumulative conversion lift `relative_mde` is detected with
    `power` (two-sided, level `alpha`)."""
    for name, value in (("members_per_arm", members_per_arm), ("control_members", control_members)):
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if not (math.isfinite(baseline_daily_rate) and 0 < baseline_daily_rate < 1):
        raise ValueError(f"baseline_daily_rate must be in (0, 1), got {baseline_daily_rate!r}")
    if not (math.isfinite(relative_mde) and relative_mde > 0):
        raise ValueError(f"relative_mde must be positive, got {relative_mde!r}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be in (0, 1)")
    engine = NormalIndPower()
    powers = []
    needed = None
    for day in range(1, MAX_DAYS + 1):
        control = 1 - (1 - baseline_daily_rate) ** day
        arm = min(control * (1 + relative_mde), 1 - 1e-12)
        achieved = float(engine.power(
            effect_size=proportion_effectsize(arm, control), nobs1=members_per_arm,
            alpha=alpha, ratio=control_members / members_per_arm, alternative="two-sided",
        ))
        powers.append(achieved)
        if achieved >= power:
            needed = day
            break
    return PowerAnalysis(
        members_per_arm=members_per_arm, control_members=control_members, baseline_daily_rate=baseline_daily_rate,
        relative_mde=relative_mde, alpha=alpha, power=power, days_needed=needed, power_by_day=tuple(powers),
    )
