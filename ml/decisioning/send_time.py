"""When to send: a per-person hour from their own opens, shrunk toward their segment's hours
by empirical Bayes, kept out of quiet hours in their own time zone.

- Each open is placed at its local hour, in the person's time zone (profiles; UTC when
  unknown), daylight saving time included (zoneinfo).
- A segment's hours are the share of its opens per local hour. A person's posterior over the
  24 hours is Dirichlet(prior_strength x segment share + their own counts); the hour with the
  most posterior weight is theirs. `prior_strength` is chosen per segment by empirical Bayes:
  the value on a grid that maximises the Dirichlet-multinomial marginal likelihood of the
  segment's people's counts. `confidence` is the posterior weight of the person's own opens,
  n / (n + prior_strength).
- Source, in order: `own_history` (at least `min_opens` opens), `segment` (the segment has at
  least `min_segment_opens` opens), else `default` (`default_local_hour`).
- The send-time experiment: a stable hash of the key (independent of the other hashes) puts
  `fixed_hour_share` of people in the `fixed_hour` arm, sent at `default_local_hour` local
  whatever their history (source `fixed_hour`); the others are `optimised`. The readout
  (`send_time_readout`) compares their open rates.
- Quiet hours, [quiet_start_hour, quiet_end_hour) local, may cross midnight: an hour inside
  moves to quiet_end_hour. The send is then placed on the send day (a UTC date): of the local
  dates around it, the one whose local time falls inside that UTC day. A local time that a
  DST change skips is read with the offset before the change (zoneinfo's fold=0), so it lands
  just after the gap; its local hour is checked against the quiet hours again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from scipy.special import gammaln

from ml.experiments.design import hash_buckets
from ml.experiments.statistics import rate_difference

OPEN_INPUT = ("subscriber_key", "opened_at")
PROFILE_INPUT = ("subscriber_key", "timezone", "segment")
SEND_TIME_COLUMNS = (
    "subscriber_key", "scheduled_send_at", "send_local_hour", "send_time_source", "send_time_confidence",
    "send_time_arm", "send_time_policy",
)
SEND_TIME_SOURCES = ("own_history", "segment", "default", "fixed_hour")
OWN_HISTORY, SEGMENT, DEFAULT, FIXED_HOUR = SEND_TIME_SOURCES
SEND_TIME_ARMS = ("optimised", "fixed_hour")
OPTIMISED_ARM, FIXED_HOUR_ARM = SEND_TIME_ARMS
PRIOR_STRENGTH_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
HOURS = 24


@dataclass(frozen=True)
class SendTimePolicy:
    """The send-time rules; `version` is recorded on every planned send."""

    version: str = "send-time-v1"
    min_opens: int = 3
    min_segment_opens: int = 50
    default_local_hour: int = 10
    quiet_start_hour: int = 21
    quiet_end_hour: int = 8
    fixed_hour_share: float = 0.5
    experiment_salt: str = "send-time-experiment"

    def __post_init__(self) -> None:
        for name in ("default_local_hour", "quiet_start_hour", "quiet_end_hour"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 0 <= value < HOURS):
                raise ValueError(f"{name} must be an hour 0..23, got {value!r}")
        if self.is_quiet(self.default_local_hour):
            raise ValueError(f"default_local_hour {self.default_local_hour} lies inside the quiet hours")
        if self.min_opens < 1 or self.min_segment_opens < 1:
            raise ValueError("min_opens and min_segment_opens must be at least 1")
        if not 0 <= self.fixed_hour_share <= 1:
            raise ValueError(f"fixed_hour_share must be in [0, 1], got {self.fixed_hour_share!r}")

    def arms(self, subscriber_keys) -> np.ndarray:
        """Each key's send-time arm: a stable hash, independent of the experiment's and the
        targeting policy's hashes."""
        buckets = hash_buckets([str(key) for key in subscriber_keys], f"{self.experiment_salt}:")
        return np.where(buckets < self.fixed_hour_share, FIXED_HOUR_ARM, OPTIMISED_ARM)

    def is_quiet(self, hour: int) -> bool:
        return bool(self.in_quiet_hours(np.array([hour]))[0])

    def in_quiet_hours(self, hours: np.ndarray) -> np.ndarray:
        start, end = self.quiet_start_hour, self.quiet_end_hour
        hours = np.asarray(hours)
        if start == end:
            return np.zeros(hours.shape, dtype=bool)
        if start < end:
            return (hours >= start) & (hours < end)
        return (hours >= start) | (hours < end)  # across midnight


