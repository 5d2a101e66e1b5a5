"""One registered model version, ready to score: its spec, its booster and where it came from.

Training and scoring prepare features the same way (ml/propensity/features.py), and every
score names the exact version that produced it: `ModelService.load` pins the version an
alias points to at load time, so a promotion during a scoring run cannot mix two models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.propensity.features import prepare_features
from ml.propensity.specs import ModelSpec
from ml.tracking import download_model_version, model_version_uri, resolve_alias

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class ModelService:
    spec: ModelSpec
    version: str
    booster: Any  # lightgbm.Booster (or an in-memory LGBMClassifier in tests)
    run_id: str | None = None

    @property
    def model_name(self) -> str:
        return self.spec.registered_model_name

    @property
    def model_uri(self) -> str:
        return model_version_uri(self.model_name, self.version)

    @classmethod
    def load(cls, client: MlflowClient, spec: ModelSpec, *, alias: str | None = None, version: str | int | None = None) -> ModelService:
        """The version ``alias`` names now (or ``version``), downloaded from the client's
        registry; fails if it was trained on other features than the spec's."""
        import mlflow.lightgbm

        if (alias is None) == (version is None):
            raise ValueError("give exactly one of alias or version")
        pinned = resolve_alias(client, spec.registered_model_name, alias) if alias else str(version)
        booster = mlflow.lightgbm.load_model(
            download_model_version(client, model_version_uri(spec.registered_model_name, pinned))
        )
        if tuple(booster.feature_name()) != tuple(spec.features):
            raise ValueError(
                f"{spec.registered_model_name} version {pinned} expects features {booster.feature_name()}, but the "
                f"{spec.key} spec has {list(spec.features)}; retrain it"
            )
        run_id = client.get_model_version(spec.registered_model_name, pinned).run_id
        return cls(spec=spec, version=pinned, booster=booster, run_id=run_id)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's probability for every row of a features frame (training or scoring);
        an empty array for a frame of no rows (LightGBM refuses to predict on none)."""
        prepared = prepare_features(frame, self.spec.features)
        if prepared.empty:
            return np.empty(0, dtype="float64")
        booster = getattr(self.booster, "booster_", self.booster)
        scores = np.asarray(booster.predict(prepared), dtype="float64")
        if scores.shape != (len(frame),):
            raise ValueError(f"model returned scores of shape {scores.shape}; expected one per row")
        return scores
