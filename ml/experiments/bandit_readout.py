"""What a bandit learns from, and how it is read: matured rewards per send, and lifts
stratified by day, valid while the allocation changes.

**Rewards.** A bandit's unit is a send. Its reward is the declared `reward_metric` within the
declared `reward_days` of the send (`ml.experiments.design.BanditAllocation`): a purchase by
the recipient, or a click (an open) of that e-mail, a proxy declared with its justification.
A send counts only once that window has closed by the moment the data is read (a matured
outcome): every counted send had the same time to earn its reward, and nothing not yet
knowable is counted as a failure. Read from landed sends, e-mail events and orders only,
never from a simulator. The same matured sends carry the guardrails (`GUARDRAIL_EVENTS`: an
unsubscribe or complaint from that e-mail inside the window), which `guardrail_holds` tests
arm by arm against control, and the readout reads the primary metric (a purchase) on its
own matured sends, whatever the bandit learns from.

**Reading a bandit.** Each day's arms are randomised by that day's weights, and the
weights depend on earlier outcomes. Pooling an arm's sends over days weights it towards
the days it was favoured, so when the base rate moves over days (seasonality, a shift, the
audience) the pooled rates differ even between arms that are the same: the naive pooled
lift is biased. Within a day the arms are a randomised comparison, so the readout compares
them day by day and combines the days' differences with the Cochran-Mantel-Haenszel
weights for a risk difference, w_d = n_arm,d n_base,d / (n_arm,d + n_base,d) (Greenland and
Robins 1985; statsmodels' StratifiedTable pools odds and risk ratios, not differences).
Given the days' allocations, each day's difference is unbiased for that day's lift, so the
combination is unbiased for a lift common to the days. Its variance is the weighted sum of
the days' binomial variances; the always-valid interval is the confidence sequence of
`ml.experiments.sequential` at that standard error (asymptotic; days with an arm empty add
nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ml.experiments.decision import DecisionRule, MetricInterval, describe, excludes_zero
from ml.experiments.sequential import confidence_sequence_halfwidth, sequential_rho

SEND_INPUT = ("send_id", "subscriber_key", "arm", "sent_at")
ORDER_INPUT = ("subscriber_key", "ordered_at")
EVENT_INPUT = ("send_id", "event_type", "occurred_at")
# One row per matured send (and, with events, one flag per guardrail: GUARDRAIL_EVENTS).
REWARD_COLUMNS = ("send_id", "arm", "sent_day", "rewarded")
# What a bandit can learn from: a purchase by the recipient, or the e-mail's click or open
# (event types of ml.vocabulary.EMAIL_EVENT_TYPES).
REWARD_METRICS = ("purchase", "click", "open")
# Guardrail metric (ml.experiments.decision.DecisionRule) -> (e-mail event, per-send flag).
GUARDRAIL_EVENTS = {"unsubscribe_rate": ("unsubscribe", "unsubscribed"), "complaint_rate": ("complaint", "complained")}
DAILY_COUNT_COLUMNS = ("day", "arm", "successes", "n")

STRATIFIED_METHOD = (
    "per-day stratified risk difference (Cochran-Mantel-Haenszel weights n1 n0 / (n1 + n0)) over the days' randomised "
    "allocations, with its always-valid confidence sequence"
)


def matured_rewards(sends: pd.DataFrame, orders: pd.DataFrame, *, as_of: datetime, reward_days: int,
                    metric: str = "purchase", events: pd.DataFrame | None = None) -> pd.DataFrame:
    """REWARD_COLUMNS for every send of `sends` whose reward window [sent_at, sent_at +
    reward_days) has closed by `as_of`: rewarded when, inside it, its recipient ordered
    (`metric` purchase) or the e-mail had a click or open event (`metric` click, open; from
    `events`, EVENT_INPUT). With `events`, each guardrail's flag (GUARDRAIL_EVENTS) says
    whether the e-mail had that event inside the same window."""
    if metric not in REWARD_METRICS:
        raise ValueError(f"a bandit's reward metric is one of {REWARD_METRICS}, got {metric!r}")
    if metric != "purchase" and events is None:
        raise ValueError(f"a {metric} reward is read from the e-mail events: pass events")
    inputs = [(sends, SEND_INPUT, "sends"), (orders, ORDER_INPUT, "orders")]
    for frame, columns, name in inputs + ([(events, EVENT_INPUT, "events")] if events is not None else []):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lack columns {missing}")
    if not (isinstance(reward_days, int) and reward_days >= 1):
        raise ValueError(f"reward_days must be a whole number of at least 1, got {reward_days!r}")
    if sends["send_id"].duplicated().any():
        raise ValueError("sends contain a send_id more than once")
    window = pd.Timedelta(days=reward_days)
    sent_at = pd.to_datetime(sends["sent_at"])
    matured = sends.loc[sent_at + window <= pd.Timestamp(as_of), list(SEND_INPUT)].assign(
        sent_at=lambda f: pd.to_datetime(f["sent_at"]))

    def inside_window(happened: pd.DataFrame, key: str, at: str) -> pd.Series:
        """Whether each matured send has a row of `happened` (joined on `key`) inside its window."""
        pairs = matured[["send_id", "subscriber_key", "sent_at"]].merge(
            happened[[key, at]].assign(**{at: lambda f: pd.to_datetime(f[at])}), on=key)
        inside = pairs[(pairs[at] >= pairs["sent_at"]) & (pairs[at] < pairs["sent_at"] + window)]
        return matured["send_id"].isin(inside["send_id"])

    if metric == "purchase":
        rewarded = inside_window(orders, "subscriber_key", "ordered_at")
    else:
        rewarded = inside_window(events[events["event_type"] == metric], "send_id", "occurred_at")
    flags = {} if events is None else {
        flag: inside_window(events[events["event_type"] == event], "send_id", "occurred_at").to_numpy()
        for event, flag in GUARDRAIL_EVENTS.values()}
    return pd.DataFrame({
        "send_id": matured["send_id"].to_numpy(),
        "arm": matured["arm"].to_numpy(),
        "sent_day": matured["sent_at"].dt.date.to_numpy(),
        "rewarded": rewarded.to_numpy(),
        **flags,
    }, columns=list(REWARD_COLUMNS) + list(flags))


def reward_counts(rewards: pd.DataFrame) -> pd.DataFrame:
    """(arm, successes, n) over every matured send: the bandit's posterior input."""
    return (rewards.groupby("arm", sort=True)["rewarded"].agg(successes="sum", n="size").reset_index()
            .astype({"successes": "int64", "n": "int64"}))