def zone(name) -> ZoneInfo:
    """The IANA zone, UTC for a missing or unknown name."""
    if not isinstance(name, str) or not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_hours(opened_at: pd.Series, timezones: pd.Series) -> np.ndarray:
    """The local hour of each UTC instant in its time zone (DST included)."""
    instants = pd.to_datetime(opened_at, utc=True)
    hours = np.zeros(len(instants), dtype=np.int64)
    names = timezones.fillna("UTC").astype(str).to_numpy()
    for name in np.unique(names):
        at = names == name
        hours[at] = instants[at].dt.tz_convert(zone(name)).dt.hour.to_numpy()
    return hours


def dirichlet_multinomial_log_likelihood(counts: np.ndarray, shares: np.ndarray, strength: float) -> float:
    """Log marginal likelihood of per-person hour counts (people x 24) under
    Dirichlet(strength x shares), up to the multinomial coefficients (constant in strength)."""
    alpha = strength * shares
    n = counts.sum(axis=1)
    return float(np.sum(
        gammaln(strength) - gammaln(strength + n)
        + np.sum(gammaln(alpha[None, :] + counts) - gammaln(alpha[None, :]), axis=1)
    ))


def empirical_bayes_strength(counts: np.ndarray, shares: np.ndarray) -> float:
    """The prior strength on PRIOR_STRENGTH_GRID that best explains the segment's counts."""
    # Hours nobody in the segment opened at get a floor, or their Dirichlet parameter is 0.
    shares = np.maximum(shares, 1e-3)
    shares = shares / shares.sum()
    people = counts[counts.sum(axis=1) > 0]
    if len(people) == 0:
        return PRIOR_STRENGTH_GRID[-1]
    scores = [dirichlet_multinomial_log_likelihood(people, shares, k) for k in PRIOR_STRENGTH_GRID]
    return PRIOR_STRENGTH_GRID[int(np.argmax(scores))]


def best_hours(opens: pd.DataFrame, profiles: pd.DataFrame, policy: SendTimePolicy) -> pd.DataFrame:
    """Per profile: `best_local_hour` (before quiet hours), `send_time_source`,
    `send_time_confidence`, `prior_strength` and `own_opens`."""
    for frame, columns, name in ((opens, OPEN_INPUT, "opens"), (profiles, PROFILE_INPUT, "profiles")):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lack columns {missing}")
    people = profiles[list(PROFILE_INPUT)].drop_duplicates("subscriber_key").reset_index(drop=True)
    people["segment"] = people["segment"].fillna("unknown").astype(str)
    row = pd.Index(people["subscriber_key"]).get_indexer(opens["subscriber_key"])
    known = row >= 0
    hours = local_hours(opens.loc[known, "opened_at"].reset_index(drop=True),
                        people["timezone"].iloc[row[known]].reset_index(drop=True))
    counts = np.zeros((len(people), HOURS))
    np.add.at(counts, (row[known], hours), 1.0)
    own = counts.sum(axis=1)

    best = np.full(len(people), policy.default_local_hour)
    source = np.full(len(people), DEFAULT, dtype=object)
    confidence = np.zeros(len(people))
    strength_of = np.full(len(people), np.nan)
    for segment, members in people.groupby("segment").groups.items():
        members = np.asarray(members)
        segment_counts = counts[members].sum(axis=0)
        if segment_counts.sum() < policy.min_segment_opens:
            continue
        shares = segment_counts / segment_counts.sum()
        strength = empirical_bayes_strength(counts[members], shares)
        posterior = strength * shares[None, :] + counts[members]
        # Ties go to the earliest hour, so the choice is reproducible.
        best[members] = posterior.argmax(axis=1)
        source[members] = np.where(own[members] >= policy.min_opens, OWN_HISTORY, SEGMENT)
        confidence[members] = own[members] / (own[members] + strength)
        strength_of[members] = strength
    return people[["subscriber_key", "timezone", "segment"]].assign(
        best_local_hour=best, send_time_source=source, send_time_confidence=confidence,
        prior_strength=strength_of, own_opens=own.astype(int),
    )


