"""Scoring a targeting policy against the simulator's truth (tests, benchmarks, the demo).

The expected incremental purchases of emailing a set of people is the sum of their true
uplifts. Random targeting of the same volume from the same population expects the mean
uplift times that volume, so the ratio says how much better than random the policy chose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TargetingValue:
    emailed: int
    population: int
    policy_incremental_purchases: float
    random_incremental_purchases: float
    oracle_incremental_purchases: float  # the same volume, chosen by true uplift

    @property
    def ratio_to_random(self) -> float:
        return self.policy_incremental_purchases / self.random_incremental_purchases if self.random_incremental_purchases else float("nan")

    @property
    def ratio_to_oracle(self) -> float:
        return self.policy_incremental_purchases / self.oracle_incremental_purchases if self.oracle_incremental_purchases else float("nan")


def targeting_value(true_uplift: np.ndarray, emailed: np.ndarray) -> TargetingValue:
    """`true_uplift` per person of a population, `emailed` the policy's choice among them."""
    uplift = np.asarray(true_uplift, dtype=float)
    chosen = np.asarray(emailed, dtype=bool)
    if uplift.shape != chosen.shape:
        raise ValueError("true_uplift and emailed must have one value per person")
    volume = int(chosen.sum())
    best = np.sort(uplift)[::-1][:volume]
    return TargetingValue(
        emailed=volume,
        population=len(uplift),
        policy_incremental_purchases=float(uplift[chosen].sum()),
        random_incremental_purchases=float(uplift.mean() * volume) if len(uplift) else 0.0,
        oracle_incremental_purchases=float(best.sum()),
    )