def daily_reward_counts(rewards: pd.DataFrame, column: str = "rewarded") -> pd.DataFrame:
    """DAILY_COUNT_COLUMNS: matured sends and their `column` (the reward, or a guardrail's
    flag) per send day and arm (one stratum a day)."""
    daily = rewards.groupby(["sent_day", "arm"], sort=True)[column].agg(successes="sum", n="size").reset_index()
    return daily.rename(columns={"sent_day": "day"}).astype({"successes": "int64", "n": "int64"})[list(DAILY_COUNT_COLUMNS)]


# ml.bandit_reward_counts: what a bandit's day reads from its landed outcomes, counted once
# (`matured_counts`) by the day's allocation and read again by the day's report: per reading
# day, metric (a reward metric or a guardrail of GUARDRAIL_EVENTS) and window, the matured
# sends and their successes per send day and arm.
REWARD_COUNT_COLUMN_TYPES = {
    "counted_on": "date",
    "experiment_id": "varchar",
    "metric": "varchar",
    "window_days": "bigint",
    "day": "date",  # the send day (one stratum)
    "arm": "varchar",
    "successes": "bigint",
    "n": "bigint",
}


def matured_counts(sends: pd.DataFrame, orders: pd.DataFrame, events: pd.DataFrame, *, as_of: datetime,
                   windows: Iterable[tuple[str, int]]) -> pd.DataFrame:
    """For each (reward metric, window in days) of `windows` (e.g. the bandit's reward and the
    readout's primary metric), the daily counts (`daily_reward_counts`) of its matured rewards
    (`matured_rewards` with `events`) and of each guardrail's flag in the same window, as
    rows of metric, window_days and DAILY_COUNT_COLUMNS: everything a bandit's day reads,
    from one read of the sends, orders and events. A guardrail's counts appear once per
    window."""
    frames, seen = [], set()
    for metric, days in windows:
        rewards = matured_rewards(sends, orders, as_of=as_of, reward_days=days, metric=metric, events=events)
        for name, column in ((metric, "rewarded"), *((g, flag) for g, (_, flag) in GUARDRAIL_EVENTS.items())):
            if (name, days) not in seen:
                seen.add((name, days))
                frames.append(daily_reward_counts(rewards, column).assign(metric=name, window_days=days))
    columns = ["metric", "window_days", *DAILY_COUNT_COLUMNS]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def counts_of(counts: pd.DataFrame, metric: str, window_days: int) -> pd.DataFrame:
    """DAILY_COUNT_COLUMNS of one metric and window from `matured_counts`' rows (none before
    a send has matured in that window)."""
    chosen = counts[(counts["metric"] == metric) & (counts["window_days"] == window_days)]
    return chosen[list(DAILY_COUNT_COLUMNS)].reset_index(drop=True).astype({"successes": "int64", "n": "int64"})


