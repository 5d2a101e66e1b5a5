"""Batch scoring of `marts.scoring_features` with a registered model version.

The model is always a `ModelService` loaded from the MLflow registry (the version behind
`champion`), so what scores subscribers is exactly the version the gate promoted, not a
file that happens to be on disk.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ml.propensity.service import ModelService

SCORE_COLUMNS = (
    "subscriber_key",
    "cutoff_at",
    "propensity_score",
    "score_rank",
    "score_decile",
    "model_name",
    "model_version",
    "scored_at",
)


def score_subscribers(
    features: pd.DataFrame,
    model: ModelService,
    *,
    scored_at: datetime | None = None,
) -> pd.DataFrame:
    """One row per subscriber with the purchase propensity, its rank (1 = most likely) and
    decile (1 = top 10 %), plus which model version produced it. Columns: SCORE_COLUMNS."""
    missing = [c for c in ("subscriber_key", "cutoff_at") if c not in features.columns]
    if missing:
        raise ValueError(f"scoring features lack columns {missing}")
    if features["subscriber_key"].isna().any():
        raise ValueError("scoring features have rows without subscriber_key")
    if features["subscriber_key"].duplicated().any():
        raise ValueError("scoring features have more than one row per subscriber_key")
    scored_at = scored_at or datetime.now(timezone.utc)
    scores = model.predict(features)

    scored = pd.DataFrame(
        {
            "subscriber_key": features["subscriber_key"].to_numpy(),
            "cutoff_at": pd.to_datetime(features["cutoff_at"]).to_numpy(),
            "propensity_score": scores,
        }
    )
    # Highest score first; ties broken by key so ranks are reproducible.
    scored = scored.sort_values(["propensity_score", "subscriber_key"], ascending=[False, True], ignore_index=True)
    scored["score_rank"] = np.arange(1, len(scored) + 1, dtype="int64")
    scored["score_decile"] = score_deciles(scored["score_rank"].to_numpy(), len(scored))
    scored["model_name"] = model.model_name
    scored["model_version"] = str(model.version)
    scored["scored_at"] = pd.Timestamp(scored_at)
    return scored[list(SCORE_COLUMNS)]


def score_deciles(ranks: np.ndarray, n: int) -> np.ndarray:
    """Decile 1..10 of 1-based ``ranks`` among ``n`` rows; rank 1 is always in decile 1."""
    if n == 0:
        return np.array([], dtype="int64")
    return ((np.asarray(ranks, dtype="int64") - 1) * 10 // n + 1).astype("int64")
