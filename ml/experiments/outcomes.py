"""What each experiment member did, read from landed data (the warehouse's facts).

Outcomes come back through landing like any other export: the ESP's sends and e-mail
events keyed by the planned send id, and the shop's orders. This works the same for the
simulated world and for your own exports; nothing here knows which it is.

The readout is intention-to-treat: every member of an arm counts, emailed or not, and each
member's outcome covers the same period (the experiment's first send day up to the
readout's day) whatever their arm, so arms compare like with like.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

MEMBER_INPUT = ("subscriber_key", "arm")
SEND_INPUT = ("send_id", "subscriber_key", "sent_at")
EVENT_INPUT = ("send_id", "event_type")
ORDER_INPUT = ("subscriber_key", "ordered_at", "amount_usd")

# The pre-period, before the first send day, whose purchases CUPED adjusts by (and the power
# analysis plans from): outside the experiment, so the assignment cannot have changed it.
PRE_PERIOD_DAYS = 28

# One row per member.
OUTCOME_COLUMNS = (
    "subscriber_key", "arm", "is_sent", "sends", "opened", "clicked", "converted", "unsubscribed", "complained",
    "revenue", "pre_period_converted", "pre_period_revenue",
)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lack columns {missing}")


def member_outcomes(
    members: pd.DataFrame,
    sends: pd.DataFrame,
    events: pd.DataFrame,
    orders: pd.DataFrame,
    *,
    since: datetime,
    until: datetime,
) -> pd.DataFrame:
    """Each member's outcome from ``since`` to ``until`` (inclusive), and their purchases in the
    PRE_PERIOD_DAYS before ``since`` (the CUPED covariate).

    ``sends`` are the experiment's landed sends, ``events`` their e-mail events (attributed
    by send id only), ``orders`` the orders of anyone (a purchase counts whether or not it
    followed an e-mail, so the holdout's purchases count like everyone's).
    """
    for frame, columns, name in (
        (members, MEMBER_INPUT, "members"), (sends, SEND_INPUT, "sends"),
        (events, EVENT_INPUT, "events"), (orders, ORDER_INPUT, "orders"),
    ):
        _require(frame, columns, name)
    if members["subscriber_key"].duplicated().any():
        raise ValueError("members contain a subscriber_key more than once")
    if since > until:
        raise ValueError(f"the outcome period is empty: since {since} is after until {until}")

    in_period = sends[(sends["sent_at"] >= since) & (sends["sent_at"] <= until)]
    per_send = in_period[["send_id", "subscriber_key"]].merge(
        events[list(EVENT_INPUT)].drop_duplicates(), on="send_id", how="left"
    )
    # Whether any of the member's sends had each event; unsubscribe and complaint are the
    # guardrails (the experiment's email made the member leave or complain).
    flags = {"opened": "open", "clicked": "click", "unsubscribed": "unsubscribe", "complained": "complaint"}
    per_send = per_send.assign(**{flag: per_send["event_type"].eq(event) for flag, event in flags.items()})
    engagement = per_send.groupby("subscriber_key").agg(
        sends=("send_id", "nunique"), **{flag: (flag, "any") for flag in flags}
    )
    bought = orders[(orders["ordered_at"] >= since) & (orders["ordered_at"] <= until)]
    purchases = bought.groupby("subscriber_key").agg(revenue=("amount_usd", "sum"))
    pre_start = pd.Timestamp(since) - pd.Timedelta(days=PRE_PERIOD_DAYS)
    before = orders[(orders["ordered_at"] >= pre_start) & (orders["ordered_at"] < since)]
    pre_period = before.groupby("subscriber_key").agg(pre_period_revenue=("amount_usd", "sum"))

    out = (
        members[list(MEMBER_INPUT)].merge(engagement, on="subscriber_key", how="left")
        .merge(purchases, on="subscriber_key", how="left")
        .merge(pre_period, on="subscriber_key", how="left")
    )
    out["sends"] = out["sends"].fillna(0).astype("int64")
    out["is_sent"] = out["sends"] > 0
    for flag in ("opened", "clicked", "unsubscribed", "complained"):
        out[flag] = out[flag].astype("boolean").fillna(False).astype(bool)
    out["converted"] = out["revenue"].notna()
    out["revenue"] = out["revenue"].fillna(0.0).astype(float)
    out["pre_period_converted"] = out["pre_period_revenue"].notna()
    out["pre_period_revenue"] = out["pre_period_revenue"].fillna(0.0).astype(float)
    return out[list(OUTCOME_COLUMNS)].reset_index(drop=True)