def arm_totals(daily: pd.DataFrame) -> pd.DataFrame:
    """(arm, successes, n) summed over the days of `daily` (DAILY_COUNT_COLUMNS): the bandit's
    posterior input, as `reward_counts` gives it from the sends."""
    return (daily.groupby("arm", sort=True)[["successes", "n"]].sum().reset_index()
            .astype({"successes": "int64", "n": "int64"}))


@dataclass(frozen=True)
class StratifiedLift:
    """An arm's rate minus the baseline's, over the days up to one, stratified by day."""

    arm: str
    baseline: str
    through_day: object
    days: int  # days with both arms present
    n: int  # units of both arms on those days
    lift: float
    standard_error: float
    ci_low: float  # always valid
    ci_high: float
    naive_lift: float  # pooled over days, biased when allocation and base rate both move


def stratified_lift(daily: pd.DataFrame, arm: str, baseline: str, *, planned_sample_size: int,
                    confidence_level: float = 0.95) -> StratifiedLift:
    """The day-stratified lift of `arm` over `baseline` from `daily` (DAILY_COUNT_COLUMNS), with
    its always-valid interval (tightest at `planned_sample_size` units of both arms), and the
    naive pooled lift beside it."""
    missing = [c for c in DAILY_COUNT_COLUMNS if c not in daily.columns]
    if missing:
        raise ValueError(f"daily counts lack columns {missing}")
    if daily.duplicated(["day", "arm"]).any():
        raise ValueError("daily counts have more than one row for a day and arm")
    if ((daily["successes"] < 0) | (daily["successes"] > daily["n"])).any():
        raise ValueError("each day and arm needs 0 <= successes <= n")
    pair = daily[daily["arm"].isin([arm, baseline])]
    through = pair["day"].max() if len(pair) else None
    by_day = pair.pivot(index="day", columns="arm", values=["successes", "n"]).reindex(
        columns=pd.MultiIndex.from_product([["successes", "n"], [arm, baseline]])).fillna(0)
    present = by_day[(by_day[("n", arm)] > 0) & (by_day[("n", baseline)] > 0)]
    if present.empty:
        return StratifiedLift(arm, baseline, through, 0, 0, *([math.nan] * 5))
    s1, n1 = present[("successes", arm)].to_numpy(float), present[("n", arm)].to_numpy(float)
    s0, n0 = present[("successes", baseline)].to_numpy(float), present[("n", baseline)].to_numpy(float)
    p1, p0 = s1 / n1, s0 / n0
    weight = n1 * n0 / (n1 + n0)
    lift = float(np.sum(weight * (p1 - p0)) / weight.sum())
    variance = float(np.sum(weight**2 * (p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)) / weight.sum() ** 2)
    standard_error = math.sqrt(variance)
    units = int(n1.sum() + n0.sum())
    half = float(confidence_sequence_halfwidth(standard_error, units, rho=sequential_rho(planned_sample_size, confidence_level),
                                               confidence_level=confidence_level))
    naive = float(s1.sum() / n1.sum() - s0.sum() / n0.sum())
    return StratifiedLift(arm, baseline, through, len(present), units, lift, standard_error, lift - half, lift + half, naive)


