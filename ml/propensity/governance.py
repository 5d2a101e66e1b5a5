"""A new version meets the champion: the gate on the same rows, then the alias moves.

The rows are the challenger's test set, the most recent matured cutoff: the challenger
held it out, and the champion was trained earlier on cutoffs whose label windows closed
before it, so neither model trained on it. Both are scored on exactly those rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ml.propensity.promotion import GateDecision, PromotionRecord, apply_gate_decision, champion_version, evaluate_gate
from ml.propensity.service import ModelService
from ml.propensity.specs import ModelSpec
from ml.propensity.training import TrainingResult

if TYPE_CHECKING:
    from mlflow import MlflowClient


def review_challenger(
    client: MlflowClient, spec: ModelSpec, result: TrainingResult, *, decided_at: datetime,
    data_as_of: datetime | None = None,
) -> tuple[GateDecision, PromotionRecord]:
    """Gate ``result`` (a freshly registered challenger) against the current champion and
    apply the decision: tags on the version, and the champion alias moved only on a pass."""
    if result.test is None or result.test_scores is None:
        raise ValueError("the training result carries no test rows to gate on")
    champion = champion_version(client, spec.registered_model_name)
    champion_scores = None
    if champion is not None:
        champion_scores = ModelService.load(client, spec, version=champion).predict(result.test)
    decision = evaluate_gate(
        result.test[spec.label].to_numpy(),
        result.test_scores,
        champion_scores,
        result.test[list(spec.segments)],
        model_name=spec.registered_model_name,
        challenger_version=result.model_version,
        champion_version=champion,
        criteria=spec.gate,
    )
    return decision, apply_gate_decision(client, decision, decided_at=decided_at, data_as_of=data_as_of)
