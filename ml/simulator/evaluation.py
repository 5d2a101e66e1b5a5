"""Scoring a targeting policy against the simulator's truth (tests, benchmarks, the demo).

The expected incremental purchases of emailing a set of people is the sum of their true
uplifts. Random targeting of the same volume from the same population expects the mean
uplift times that volume, so the ratio says how much better than random the policy chose.

Recommendations are scored against the world's own product ranking per person
(`true_product_rankings`): the ceiling any recommender could reach on the same purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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


def captured_share(true_uplift: np.ndarray, rankings: dict[str, np.ndarray], volume: int) -> dict[str, float]:
    """The share of a pool's true incremental purchases that emailing `volume` people captures,
    for each ranking (name -> score, highest emailed first; ties by position), for random
    targeting (expected: volume / pool) and for the true uplift's own ranking (`oracle`).
    Rankings with a missing score are left out."""
    uplift = np.asarray(true_uplift, dtype=float)
    if not 0 <= volume <= len(uplift):
        raise ValueError(f"volume {volume} is outside the pool of {len(uplift)}")
    total = uplift.sum()
    if len(uplift) == 0 or total == 0:
        return {}

    def top(score) -> float:
        chosen = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:volume]
        return float(uplift[chosen].sum() / total)

    shares = {name: top(score) for name, score in rankings.items()
              if len(score) == len(uplift) and not np.isnan(np.asarray(score, dtype=float)).any()}
    return {**shares, "random": volume / len(uplift), "oracle": top(uplift)}


def history_purchase_probability(oracle_dir, crm_ids, cutoffs, horizon_days: int) -> np.ndarray:
    """The true probability that each person buys in [cutoff, cutoff + horizon_days): one
    minus exp(-the daily hazards they actually lived with in that window), email boosts
    included. ``crm_ids`` name the people (None: not a CRM customer, who cannot buy: 0).
    NaN where the window leaves the simulated history."""
    import json
    from pathlib import Path

    import pyarrow.parquet as pq

    from ml.simulator import formatting
    from ml.simulator.audience import HISTORY_HAZARD_FILE
    from ml.simulator.config import AudienceConfig
    from ml.simulator.population import CRM, DAY, subscriber_ids

    oracle_dir = Path(oracle_dir)
    config = AudienceConfig.from_manifest(json.loads((oracle_dir / "truth.json").read_text())["generator"])
    table = pq.read_table(oracle_dir / HISTORY_HAZARD_FILE)
    person = table["person_id"].to_numpy()
    hazard = np.asarray(table["daily_purchase_hazard"].combine_chunks().flatten()).reshape(len(person), config.days)
    cumulative = np.concatenate([np.zeros((len(person), 1)), np.cumsum(hazard, axis=1, dtype=float)], axis=1)
    row_of = pd.Series(np.arange(len(person)), index=subscriber_ids(person, CRM).to_numpy(zero_copy_only=False))
    rows = pd.Series(list(crm_ids)).map(row_of)
    history_start = formatting.epoch_seconds(config.end) - config.days * DAY
    start_day = ((pd.to_datetime(pd.Series(list(cutoffs))).astype("int64") // 10**9 - history_start) // DAY).to_numpy()
    end_day = start_day + horizon_days
    inside = (start_day >= 0) & (end_day <= config.days)
    known = rows.notna().to_numpy() & inside
    probability = np.where(inside, 0.0, np.nan)
    r = rows[known].to_numpy(dtype=np.int64)
    probability[known] = 1.0 - np.exp(-(cumulative[r, end_day[known]] - cumulative[r, start_day[known]]))
    return probability


def true_product_rankings(oracle_dir, crm_ids, k: int) -> pd.DataFrame:
    """The world's own top ``k`` products per CRM customer: (crm_id, rank, product_id,
    probability), by the true probability that their next purchase is that product
    (`behaviour.product_probabilities`). The ceiling of any recommender on this world's
    held-out purchases; ids that name no simulated customer are left out."""
    import json
    from pathlib import Path

    from ml.simulator import behaviour
    from ml.simulator.config import AudienceConfig
    from ml.simulator.population import CRM, draw_catalogue, draw_people, subscriber_ids

    config = AudienceConfig.from_manifest(json.loads((Path(oracle_dir) / "truth.json").read_text())["generator"])
    person_ids = np.arange(config.n_people, dtype=np.int64)
    person_of = pd.Series(person_ids, index=subscriber_ids(person_ids, CRM).to_numpy(zero_copy_only=False))
    wanted = pd.Series(pd.unique(pd.Series(list(crm_ids), dtype=object).dropna().astype(str)), dtype=object)
    wanted = wanted.loc[wanted.isin(person_of.index)]
    people = draw_people(config, person_of.loc[wanted].to_numpy())
    catalogue = draw_catalogue(config.seed)
    probability = behaviour.product_probabilities(people.affinity, people.price_sensitivity, catalogue.by_category)
    k = min(k, probability.shape[1])
    # Ties (never in practice: continuous traits) by catalogue order.
    top = np.argsort(-probability, axis=1, kind="stable")[:, :k]
    return pd.DataFrame({
        "crm_id": np.repeat(wanted.to_numpy(dtype=object), k),
        "rank": np.tile(np.arange(1, k + 1), len(wanted)),
        "product_id": catalogue.product_id[top].ravel(),
        "probability": np.take_along_axis(probability, top, axis=1).ravel(),
    })
