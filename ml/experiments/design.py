"""Experiment design and deterministic arm assignment.

Arms are assigned by hashing `experiment_id:subscriber_key` into a uniform bucket, so the
same subscriber lands in the same arm on every run and on every machine, and a new
experiment id re-randomises independently. The holdout receives nothing; control gets the
generic approved subject line and treatment the personalised one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from ml.experiments.decision import DecisionRule

HOLDOUT_ARM = "holdout"
CONTROL_ARM = "control"
TREATMENT_ARM = "treatment"
DEFAULT_ARMS = {HOLDOUT_ARM: 0.10, CONTROL_ARM: 0.45, TREATMENT_ARM: 0.45}

ASSIGNMENT_COLUMNS = ("subscriber_key", "experiment_id", "arm", "bucket")


@dataclass(frozen=True)
class ExperimentDesign:
    """An experiment's id and arms (name -> share of members, in assignment order).

    `salt` re-randomises an experiment without renaming it; empty by default, in which case
    the hashed string is exactly ``f"{experiment_id}:{subscriber_key}"``.
    """

    experiment_id: str
    arms: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ARMS))
    salt: str = ""
    holdout_arm: str = HOLDOUT_ARM
    control_arm: str = CONTROL_ARM
    treatment_arm: str = TREATMENT_ARM
    # Members of two compared arms together at which the always-valid intervals are tightest
    # (ml.experiments.sequential); declared up front, any value keeps them valid.
    planned_members: int = 5_000
    # Declared before launch: the primary metric and the guardrails the daily verdict reads
    # (ship, stop, keep running; ml.experiments.decision), and the smallest relative lift of
    # the primary metric worth detecting, which the power analysis turns into days.
    decision_rule: DecisionRule = field(default_factory=lambda: DecisionRule("conversion_rate"))
    relative_mde: float = 0.10

    def __post_init__(self) -> None:
        if not isinstance(self.experiment_id, str) or not self.experiment_id.strip():
            raise ValueError("experiment_id must be a non-empty string")
        if not self.arms:
            raise ValueError("an experiment needs arms")
        for arm, share in self.arms.items():
            if not isinstance(arm, str) or not arm:
                raise ValueError(f"arm names must be non-empty strings, got {arm!r}")
            if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share < 1):
                raise ValueError(f"arm {arm!r} share must be in (0, 1), got {share!r}")
        total = sum(self.arms.values())
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"arm shares must sum to 1, got {total}")
        if not (isinstance(self.planned_members, int) and self.planned_members >= 1):
            raise ValueError(f"planned_members must be a positive integer, got {self.planned_members!r}")
        if not (isinstance(self.relative_mde, (int, float)) and math.isfinite(self.relative_mde) and self.relative_mde > 0):
            raise ValueError(f"relative_mde must be a positive number, got {self.relative_mde!r}")
        if self.holdout_arm not in self.arms:
            raise ValueError(f"the design must have a holdout arm named {self.holdout_arm!r}")
        # A private copy, so changing the caller's dict cannot change a validated design.
        object.__setattr__(self, "arms", dict(self.arms))

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(self.arms)

    def comparisons(self) -> tuple[tuple[str, str], ...]:
        """(arm, baseline) pairs: every arm vs the holdout, and treatment vs control."""
        pairs = [(arm, self.holdout_arm) for arm in self.arms if arm != self.holdout_arm]
        if self.treatment_arm in self.arms and self.control_arm in self.arms:
            pairs.append((self.treatment_arm, self.control_arm))
        return tuple(pairs)


def assign_arms(subscriber_keys: pd.Series, design: ExperimentDesign) -> pd.DataFrame:
    """Assign each subscriber to an arm by a deterministic hash bucket in [0, 1).

    The bucket is the first 53 bits of sha256(``experiment_id:subscriber_key``) scaled to
    [0, 1); arms take consecutive ranges of the bucket by cumulative share in design order.
    Returns `ASSIGNMENT_COLUMNS` in the input order. Keys must be unique and non-null.
    """
    keys = pd.Series(subscriber_keys, copy=False)
    if keys.isna().any():
        raise ValueError("subscriber keys must not be missing")
    if keys.duplicated().any():
        raise ValueError("subscriber keys must be unique")
    buckets = hash_buckets(keys.astype(str).tolist(), _hash_prefix(design))
    cumulative = np.cumsum(np.fromiter(design.arms.values(), dtype=float))
    cumulative[-1] = 1.0  # guard against the shares summing to 0.9999999999
    arm_index = np.minimum(np.searchsorted(cumulative, buckets, side="right"), len(cumulative) - 1)
    arm_names = np.array(design.arm_names, dtype=object)
    return pd.DataFrame(
        {
            "subscriber_key": keys.to_numpy(dtype=object),
            "experiment_id": design.experiment_id,
            "arm": arm_names[arm_index],
            "bucket": buckets,
        }
    )


def hash_buckets(keys: list[str], prefix: str) -> np.ndarray:
    """Uniform floats in [0, 1) from sha256(prefix + key), using the digest's first 53 bits."""
    digests = b"".join(hashlib.sha256(f"{prefix}{key}".encode("utf-8")).digest()[:8] for key in keys)
    as_int = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    return (as_int >> np.uint64(11)).astype(np.float64) / float(2**53)


def _hash_prefix(design: ExperimentDesign) -> str:
    if design.salt:
        return f"{design.experiment_id}:{design.salt}:"
    return f"{design.experiment_id}:"
