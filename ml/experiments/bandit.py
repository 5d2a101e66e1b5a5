"""Thompson-sampling bandit over an experiment's arms, for campaigns declared as a bandit.

Each arm's reward rate (the declared reward metric: the primary metric or a declared proxy)
has a Beta-Binomial posterior (`ml.experiments.bayesian`: the declared prior plus the arm's
successes and units so far: its matured rewards,
`ml.experiments.bandit_readout`). A day's allocation is Thompson sampling in its "probability matching" form: the
share of the day's traffic an arm gets is the posterior probability that it is the best
arm, estimated from `draws` joint posterior draws with a generator seeded by the bandit's
seed and the day, so the same counts on the same day give the same weights on every run
and machine. Every arm keeps at least `exploration_floor` of the bandit's traffic.

The holdout is never touched: it keeps the design's share and the bottom of the hash
bucket range (`assign_arms`), so the same people are held out on every day whatever the
weights. The bandit's arms share the rest of the bucket range by the day's cumulative
weights (`assign_arms_for_day`): deterministic per person and day, and a person moves arm
only when a boundary moves past their bucket.

A bandit's arms are not a fixed-horizon test: the allocation depends on earlier outcomes,
so pooled per-arm rates are weighted towards the days an arm was favoured. It is read as a
bandit: allocation over time, posteriors, probability best, lifts compared within each day
(`ml.experiments.bandit_readout.stratified_lift`) and, in the simulator, regret against the
true best arm; not with the fixed experiment's p-values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from ml.experiments.bayesian import UNIFORM_PRIOR, BetaPrior
from ml.experiments.design import ExperimentDesign, assign_arms

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ml.tracking import MlflowTarget

BANDIT_METHOD = (
    "Thompson sampling: each arm's share is its posterior probability of being best (Beta-Binomial on the "
    "declared reward metric, seeded Monte Carlo draws), with an exploration floor; an arm breaching a guardrail "
    "against control keeps only the floor; the holdout keeps its share"
)

# ml.bandit_allocations: one row per bandit arm and allocation day.
ALLOCATION_COLUMN_TYPES = {
    "allocated_on": "date",
    "experiment_id": "varchar",
    "arm": "varchar",
    "metric": "varchar",
    "successes": "bigint",
    "units": "bigint",
    "posterior_alpha": "double",
    "posterior_beta": "double",
    "posterior_mean": "double",
    "probability_best": "double",
    "weight": "double",  # share of the bandit's traffic (the arms' weights sum to 1)
    "traffic_share": "double",  # share of all members: weight times (1 - holdout share)
    "held_reason": "varchar",  # why a guardrail holds the arm at the exploration floor; empty when not held
    "seed": "bigint",
    "mlflow_run_id": "varchar",  # the day's MLflow run (record_allocation_run)
}
# The MLflow experiment of the bandits' daily allocations: one run per bandit and day.
ALLOCATION_MLFLOW_EXPERIMENT = "bandit_allocations"


@dataclass(frozen=True)
class ThompsonBandit:
    """The declared bandit: its arms, prior, exploration floor and seed."""

    arms: tuple[str, ...]
    prior: BetaPrior = UNIFORM_PRIOR
    exploration_floor: float = 0.05
    seed: int = 0
    draws: int = 20_000

    def __post_init__(self) -> None:
        arms = tuple(self.arms)
        if len(arms) < 2 or len(set(arms)) != len(arms) or not all(isinstance(a, str) and a for a in arms):
            raise ValueError(f"a bandit needs at least two distinct, named arms, got {arms!r}")
        if not (math.isfinite(self.exploration_floor) and 0 <= self.exploration_floor <= 1 / len(arms)):
            raise ValueError(
                f"exploration_floor must be in [0, 1/{len(arms)}] for {len(arms)} arms, got {self.exploration_floor!r}"
            )
        if not (isinstance(self.draws, int) and self.draws >= 100):
            raise ValueError(f"draws must be a whole number of at least 100, got {self.draws!r}")
        object.__setattr__(self, "arms", arms)

    @classmethod
    def over(cls, design: ExperimentDesign, **kwargs) -> "ThompsonBandit":
        """A bandit over every arm of `design` but its holdout."""
        return cls(arms=tuple(a for a in design.arm_names if a != design.holdout_arm), **kwargs)

    @classmethod
    def declared(cls, design: ExperimentDesign) -> "ThompsonBandit":
        """The bandit `design` declares (`ExperimentDesign.bandit`): its seed, floor and prior."""
        if design.bandit is None:
            raise ValueError(f"experiment {design.experiment_id!r} is declared a fixed split, not a bandit")
        declared = design.bandit
        return cls.over(design, seed=declared.seed, exploration_floor=declared.exploration_floor, prior=declared.prior)

    def allocate(self, counts: pd.DataFrame, day: date | int, held: Mapping[str, str] | None = None) -> pd.DataFrame:
        """The day's weights from per-arm counts (columns arm, successes, n; an arm without a
        row has no data yet). `held`: arm -> reason, the arms a guardrail stops, which keep
        only the exploration floor while the others share the rest by their posterior chance
        of being the best of them. One row per bandit arm: posterior, probability best,
        weight, held_reason."""
        for column in ("arm", "successes", "n"):
            if column not in counts.columns:
                raise ValueError(f"counts lack column {column!r}")
        unknown = set(counts["arm"]) - set(self.arms)
        if unknown:
            raise ValueError(f"counts have arms the bandit does not allocate: {sorted(map(str, unknown))}")
        if counts["arm"].duplicated().any():
            raise ValueError("counts have more than one row for an arm")
        held = dict(held or {})
        if set(held) - set(self.arms) or not all(isinstance(r, str) and r for r in held.values()):
            raise ValueError(f"held arms must be the bandit's, each with a reason, got {held!r}")
        if len(held) == len(self.arms):
            raise ValueError("a guardrail cannot hold every arm: stop the bandit instead")
        by_arm = counts.set_index("arm")
        successes = np.array([int(by_arm["successes"].get(a, 0)) for a in self.arms], dtype=np.int64)
        units = np.array([int(by_arm["n"].get(a, 0)) for a in self.arms], dtype=np.int64)
        if (units < 0).any() or (successes < 0).any() or (successes > units).any():
            raise ValueError("each arm needs 0 <= successes <= n")
        alpha = self.prior.alpha + successes
        beta = self.prior.beta + units - successes
        rng = np.random.default_rng([self.seed, _day_number(day)])
        samples = rng.beta(alpha, beta, size=(self.draws, len(self.arms)))
        is_held = np.array([a in held for a in self.arms])
        best = np.bincount(np.where(is_held, -np.inf, samples).argmax(axis=1), minlength=len(self.arms)) / self.draws
        weight = self.exploration_floor + (1 - len(self.arms) * self.exploration_floor) * best
        return pd.DataFrame({
            "arm": list(self.arms), "successes": successes, "units": units,
            "posterior_alpha": alpha.astype(float), "posterior_beta": beta.astype(float),
            "posterior_mean": alpha / (alpha + beta), "probability_best": best, "weight": weight / weight.sum(),
            "held_reason": [held.get(a, "") for a in self.arms],
        })


def day_shares(design: ExperimentDesign, weights: Mapping[str, float]) -> dict[str, float]:
    """Every arm's share of all members on a day: the holdout's as designed, the bandit's arms
    `weights` (summing to 1) of the rest. Arms without a weight get none that day."""
    unknown = set(weights) - set(design.arm_names)
    if unknown or design.holdout_arm in weights:
        raise ValueError(f"weights must name the design's arms other than the holdout, got {sorted(weights)}")
    total = sum(weights.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9) or min(weights.values()) < 0:
        raise ValueError(f"weights must be non-negative and sum to 1, got {dict(weights)}")
    rest = 1.0 - design.arms[design.holdout_arm]
    return {arm: (design.arms[arm] if arm == design.holdout_arm else rest * float(weights.get(arm, 0.0)))
            for arm in design.arm_names}


def assign_arms_for_day(subscriber_keys: pd.Series, design: ExperimentDesign,
                        weights: Mapping[str, float]) -> pd.DataFrame:
    """`assign_arms` with the day's shares (`day_shares`): the same hash bucket per person as
    on every day, the holdout's range unchanged, the bandit's arms by the day's weights."""
    return assign_arms(subscriber_keys, day_design(design, weights))


