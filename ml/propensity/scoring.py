"""Batch scoring of `marts.scoring_features` with a registered propensity model.

The model is always loaded from the MLflow registry by URI, so what scores subscribers is
exactly the registered version that was reviewed, not a file that happens to be on disk.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.propensity.features import FEATURE_COLUMNS
from ml.tracking import download_model_version, parse_model_name
from ml.propensity.training import prepare_features

if TYPE_CHECKING:
    import lightgbm
    from mlflow import MlflowClient

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


def load_model(model_uri: str, client: MlflowClient) -> lightgbm.Booster:
    """Load a registered LightGBM model (``models:/<name>/<version>`` or ``models:/<name>@<alias>``)
    from the client's registry; fail if it was trained on other features."""
    import mlflow.lightgbm

    booster = mlflow.lightgbm.load_model(download_model_version(client, model_uri))
    if tuple(booster.feature_name()) != tuple(FEATURE_COLUMNS):
        raise ValueError(
            f"model {model_uri} expects features {booster.feature_name()}, but the feature contract is "
            f"{list(FEATURE_COLUMNS)}; retrain it"
        )
    return booster


def score_subscribers(
    features: pd.DataFrame,
    model: lightgbm.Booster,
    *,
    model_uri: str,
    model_version: str | int,
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
    # Accept both the registered Booster and an in-memory LGBMClassifier.
    booster = getattr(model, "booster_", model)
    scores = np.asarray(booster.predict(prepare_features(features)), dtype="float64")
    if scores.shape != (len(features),):
        raise ValueError(f"model returned scores of shape {scores.shape}; expected one per row")

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
    scored["model_name"] = parse_model_name(model_uri)
    scored["model_version"] = str(model_version)
    scored["scored_at"] = pd.Timestamp(scored_at)
    return scored[list(SCORE_COLUMNS)]


def score_deciles(ranks: np.ndarray, n: int) -> np.ndarray:
    """Decile 1..10 of 1-based ``ranks`` among ``n`` rows; rank 1 is always in decile 1."""
    if n == 0:
        return np.array([], dtype="int64")
    return ((np.asarray(ranks, dtype="int64") - 1) * 10 // n + 1).astype("int64")
