"""Whom to email among the eligible: a volume budget ranked by propensity or by uplift, plus a
random control.

- a random share of members (the *random control*, a stable hash of the key) is emailed
  whatever their score, so the policy itself can be evaluated against random targeting, and
  the uplift model has treated people whose email was not chosen by a score;
- of the others, at most `top_share` are emailed:
  - ranked by propensity (`rank_by="propensity"`): the highest scores;
  - ranked by uplift (`rank_by="uplift"`): those whose expected incremental value (uplift
    estimate x value per conversion) exceeds the cost of a send, highest net value first
    (ml/decisioning/uplift/decision.py). Only when the day's uplift model has shown on
    held-out randomised rows that it ranks better than the propensity score
    (ml/decisioning/uplift/daily.py).

Both groups are drawn from every experiment arm alike (the hash is independent of the arm
hash), so the subject-line experiment stays an honest intent-to-treat comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.decisioning.uplift.decision import BEYOND_BUDGET, NOT_WORTH_THE_COST, SELECTED as SELECTED_BY_UPLIFT
from ml.decisioning.uplift.decision import choose_recipients
from ml.experiments.design import hash_buckets

POLICY_NAME = "propensity-top-share-v1"
UPLIFT_POLICY_NAME = "uplift-net-value-v1"
BY_PROPENSITY = "propensity"
BY_UPLIFT = "uplift"
RANDOM_CONTROL = "random_control"
SCORED = "scored"
# Why a member is or is not emailed under the policy.
SELECTED_AS_RANDOM_CONTROL = "random_control"
SELECTED_BY_SCORE = "top_propensity_share"
NOT_SELECTED = "below_propensity_cut"
# Every reason a scored member is not emailed, whichever ranking decided.
NOT_SELECTED_REASONS = (NOT_SELECTED, NOT_WORTH_THE_COST, BEYOND_BUDGET)


@dataclass(frozen=True)
class TargetingPolicy:
    """top_share: at most this share of scored members is emailed (the volume budget).
    random_control_share: share of members emailed regardless of score.
    salt: names the random-control hash, independent of the experiment's arm hash.
    rank_by: "propensity" (the top share by score) or "uplift" (net value above cost,
        within the budget; members need an `uplift_estimate`).
    value_per_conversion, cost_per_send: what an incremental purchase is worth and what a
        send itself costs, in one currency; used when ranking by uplift.
    subscriber_value: what losing a subscriber (an unsubscribe or complaint) costs; priced
        into each person's `send_cost` by their measured opt-out risk
        (ml/decisioning/uplift/send_cost.py). Members without a `send_cost` cost
        `cost_per_send`."""

    top_share: float = 0.5
    random_control_share: float = 0.1
    salt: str = "targeting-random-control"
    rank_by: str = BY_PROPENSITY
    value_per_conversion: float = 40.0
    cost_per_send: float = 0.05
    subscriber_value: float = 20.0

    def __post_init__(self) -> None:
        for name in ("top_share", "random_control_share"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.rank_by not in (BY_PROPENSITY, BY_UPLIFT):
            raise ValueError(f"rank_by must be {BY_PROPENSITY!r} or {BY_UPLIFT!r}, got {self.rank_by!r}")
        for name in ("value_per_conversion", "cost_per_send", "subscriber_value"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and non-negative, got {value!r}")

    def describe(self) -> str:
        """The policy and its parameters, as recorded on every decision."""
        if self.rank_by == BY_UPLIFT:
            return (f"{UPLIFT_POLICY_NAME}(top_share={self.top_share:g}, random_control_share={self.random_control_share:g}, "
                    f"value_per_conversion={self.value_per_conversion:g}, cost_per_send={self.cost_per_send:g}, "
                    f"subscriber_value={self.subscriber_value:g})")
        return f"{POLICY_NAME}(top_share={self.top_share:g}, random_control_share={self.random_control_share:g})"


def target(members: pd.DataFrame, policy: TargetingPolicy) -> pd.DataFrame:
    """`members` (subscriber_key, propensity_score; and uplift_estimate when ranking by
    uplift) with `targeting_group` and `selected_by`: why the member is emailed, or one of
    NOT_SELECTED_REASONS. Ties are broken by key, so the cut is reproducible.
    """
    missing = [c for c in ("subscriber_key", "propensity_score") if c not in members.columns]
    if missing:
        raise ValueError(f"members lack columns {missing}")
    if members["propensity_score"].isna().any():
        raise ValueError("every member needs a propensity score")
    out = members.copy()
    buckets = hash_buckets(out["subscriber_key"].astype(str).tolist(), f"{policy.salt}:")
    in_control = buckets < policy.random_control_share
    out["targeting_group"] = np.where(in_control, RANDOM_CONTROL, SCORED)
    scored = out.loc[~in_control].sort_values(["propensity_score", "subscriber_key"], ascending=[False, True])
    n_selected = int(math.floor(policy.top_share * len(scored) + 1e-9))
    if policy.rank_by == BY_UPLIFT:
        if "uplift_estimate" not in out.columns or out.loc[~in_control, "uplift_estimate"].isna().any():
            raise ValueError("ranking by uplift needs an uplift_estimate for every scored member")
        by_key = scored.sort_values("subscriber_key").set_index("subscriber_key")
        cost = (by_key["send_cost"].fillna(policy.cost_per_send) if "send_cost" in by_key.columns
                else policy.cost_per_send)
        chosen = choose_recipients(by_key["uplift_estimate"], value_per_conversion=policy.value_per_conversion,
                                   cost_per_send=cost, budget=n_selected)["decision_reason"]
        out["selected_by"] = np.where(in_control, SELECTED_AS_RANDOM_CONTROL, out["subscriber_key"].map(chosen))
        return out
    selected_keys = set(scored["subscriber_key"].iloc[:n_selected])
    out["selected_by"] = np.where(
        in_control,
        SELECTED_AS_RANDOM_CONTROL,
        np.where(out["subscriber_key"].isin(selected_keys), SELECTED_BY_SCORE, NOT_SELECTED),
    )
    return out