def cumulative_lifts(daily: pd.DataFrame, arms, baseline: str, *, planned_sample_size: int,
                     confidence_level: float = 0.95) -> pd.DataFrame:
    """One row per (day, arm): the stratified lift over the days up to that day (the fields of
    `StratifiedLift`), for every arm of `arms` against `baseline`: the readout as it stood on
    each day."""
    days = sorted(daily["day"].unique())
    rows = [vars(stratified_lift(daily[daily["day"] <= day], arm, baseline, planned_sample_size=planned_sample_size,
                                 confidence_level=confidence_level)) | {"through_day": day}
            for day in days for arm in arms if arm != baseline]
    return pd.DataFrame(rows, columns=list(StratifiedLift.__dataclass_fields__))


def guardrail_holds(rewards: pd.DataFrame, arms, control: str, rule: DecisionRule, *,
                    planned_sample_size: int, confidence_level: float = 0.95) -> dict[str, str]:
    """The arms a guardrail stops: arm -> the reason, for each of `arms` (but `control`) whose
    rate of one of `rule`'s guardrails (GUARDRAIL_EVENTS' flags in `rewards`, from
    `matured_rewards` with events) is significantly worse than control's: its day-stratified
    difference (`stratified_lift`, valid while the allocation changes) has an always-valid
    interval wholly on the harmful side of 0 (`ml.experiments.decision`). A bandit holds such
    an arm at its exploration floor."""
    daily = {}
    for guardrail in rule.guardrails:
        flag = GUARDRAIL_EVENTS.get(guardrail.metric, (None, None))[1]
        if flag is not None and flag not in rewards.columns:
            raise ValueError(f"rewards lack the guardrail flag {flag!r}: read them with the e-mail events")
        if flag is not None:
            daily[guardrail.metric] = daily_reward_counts(rewards, flag)
    return guardrail_holds_from_counts(daily, arms, control, rule, planned_sample_size=planned_sample_size,
                                       confidence_level=confidence_level)


def guardrail_holds_from_counts(daily: Mapping[str, pd.DataFrame], arms, control: str, rule: DecisionRule, *,
                                planned_sample_size: int, confidence_level: float = 0.95) -> dict[str, str]:
    """`guardrail_holds` from each guardrail's daily counts (guardrail metric ->
    DAILY_COUNT_COLUMNS of its flag, as `daily_reward_counts` gives them)."""
    unknown = [g.metric for g in rule.guardrails if g.metric not in GUARDRAIL_EVENTS]
    if unknown:
        raise ValueError(f"no e-mail event measures the guardrails {unknown}; known: {sorted(GUARDRAIL_EVENTS)}")
    held = {}
    for guardrail in rule.guardrails:
        if guardrail.metric not in daily:
            raise ValueError(f"no daily counts of the guardrail {guardrail.metric!r}")
        for arm in arms:
            if arm == control or arm in held:
                continue
            lift = stratified_lift(daily[guardrail.metric], arm, control, planned_sample_size=planned_sample_size,
                                   confidence_level=confidence_level)
            interval = MetricInterval(lift.lift, lift.ci_low, lift.ci_high)
            if excludes_zero(interval, guardrail.harmful_direction):
                held[arm] = (f"guardrail {guardrail.metric} breached against {control} over {lift.days} days "
                             f"({lift.n:,} matured sends): {describe(interval)}")
    return held


# The outcomes of the bandit's guardrail check (`bandit_guardrail_check`).
GUARDRAIL_CHECK_OUTCOMES = ("pass", "warn", "fail")
HELD_ARM_COLUMNS = ("arm", "held_since", "days_held", "reason")
ALLOCATION_INPUT = ("allocated_on", "arm", "held_reason")


