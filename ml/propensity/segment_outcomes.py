"""Has a segment's response to our e-mails changed? The daily outcome-based segment check.

Feature drift sees a change of behaviour only once it has moved a 7-day (or longer) window,
and the purchase label matures after 14 days. The open of a send is known within hours. This
check reads the pipeline's own sends (ml.planned_sends, with each person's segment as the plan
saw it) and their opens (marts.fct_email_events), and asks, per segment: is the segment's
open rate, relative to everyone else's on the same days, different on the latest complete
sending days (SEGMENT_RECENT_DAYS) from what it was in the weeks before?

- Rate: a send is opened if its first open comes within OPEN_WINDOW_HOURS of sent_at, and a
  send is read only once that window has closed, so the recent days and the baseline are
  measured alike.
- Comparison: a 2x2 table (segment / everyone else, opened / not) per stratum of sends the
  plan treated alike: the sending day, the decile of the day's propensity scores, the
  targeting group (scored or random control) and the person's other segments
  (`send_strata`). The Mantel-Haenszel pooled odds ratio over the baseline days is the
  segment's usual standing; the same over the recent day(s) is its standing now (statsmodels
  StratifiedTable, with the Robins-Breslow-Greenland standard error, valid for sparse
  strata). Comparing with the rest of the same day takes out whatever moves every segment
  alike (how many we send, the day's subject lines); comparing within score bands and groups
  takes out a change in whom our own policy emails (a new model, the uplift policy), which
  otherwise moves "everyone else" and reads as a change in every segment.
- Test: z on the difference of the two log odds ratios, two-sided; Holm's correction across
  every tested segment (statsmodels multipletests) at SEGMENT_ALPHA; a flag also needs the
  change to be at least SEGMENT_MIN_ODDS_CHANGE (or its inverse), so a tiny change on large
  volumes does not fire.

Plain pandas in, a SegmentOutcomeCheck out; the thresholds are in ml/propensity/monitoring.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from ml.propensity.monitoring import (
    OPEN_WINDOW_HOURS,
    SEGMENT_ALPHA,
    SEGMENT_BASELINE_DAYS,
    SEGMENT_COLUMNS,
    SEGMENT_MIN_BASELINE_SENDS,
    SEGMENT_MIN_ODDS_CHANGE,
    SEGMENT_MIN_RECENT_SENDS,
    SEGMENT_RECENT_DAYS,
    SEGMENT_SCORE_BANDS,
    SEGMENT_STRATA_COLUMNS,
)

# What the check reads per send: its id, when it was sent, its first open (NaT if none), the
# plan's propensity score, the strata columns and the segment columns.
SEND_COLUMNS = ("send_id", "sent_at", "first_opened_at", "propensity_score", *SEGMENT_STRATA_COLUMNS)


@dataclass(frozen=True)
class SegmentShift:
    """One tested segment: its open rate and that of everyone else, recent against baseline."""

    column: str
    segment: str
    recent_sends: int
    recent_open_rate: float
    recent_rest_open_rate: float
    baseline_sends: int
    baseline_open_rate: float
    baseline_rest_open_rate: float
    # exp(log OR recent - log OR baseline): how the segment's open odds relative to the rest moved.
    odds_change: float
    z: float
    p_value: float
    p_holm: float = math.nan

    @property
    def large_enough(self) -> bool:
        return self.odds_change <= SEGMENT_MIN_ODDS_CHANGE or self.odds_change >= 1 / SEGMENT_MIN_ODDS_CHANGE

    @property
    def flagged(self) -> bool:
        return self.p_holm < SEGMENT_ALPHA and self.large_enough

    @property
    def name(self) -> str:
        return f"{self.column}={self.segment}"

    def sentence(self) -> str:
        return (
            f"{self.name}: open rate {self.recent_open_rate:.1%} of {self.recent_sends:,} sends "
            f"(rest {self.recent_rest_open_rate:.1%}) against {self.baseline_open_rate:.1%} of "
            f"{self.baseline_sends:,} (rest {self.baseline_rest_open_rate:.1%}): odds relative to the rest "
            f"x{self.odds_change:.2f}, Holm p = {self.p_holm:.2g}"
        )


@dataclass(frozen=True)
class SegmentOutcomeCheck:
    """The day's verdict: which segments moved, which were tested, which had too few sends."""

    as_of: datetime
    recent_days: tuple[date, ...]
    baseline_days: tuple[date, ...]
    tested: tuple[SegmentShift, ...] = ()
    untested: tuple[str, ...] = ()  # "column=segment (n recent, m baseline sends)"
    reason: str = ""  # why nothing was tested, when nothing was
    flagged: tuple[SegmentShift, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flagged", tuple(s for s in self.tested if s.flagged))

    @property
    def passed(self) -> bool:
        return not self.flagged

    def description(self) -> str:
        if not self.tested:
            return f"nothing tested: {self.reason}"
        head = (
            f"{len(self.flagged)} of {len(self.tested)} segments changed their open rate on "
            f"{', '.join(map(str, self.recent_days))} against {len(self.baseline_days)} baseline day(s)"
        )
        shown = self.flagged or sorted(self.tested, key=lambda s: s.p_holm)[:1]
        return head + ("; " if self.flagged else "; closest: ") + "; ".join(s.sentence() for s in shown)


def opened_within_window(sends: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """The sends whose open window has closed by ``as_of``, with ``opened`` (first open within
    OPEN_WINDOW_HOURS of sent_at) and ``sent_day``."""
    window = pd.Timedelta(hours=OPEN_WINDOW_HOURS)
    sent_at = pd.to_datetime(sends["sent_at"])
    complete = (sent_at + window) <= pd.Timestamp(as_of)
    closed = sends.loc[complete.to_numpy()].copy()
    first_open = pd.to_datetime(closed["first_opened_at"])
    closed_sent = pd.to_datetime(closed["sent_at"])
    closed["opened"] = (first_open.notna() & (first_open - closed_sent <= window)).to_numpy()
    closed["sent_day"] = closed_sent.dt.date
    return closed


def send_strata(read: pd.DataFrame, column: str, segment_columns: tuple[str, ...],
                score_bands: int = SEGMENT_SCORE_BANDS) -> np.ndarray:
    """An integer stratum per send, for judging the segments of ``column``: the sending day,
    the band of the plan's propensity score among that day's sends (``score_bands``
    quantiles; one band when 1), the SEGMENT_STRATA_COLUMNS and the other segment columns."""
    keys = {"sent_day": read["sent_day"]}
    if score_bands > 1:
        # A send planned without a score (none was recorded) is a band of its own (-1).
        scores = read.groupby("sent_day")["propensity_score"]
        keys["score_band"] = np.floor((scores.rank(method="first") - 1) * score_bands / scores.transform("count")).fillna(-1)
    keys |= {c: read[c].astype("string").fillna("unknown") for c in (*SEGMENT_STRATA_COLUMNS, *segment_columns) if c != column}
    frame = pd.DataFrame(keys)
    return frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()


def _day_tables(in_segment: np.ndarray, opened: np.ndarray, day: np.ndarray) -> np.ndarray:
    """(2, 2, strata) tables of [segment, rest] x [opened, not opened], one per stratum (a day,
    or finer, `send_strata`) where both sides were sent."""
    tables = []
    for d in np.unique(day):
        on_day = day == d
        seg, rest = on_day & in_segment, on_day & ~in_segment
        if not seg.any() or not rest.any():
            continue
        tables.append([[opened[seg].sum(), (~opened[seg]).sum()], [opened[rest].sum(), (~opened[rest]).sum()]])
    return np.array(tables, dtype=float).transpose(1, 2, 0) if tables else np.zeros((2, 2, 0))


def _pooled_log_odds(tables: np.ndarray) -> tuple[float, float]:
    from statsmodels.stats.contingency_tables import StratifiedTable

    pooled = StratifiedTable(tables, shift_zeros=True)
    return float(pooled.logodds_pooled), float(pooled.logodds_pooled_se)


def segment_outcome_shifts(
    sends: pd.DataFrame, as_of: datetime, segment_columns: tuple[str, ...] = SEGMENT_COLUMNS,
    score_bands: int = SEGMENT_SCORE_BANDS,
) -> SegmentOutcomeCheck:
    """The outcome-based segment check on ``sends`` (SEND_COLUMNS plus ``segment_columns``,
    one row per send of the pipeline's own plans) as of ``as_of``.

    A segment is tested when it has at least SEGMENT_MIN_RECENT_SENDS read sends in the recent
    window and SEGMENT_MIN_BASELINE_SENDS in the baseline; the rest is listed as untested.
    """
    from scipy.stats import norm
    from statsmodels.stats.multitest import multipletests

    missing = [c for c in (*SEND_COLUMNS, *segment_columns) if c not in sends.columns]
    if missing:
        raise ValueError(f"the sends lack columns {missing}")
    read = opened_within_window(sends, as_of)
    if read.empty:
        return SegmentOutcomeCheck(as_of, (), (), reason=f"no send's {OPEN_WINDOW_HOURS}-hour open window has closed yet")
    last = max(read["sent_day"])
    recent_days = tuple(last - timedelta(days=k) for k in reversed(range(SEGMENT_RECENT_DAYS)))
    baseline_start = recent_days[0] - timedelta(days=SEGMENT_BASELINE_DAYS)
    is_recent = read["sent_day"].isin(recent_days).to_numpy()
    is_baseline = ((read["sent_day"] >= baseline_start) & (read["sent_day"] < recent_days[0])).to_numpy()
    baseline_days = tuple(sorted(set(read.loc[is_baseline, "sent_day"])))
    if not baseline_days:
        return SegmentOutcomeCheck(
            as_of, recent_days, (), reason=f"no sends in the {SEGMENT_BASELINE_DAYS} days before {recent_days[0]} to compare with"
        )
    opened = read["opened"].to_numpy(dtype=bool)
    tested: list[SegmentShift] = []
    untested: list[str] = []
    for column in segment_columns:
        day = send_strata(read, column, segment_columns, score_bands)
        values = read[column].astype("string").fillna("unknown").to_numpy()
        for segment in sorted(set(values)):
            member = values == segment
            n_recent, n_base = int((member & is_recent).sum()), int((member & is_baseline).sum())
            rest_recent, rest_base = int((~member & is_recent).sum()), int((~member & is_baseline).sum())
            if min(n_recent, rest_recent) < SEGMENT_MIN_RECENT_SENDS or min(n_base, rest_base) < SEGMENT_MIN_BASELINE_SENDS:
                untested.append(f"{column}={segment} ({n_recent} recent, {n_base} baseline sends)")
                continue
            recent_lor, recent_se = _pooled_log_odds(_day_tables(member[is_recent], opened[is_recent], day[is_recent]))
            base_lor, base_se = _pooled_log_odds(_day_tables(member[is_baseline], opened[is_baseline], day[is_baseline]))
            z = (recent_lor - base_lor) / math.hypot(recent_se, base_se)
            tested.append(SegmentShift(
                column=column, segment=segment,
                recent_sends=n_recent, recent_open_rate=float(opened[member & is_recent].mean()),
                recent_rest_open_rate=float(opened[~member & is_recent].mean()),
                baseline_sends=n_base, baseline_open_rate=float(opened[member & is_baseline].mean()),
                baseline_rest_open_rate=float(opened[~member & is_baseline].mean()),
                odds_change=math.exp(recent_lor - base_lor), z=z, p_value=float(2 * norm.sf(abs(z))),
            ))
    if tested:
        holm = multipletests([s.p_value for s in tested], method="holm")[1]
        tested = [replace(s, p_holm=float(p)) for s, p in zip(tested, holm)]
    return SegmentOutcomeCheck(
        as_of, recent_days, baseline_days, tuple(tested), tuple(untested),
        reason="" if tested else "no segment has enough sends in both windows",
    )
