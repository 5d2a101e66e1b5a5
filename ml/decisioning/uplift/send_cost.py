"""What one more email costs a person: the send itself, plus the subscriber it may lose.

An email can make a person unsubscribe or complain (and a complaint ends their mail too). That
risk grows with how much mail they had lately: the loss is the chance of an opt-out times
what a subscriber is worth. The chance is measured, not assumed: per band of sends in the 7
days before a send (0, 1, 2, 3 or more), the share of delivered sends that ended in an
unsubscribe or a complaint, shrunk toward the overall share (a Beta prior worth
`PRIOR_SENDS` sends), so a thin band does not price a person on a handful of sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Sends in the 7 days before; the last band holds this many or more.
TOP_BAND = 3
PRIOR_SENDS = 200
SEND_INPUT = ("subscriber_key", "sent_at", "delivered", "unsubscribed", "complained")


@dataclass(frozen=True)
class OptOutRates:
    """The chance a delivered send ends in an unsubscribe or complaint, per recent-sends band."""

    by_band: dict[int, float]
    delivered_by_band: dict[int, int]
    overall: float

    def rate(self, recent_sends: pd.Series) -> pd.Series:
        bands = recent_sends.fillna(0).astype(int).clip(lower=0, upper=TOP_BAND)
        return bands.map(self.by_band).astype(float)


def opt_out_rates(sends: pd.DataFrame) -> OptOutRates:
    """Measured from `sends` (SEND_INPUT, one row per send, e.g. marts.fct_send_outcomes of
    the last months): each send's band is the person's sends in the 7 days before it."""
    missing = [column for column in SEND_INPUT if column not in sends.columns]
    if missing:
        raise ValueError(f"sends lack columns {missing}")
    frame = sends.sort_values(["subscriber_key", "sent_at"]).reset_index(drop=True)
    times = pd.to_datetime(frame["sent_at"]).to_numpy(dtype="datetime64[ns]")
    keys = frame["subscriber_key"].to_numpy()
    # Sends of the same person in [sent_at - 7 days, sent_at): a search within each person's run.
    before = np.empty(len(frame), dtype=np.int64)
    for start, end in _runs(keys):
        person = times[start:end]
        before[start:end] = np.arange(end - start) - np.searchsorted(person, person - np.timedelta64(7, "D"), side="left")
    delivered = frame["delivered"].astype(bool).to_numpy()
    opted_out = (frame["unsubscribed"].astype(bool) | frame["complained"].astype(bool)).to_numpy() & delivered
    bands = np.minimum(before, TOP_BAND)
    overall = float(opted_out.sum() / delivered.sum()) if delivered.any() else 0.0
    by_band, counts = {}, {}
    for band in range(TOP_BAND + 1):
        in_band = bands == band
        n, k = int(delivered[in_band].sum()), int(opted_out[in_band].sum())
        by_band[band] = (k + PRIOR_SENDS * overall) / (n + PRIOR_SENDS)
        counts[band] = n
    return OptOutRates(by_band=by_band, delivered_by_band=counts, overall=overall)


def send_costs(recent_sends: pd.Series, rates: OptOutRates, *, cost_per_send: float,
               subscriber_value: float) -> pd.Series:
    """Per person (the index of `recent_sends`, their sends in the last 7 days): the send's
    own cost plus their opt-out chance times a subscriber's value."""
    for name, value in (("cost_per_send", cost_per_send), ("subscriber_value", subscriber_value)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return cost_per_send + rates.rate(recent_sends) * subscriber_value


def _runs(keys: np.ndarray):
    """(start, end) of each run of equal keys in a sorted array."""
    if len(keys) == 0:
        return
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    bounds = np.concatenate([[0], change, [len(keys)]])
    yield from zip(bounds[:-1], bounds[1:])