@dataclass(frozen=True)
class BanditGuardrailCheck:
    """The verdict of a bandit's guardrail check on one day (rule: `bandit_guardrail_check`)."""

    outcome: str  # one of GUARDRAIL_CHECK_OUTCOMES
    allocated_on: object  # the latest allocation day read; None before any allocation
    held: pd.DataFrame  # HELD_ARM_COLUMNS: the arms that allocation holds at the floor
    unheld_breaches: dict[str, str]  # arm -> the readout's breach, for arms the allocation does not hold
    unconfirmed_holds: tuple[str, ...]  # held arms whose breach the readout does not see

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def summary(self) -> str:
        """One sentence per finding, in words with the arms."""
        if self.allocated_on is None and not self.unheld_breaches:
            return "no allocation yet and no guardrail breach in the readout"
        parts = []
        if self.unheld_breaches:
            parts.append("breached but not held at the exploration floor: " + "; ".join(
                f"{arm} ({reason})" for arm, reason in self.unheld_breaches.items()))
        if len(self.held):
            parts.append(f"held at the exploration floor on {self.allocated_on}: " + "; ".join(
                f"{row.arm} since {row.held_since} ({row.reason})" for row in self.held.itertuples(index=False)))
        if self.unconfirmed_holds:
            parts.append("held, but the readout's own sends show no breach: " + ", ".join(self.unconfirmed_holds))
        return ". ".join(parts) if parts else f"no arm held on {self.allocated_on} and no guardrail breach in the readout"


def bandit_guardrail_check(allocations: pd.DataFrame, breaches: Mapping[str, str]) -> BanditGuardrailCheck:
    """Whether a bandit's guardrails acted: `allocations` (ALLOCATION_INPUT, a bandit's rows of
    ml.bandit_allocations up to the day read) against `breaches` (arm -> reason: the arms the
    readout's own matured sends find breaching a guardrail, `guardrail_holds`).

    The rule, on the latest allocation day:
    - fail: an arm breaches a guardrail in the readout but that day's allocation does not hold
      it at the exploration floor (it still gets traffic by its posterior);
    - warn: every breach is held, but an arm is held whose breach the readout does not see
      (the hold rests on the allocation's reading alone: its shorter window, or evidence the
      readout's longer window no longer shows);
    - pass: every breach is held and every hold is confirmed (or nothing is held).
    Held arms are reported with their reason and since when: the first day of the unbroken run
    of allocation days, ending on the latest, on which the arm was held."""
    missing = [c for c in ALLOCATION_INPUT if c not in allocations.columns]
    if missing:
        raise ValueError(f"allocations lack columns {missing}")
    if allocations.duplicated(["allocated_on", "arm"]).any():
        raise ValueError("allocations have more than one row for a day and arm")
    if len(allocations) == 0:
        return BanditGuardrailCheck("fail" if breaches else "pass", None, pd.DataFrame(columns=list(HELD_ARM_COLUMNS)),
                                    dict(breaches), ())
    is_held = allocations.assign(held=allocations["held_reason"].fillna("").astype(str) != "")
    # An arm without a row on a day was not held that day.
    by_day = is_held.pivot(index="allocated_on", columns="arm", values="held").sort_index().fillna(False).astype(bool)
    reasons = is_held.set_index(["allocated_on", "arm"])["held_reason"]
    latest = by_day.index[-1]
    rows = []
    for arm in sorted(a for a in by_day.columns if by_day.loc[latest, a]):
        run = by_day[arm].iloc[::-1]
        # The allocation days from the latest back to the first of the unbroken run of holds.
        days_held = int(run.cumprod().sum())
        rows.append({"arm": arm, "held_since": run.index[days_held - 1], "days_held": days_held,
                     "reason": reasons[(latest, arm)]})
    held = pd.DataFrame(rows, columns=list(HELD_ARM_COLUMNS))
    held_arms = set(held["arm"])
    unheld = {arm: reason for arm, reason in breaches.items() if arm not in held_arms}
    unconfirmed = tuple(arm for arm in held["arm"] if arm not in breaches)
    outcome = "fail" if unheld else "warn" if unconfirmed else "pass"
    return BanditGuardrailCheck(outcome, latest, held, unheld, unconfirmed)