def schedule_on(send_day: date, local_hour: int, timezone_name, policy: SendTimePolicy) -> tuple[datetime, int]:
    """The UTC moment on the UTC date `send_day` at `local_hour` in the zone, out of quiet
    hours: (naive UTC datetime, the local hour it lands at)."""
    tz = zone(timezone_name)
    hour = policy.quiet_end_hour if policy.is_quiet(local_hour) else local_hour
    day_start = datetime(send_day.year, send_day.month, send_day.day, tzinfo=timezone.utc)
    for offset in (0, -1, 1):
        local_day = send_day + timedelta(days=offset)
        local = datetime(local_day.year, local_day.month, local_day.day, hour, tzinfo=tz)
        at = local.astimezone(timezone.utc)
        # A DST gap moves a skipped local time forward; it must still be outside quiet hours.
        landed = at.astimezone(tz).hour
        if day_start <= at < day_start + timedelta(days=1) and not policy.is_quiet(landed):
            return at.replace(tzinfo=None), landed
    # No local date puts that hour inside the UTC day (a zone 14 h from UTC near the edge):
    # the first allowed local hour inside the day.
    for step in range(HOURS * 4):
        at = day_start + timedelta(minutes=15 * step)
        landed = at.astimezone(tz).hour
        if not policy.is_quiet(landed):
            return at.replace(tzinfo=None), landed
    raise ValueError(f"every moment of {send_day} is inside the quiet hours in {timezone_name}")


def plan_send_times(opens: pd.DataFrame, profiles: pd.DataFrame, send_day: date, policy: SendTimePolicy) -> pd.DataFrame:
    """SEND_TIME_COLUMNS for every profile: when on `send_day` (UTC date) to send, and why."""
    hours = best_hours(opens, profiles, policy)
    arm = policy.arms(hours["subscriber_key"])
    fixed = arm == FIXED_HOUR_ARM
    hours["send_time_arm"] = arm
    hours.loc[fixed, "best_local_hour"] = policy.default_local_hour
    hours.loc[fixed, "send_time_source"] = FIXED_HOUR
    hours.loc[fixed, "send_time_confidence"] = np.nan
    # Few distinct (hour, zone) pairs: each is placed once.
    placed: dict[tuple[int, str], tuple[datetime, int]] = {}
    scheduled = []
    for hour, name in zip(hours["best_local_hour"], hours["timezone"]):
        key = (int(hour), name if isinstance(name, str) else "")
        if key not in placed:
            placed[key] = schedule_on(send_day, *key, policy)
        scheduled.append(placed[key])
    return hours.assign(
        send_time_policy=policy.version,
        scheduled_send_at=pd.to_datetime([at for at, _ in scheduled]) if scheduled else pd.Series([], dtype="datetime64[ns]"),
        send_local_hour=[landed for _, landed in scheduled],
    )[list(SEND_TIME_COLUMNS)]


@dataclass(frozen=True)
class SendTimeReadout:
    """Open rate of delivered sends per send-time arm; the difference optimised minus fixed
    hour with Newcombe's 95% interval and a two-proportion z-test."""

    optimised_sends: int
    optimised_opens: int
    fixed_hour_sends: int
    fixed_hour_opens: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float

    def metrics(self) -> dict[str, float]:
        rate = lambda opens, sends: opens / sends if sends else float("nan")  # noqa: E731
        return {
            "optimised_open_rate": rate(self.optimised_opens, self.optimised_sends),
            "fixed_hour_open_rate": rate(self.fixed_hour_opens, self.fixed_hour_sends),
            "open_rate_difference": self.difference,
            "open_rate_difference_ci_low": self.ci_low,
            "open_rate_difference_ci_high": self.ci_high,
            "p_value": self.p_value,
            "optimised_sends": float(self.optimised_sends),
            "fixed_hour_sends": float(self.fixed_hour_sends),
        }


def send_time_readout(outcomes: pd.DataFrame) -> SendTimeReadout:
    """`outcomes`: one row per send (send_time_arm, delivered, opened)."""
    missing = [c for c in ("send_time_arm", "delivered", "opened") if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lack columns {missing}")
    delivered = outcomes[outcomes["delivered"].fillna(False).astype(bool)]
    counts = {
        arm: (int((delivered["send_time_arm"] == arm).sum()),
              int(delivered.loc[delivered["send_time_arm"] == arm, "opened"].fillna(False).astype(bool).sum()))
        for arm in SEND_TIME_ARMS
    }
    (n_opt, o_opt), (n_fix, o_fix) = counts[OPTIMISED_ARM], counts[FIXED_HOUR_ARM]
    difference, low, high, p_value = rate_difference(o_opt, n_opt, o_fix, n_fix)
    return SendTimeReadout(n_opt, o_opt, n_fix, o_fix, difference, low, high, p_value)
