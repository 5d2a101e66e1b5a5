"""Experiment design and deterministic arm assignment.

Arms are assigned by hashing `experiment_id:subscriber_key` into a uniform bucket, so the
same subscriber lands in the same arm on every run and on every machine, and a new
experiment id re-randomises independently. The holdout receives nothing; control gets the
generic approved subject line and each personalised arm its segment's personalised copy:
`treatment` spread over the segment's variants by a hash, a variant arm of a multi-arm
design (`MULTI_ARM_DESIGN`) the one variant at its copy slot.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from ml.experiments.bandit_readout import REWARD_METRICS
from ml.experiments.bayesian import UNIFORM_PRIOR, BetaPrior
from ml.experiments.decision import DecisionRule

HOLDOUT_ARM = "holdout"
CONTROL_ARM = "control"
TREATMENT_ARM = "treatment"
DEFAULT_ARMS = {HOLDOUT_ARM: 0.10, CONTROL_ARM: 0.45, TREATMENT_ARM: 0.45}
# Personalised arm -> copy slot: None spreads the arm over its segment's variants by a hash;
# a slot gives everyone of a segment the variant at that position (ml.copy.variants).
DEFAULT_PERSONALISED_ARMS: dict[str, int | None] = {TREATMENT_ARM: None}

# The declared multi-arm experiment (the demo's): the persistent holdout, control (the generic
# approved subject line) and three subject-line variants, each a fixed slot of the segment's
# approved personalised copy, sharing the sent traffic equally.
VARIANT_ARMS = ("variant_a", "variant_b", "variant_c")
MULTI_ARM_DESIGN = {
    "arms": {HOLDOUT_ARM: 0.10, CONTROL_ARM: 0.225, **{arm: 0.225 for arm in VARIANT_ARMS}},
    "personalised_arms": {arm: slot for slot, arm in enumerate(VARIANT_ARMS)},
}

ASSIGNMENT_COLUMNS = ("subscriber_key", "experiment_id", "arm", "bucket")


@dataclass(frozen=True)
class BanditAllocation:
    """Declares an experiment a Thompson-sampling bandit (ml.experiments.bandit) rather than a
    fixed split: its arms but the holdout share the holdout's complement by weights that the
    posterior of each arm's reward rate sets every day. The design's shares of those arms
    are then only the first day's prior belief, not a split anything tests against.

    `reward_metric` and `reward_days`: what the bandit learns from (one of
    ml.experiments.bandit_readout.REWARD_METRICS): a purchase by the recipient, or a click or
    open of the e-mail, within `reward_days` of the send; a send counts once that window has
    closed (a matured outcome), so every counted send had the same time to earn it. A reward
    other than the primary metric is a proxy and is declared with `reward_justification`.
    `primary_days`: the readout's primary metric on the same sends, a purchase within this
    many days of the send, whatever the bandit learns from.
    """

    seed: int = 0
    exploration_floor: float = 0.05
    prior: BetaPrior = UNIFORM_PRIOR
    reward_days: int = 1
    reward_metric: str = "purchase"
    reward_justification: str = ""
    primary_days: int = 2

    def __post_init__(self) -> None:
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"the bandit's seed must be a non-negative whole number, got {self.seed!r}")
        if not (isinstance(self.reward_days, int) and self.reward_days >= 1):
            raise ValueError(f"reward_days must be a whole number of at least 1, got {self.reward_days!r}")
        if not (isinstance(self.exploration_floor, (int, float)) and 0 <= self.exploration_floor < 1):
            raise ValueError(f"exploration_floor must be in [0, 1), got {self.exploration_floor!r}")
        if self.reward_metric not in REWARD_METRICS:
            raise ValueError(f"reward_metric must be one of {REWARD_METRICS}, got {self.reward_metric!r}")
        if self.reward_metric != "purchase" and not self.reward_justification.strip():
            raise ValueError(f"a {self.reward_metric} reward is a proxy of the primary metric: declare its "
                             "reward_justification")
        if not (isinstance(self.primary_days, int) and self.primary_days >= 1):
            raise ValueError(f"primary_days must be a whole number of at least 1, got {self.primary_days!r}")


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
    # Members of two compared arms together at which the always-valid intervals are tightest
    # (ml.experiments.sequential); declared up front, any value keeps them valid.
    planned_members: int = 5_000
    # Declared before launch: the primary metric and the guardrails the daily verdict reads
    # (ship, stop, keep running; ml.experiments.decision), and the smallest relative lift of
    # the primary metric worth detecting, which the power analysis turns into days.
    decision_rule: DecisionRule = field(default_factory=lambda: DecisionRule("conversion_rate"))
    relative_mde: float = 0.10
    # The arms sent personalised copy, each with its copy slot (see DEFAULT_PERSONALISED_ARMS);
    # the other sent arms get the generic line. Each is compared with control.
    personalised_arms: Mapping[str, int | None] = field(default_factory=lambda: dict(DEFAULT_PERSONALISED_ARMS))
    # None: a fixed split (an A/B/n test, read with the fixed readout). A BanditAllocation:
    # a Thompson-sampling bandit over the arms but the holdout, read per day (docs/experiments.md).
    bandit: BanditAllocation | None = None

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
        if self.bandit is not None and (next(iter(self.arms)) != self.holdout_arm or len(self.arms) < 3):
            raise ValueError("a bandit's design lists its holdout first (its bucket range never moves) "
                             "and has at least two arms besides it")
        personalised = {arm: slot for arm, slot in self.personalised_arms.items() if arm in self.arms}
        for arm, slot in self.personalised_arms.items():
            if arm in (self.holdout_arm, self.control_arm):
                raise ValueError(f"the {arm!r} arm cannot be sent personalised copy")
            if slot is not None and not (isinstance(slot, int) and slot >= 0):
                raise ValueError(f"arm {arm!r} copy slot must be None or a non-negative whole number, got {slot!r}")
        # Private copies, so changing the caller's dicts cannot change a validated design. A
        # personalised arm the design does not have is dropped (a design without treatment).
        object.__setattr__(self, "arms", dict(self.arms))
        object.__setattr__(self, "personalised_arms", personalised)

    @property
    def is_bandit(self) -> bool:
        return self.bandit is not None

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(self.arms)

    @property
    def variant_arms(self) -> tuple[str, ...]:
        """The personalised arms, in design order: those compared with control."""
        return tuple(arm for arm in self.arms if arm in self.personalised_arms)

    def comparisons(self) -> tuple[tuple[str, str], ...]:
        """(arm, baseline) pairs: every arm vs the holdout, and every personalised arm vs control."""
        pairs = [(arm, self.holdout_arm) for arm in self.arms if arm != self.holdout_arm]
        if self.control_arm in self.arms:
            pairs.extend((arm, self.control_arm) for arm in self.variant_arms)
        return tuple(pairs)


def multi_arm_design(experiment_id: str, **overrides) -> ExperimentDesign:
    """The declared multi-arm experiment (`MULTI_ARM_DESIGN`) under `experiment_id`."""
    return ExperimentDesign(experiment_id=experiment_id, **{**MULTI_ARM_DESIGN, **overrides})


# The declared experiments, by id: the one place that says whether an experiment is a fixed
# split or a bandit; assignment, plan, readout, report and the demo summary all read it
# through `declared_design`. The demo's (PipelineSettings.experiment_id) is the fixed test.
FIXED_EXPERIMENT_ID = "subject-personalisation-v1"
BANDIT_EXPERIMENT_ID = "subject-bandit-v1"
DECLARED_EXPERIMENTS: dict[str, dict] = {
    FIXED_EXPERIMENT_ID: MULTI_ARM_DESIGN,
    # The same arms as a Thompson-sampling bandit over control and the three variants; the
    # holdout keeps its 10% and its people. It learns from clicks by the next day, a proxy
    # (docs/experiments.md, "What the bandit learns from"), and is read and judged on purchases.
    BANDIT_EXPERIMENT_ID: {**MULTI_ARM_DESIGN, "bandit": BanditAllocation(
        seed=11, reward_metric="click", reward_days=1, reward_justification=(
            "A subject line acts on purchases only through opens and clicks: in the simulator its hidden appeal "
            "multiplies the open probability, and the purchase boost follows the open and the click, so per segment "
            "the arms rank the same on clicks as on purchases (docs/experiments.md). Clicks land within a day of "
            "the send at about 10% against 0.7% for a purchase within a day, so the bandit can act on them within "
            "days; opens would be denser still but are inflated by mail privacy proxies in real inboxes."))},
}


def declared_design(experiment_id: str) -> ExperimentDesign:
    """The design declared for `experiment_id` in DECLARED_EXPERIMENTS; an id declared nowhere
    runs the fixed multi-arm test (`MULTI_ARM_DESIGN`) under that id."""
    return ExperimentDesign(experiment_id=experiment_id, **DECLARED_EXPERIMENTS.get(experiment_id, MULTI_ARM_DESIGN))


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
