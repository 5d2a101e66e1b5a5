"""Whom to email by uplift: those whose expected incremental value exceeds the cost of the send.

A send is worth it when the conversions it causes, not the conversions it happens to be
near, pay for it: incremental probability x value per conversion > cost per send. The cost
is the caller's: the send itself plus the expected unsubscribe and fatigue cost of that
person, so it may differ per person. Of the people worth it, a volume budget keeps those
with the highest net value (expected incremental value minus cost).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Why a person is or is not emailed.
SELECTED = "incremental_value_above_cost"
NOT_WORTH_THE_COST = "incremental_value_not_above_cost"
BEYOND_BUDGET = "beyond_volume_budget"
DECISION_COLUMNS = (
    "incremental_probability",
    "expected_incremental_value",
    "send_cost",
    "net_value",
    "selected",
    "decision_reason",
)


def choose_recipients(
    incremental_probability: pd.Series,
    *,
    value_per_conversion: float,
    cost_per_send: float | pd.Series,
    budget: int | None = None,
) -> pd.DataFrame:
    """One row per person (the input's index), with DECISION_COLUMNS.

    incremental_probability: the predicted uplift in conversion probability if emailed,
        indexed by person key; may be negative (the email puts them off).
    value_per_conversion: what one conversion is worth, the same unit as the cost.
    cost_per_send: one number for everyone, or a Series on the same index (per-person
        unsubscribe and fatigue risk priced in).
    budget: at most this many sends; None for no limit, 0 for none.

    A person is selected when the expected incremental value is strictly above the cost
    (an even bet is not worth a send), and within the budget by net value, highest first;
    equal net values keep the input's order.
    """
    if not incremental_probability.index.is_unique:
        raise ValueError("incremental_probability must have one row per person (a unique index)")
    uplift = incremental_probability.astype(float)
    if not np.isfinite(uplift.to_numpy()).all() or ((uplift < -1) | (uplift > 1)).any():
        raise ValueError("incremental probabilities must be finite and within [-1, 1]")
    if not (math.isfinite(value_per_conversion) and value_per_conversion >= 0):
        raise ValueError(f"value_per_conversion must be finite and non-negative, got {value_per_conversion!r}")
    if isinstance(cost_per_send, pd.Series):
        if not cost_per_send.index.equals(uplift.index):
            raise ValueError("cost_per_send must be indexed like incremental_probability")
        cost = cost_per_send.astype(float)
    else:
        cost = pd.Series(float(cost_per_send), index=uplift.index)
    if not np.isfinite(cost.to_numpy()).all() or (cost < 0).any():
        raise ValueError("costs per send must be finite and non-negative")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0):
        raise ValueError(f"budget must be a non-negative whole number or None, got {budget!r}")

    value = uplift * value_per_conversion
    decisions = pd.DataFrame(
        {
            "incremental_probability": uplift,
            "expected_incremental_value": value,
            "send_cost": cost,
            "net_value": value - cost,
        },
        index=uplift.index,
    )
    worth_it = decisions["net_value"] > 0
    # A stable sort keeps the input's order among equal net values, so the cut is repeatable.
    ranked = decisions.loc[worth_it, "net_value"].sort_values(ascending=False, kind="stable")
    chosen = ranked.index if budget is None else ranked.index[:budget]
    decisions["selected"] = decisions.index.isin(chosen)
    decisions["decision_reason"] = np.where(
        decisions["selected"], SELECTED, np.where(worth_it, BEYOND_BUDGET, NOT_WORTH_THE_COST)
    )
    return decisions[list(DECISION_COLUMNS)]
