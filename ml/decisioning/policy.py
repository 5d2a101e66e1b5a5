"""Whom to email among the eligible: the top share by propensity, plus a random control.

A simple, documented targeting policy until uplift-based decisioning exists:
- a random share of members (the *random control*, a stable hash of the key) is emailed
  whatever their score, so the policy itself can be evaluated against random targeting;
- of the others, the `top_share` with the highest propensity is emailed; the rest are not.

Both groups are drawn from every experiment arm alike (the hash is independent of the arm
hash), so the subject-line experiment stays an honest intent-to-treat comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.experiments.design import hash_buckets

POLICY_NAME = "propensity-top-share-v1"
RANDOM_CONTROL = "random_control"
SCORED = "scored"
# Why a member is or is not emailed under the policy.
SELECTED_AS_RANDOM_CONTROL = "random_control"
SELECTED_BY_SCORE = "top_propensity_share"
NOT_SELECTED = "below_propensity_cut"


@dataclass(frozen=True)
class TargetingPolicy:
    """top_share: share of scored members emailed, highest propensity first.
    random_control_share: share of members emailed regardless of score.
    salt: names the random-control hash, independent of the experiment's arm hash."""

    top_share: float = 0.5
    random_control_share: float = 0.1
    salt: str = "targeting-random-control"

    def __post_init__(self) -> None:
        for name in ("top_share", "random_control_share"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")

    def describe(self) -> str:
        """The policy and its parameters, as recorded on every decision."""
        return f"{POLICY_NAME}(top_share={self.top_share:g}, random_control_share={self.random_control_share:g})"


def target(members: pd.DataFrame, policy: TargetingPolicy) -> pd.DataFrame:
    """`members` (subscriber_key, propensity_score) with `targeting_group` and `selected_by`.

    `selected_by` is null for members the policy does not email. Ties in score are broken
    by key, so the cut is reproducible.
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
    selected_keys = set(scored["subscriber_key"].iloc[:n_selected])
    out["selected_by"] = np.where(
        in_control,
        SELECTED_AS_RANDOM_CONTROL,
        np.where(out["subscriber_key"].isin(selected_keys), SELECTED_BY_SCORE, NOT_SELECTED),
    )
    return out