def allocation_rows(allocation: pd.DataFrame, *, allocated_on: date, experiment_id: str, metric: str,
                    design: ExperimentDesign, seed: int, mlflow_run_id: str | None = None) -> pd.DataFrame:
    """ALLOCATION_COLUMN_TYPES rows of one day's allocation (`ThompsonBandit.allocate`)."""
    rest = 1.0 - design.arms[design.holdout_arm]
    return allocation.assign(
        allocated_on=pd.Timestamp(allocated_on).date(), experiment_id=experiment_id, metric=metric,
        traffic_share=allocation["weight"] * rest, seed=seed, mlflow_run_id=mlflow_run_id,
    )[list(ALLOCATION_COLUMN_TYPES)]


def day_design(design: ExperimentDesign, weights: Mapping[str, float]) -> ExperimentDesign:
    """`design` with the day's shares (`day_shares`) as its arms: what the day's assignment
    follows and its sample-ratio check tests against."""
    if design.arm_names[0] != design.holdout_arm:
        raise ValueError("a bandit's design lists its holdout first, so its bucket range never moves")
    shares = {arm: share for arm, share in day_shares(design, weights).items() if share > 0}
    return dataclasses.replace(design, arms=shares)


def log_allocation(client: "MlflowClient", run_id: str, allocation: pd.DataFrame, *, allocated_on: date,
                   day_index: int) -> None:
    """Log one day's weights and posteriors to an MLflow run (step = the day's index, timestamp
    the day's midnight UTC), through the explicit `client`."""
    from mlflow.entities import Metric

    timestamp = int(pd.Timestamp(allocated_on).tz_localize("UTC").timestamp() * 1000)
    metrics = [
        Metric(f"{row.arm}.{name}", float(getattr(row, name)), timestamp, day_index)
        for row in allocation.itertuples(index=False)
        for name in ("weight", "probability_best", "posterior_mean", "posterior_alpha", "posterior_beta")
    ]
    client.log_batch(run_id, metrics=metrics)


