"""Where campaign outcomes come from.

The pipeline plans sends; something in the world answers with what each experiment member
did. In the demo that is the simulator (`ml.simulator.responder.SimulatedOutcomeSource`);
in production it is ESP feedback and orders observed after the send. Both implement
`OutcomeSource`, so the experiment report does not care which one it got.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

# Columns of the frame passed to `OutcomeSource.observe`.
MEMBER_COLUMNS = (
    "subscriber_key",  # pseudonymous key
    "arm",  # experiment arm, e.g. holdout / control / treatment
    "is_sent",  # bool: False for the holdout
    "subject_line",  # str or None (None when not sent)
    "variant_category",  # product category the subject line promotes, or "general"
    "crm_id",  # source ids from the identity crosswalk, None when absent
    "esp_id",
)

# Columns of the frame `OutcomeSource.observe` returns: one row per member.
OUTCOME_COLUMNS = ("subscriber_key", "opened", "clicked", "converted", "revenue")


class OutcomeSource(Protocol):
    """Answers a planned campaign with each member's observed outcome."""

    def observe(self, members: pd.DataFrame) -> pd.DataFrame:
        """Return one row per member with OUTCOME_COLUMNS (bools and a float revenue)."""
        ...


def validate_outcomes(members: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Check an outcome frame covers every member exactly once; return it in member order."""
    missing_cols = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing_cols:
        raise ValueError(f"outcomes lack columns {missing_cols}")
    if outcomes["subscriber_key"].duplicated().any():
        raise ValueError("outcomes have more than one row for a subscriber")
    merged = members[["subscriber_key"]].merge(outcomes[list(OUTCOME_COLUMNS)], on="subscriber_key", how="left", indicator=True)
    if (merged["_merge"] != "both").any():
        raise ValueError(f"{int((merged['_merge'] != 'both').sum())} members have no outcome")
    if len(outcomes) != len(members):
        raise ValueError("outcomes contain subscribers that are not experiment members")
    return merged.drop(columns="_merge")


def with_source_ids(members: pd.DataFrame, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """`members` with their CRM and ESP source ids (None when absent) from the identity
    crosswalk (subscriber_key, source_system, source_id), as `MEMBER_COLUMNS`. When a system
    has several records for one person, the smallest id stands for them, so the choice is stable."""
    missing = [c for c in ("subscriber_key", "source_system", "source_id") if c not in crosswalk.columns]
    if missing:
        raise ValueError(f"the identity crosswalk lacks columns {missing}")
    ids = (
        crosswalk[crosswalk["source_system"].isin(["crm", "esp"])]
        .groupby(["subscriber_key", "source_system"])["source_id"]
        .min()
        .unstack("source_system")
        .reindex(columns=["crm", "esp"])
        .rename(columns={"crm": "crm_id", "esp": "esp_id"})
        .rename_axis(columns=None)
        .reset_index()
    )
    joined = members.drop(columns=["crm_id", "esp_id"], errors="ignore").merge(ids, on="subscriber_key", how="left")
    for column in ("crm_id", "esp_id"):
        joined[column] = joined[column].astype(object).where(joined[column].notna(), None)
    return joined[list(MEMBER_COLUMNS)]