def record_allocation_run(tracking: "MlflowTarget", allocation: pd.DataFrame, *, bandit: "ThompsonBandit",
                          experiment_id: str, allocated_on: date, day_index: int, reward_days: int,
                          tags: Mapping[str, str] | None = None) -> str:
    """The day's MLflow run in `tracking`'s experiment (an ml.tracking.MlflowTarget): the
    bandit's declaration as params, the day's weights and posteriors as metrics
    (`log_allocation`). One run per bandit and day: a re-run of the day deletes the run it
    replaces. Returns the run id."""
    from mlflow.entities import Param

    from ml.tracking import ensure_experiment

    client = tracking.client
    mlflow_experiment = ensure_experiment(tracking)
    day = pd.Timestamp(allocated_on).date().isoformat()
    for earlier in client.search_runs(
            [mlflow_experiment], filter_string=f"tags.experiment_id = '{experiment_id}' and tags.allocated_on = '{day}'"):
        client.delete_run(earlier.info.run_id)
    run = client.create_run(mlflow_experiment, run_name=f"{experiment_id} {day}",
                            tags={**(tags or {}), "experiment_id": experiment_id, "allocated_on": day})
    status = "FAILED"
    try:
        params = {"seed": bandit.seed, "exploration_floor": bandit.exploration_floor, "draws": bandit.draws,
                  "prior_alpha": bandit.prior.alpha, "prior_beta": bandit.prior.beta, "reward_days": reward_days,
                  "arms": ",".join(bandit.arms)}
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        log_allocation(client, run.info.run_id, allocation, allocated_on=allocated_on, day_index=day_index)
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def _day_number(day: date | int) -> int:
    if isinstance(day, (int, np.integer)):
        if day < 0:
            raise ValueError("a day number must not be negative")
        return int(day)
    return pd.Timestamp(day).date().toordinal()
