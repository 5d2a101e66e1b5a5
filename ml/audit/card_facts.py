"""A model card's facts, gathered from what the pipeline already holds, and its publication.

Nothing on a card is typed by hand: the spec gives the purpose and limits, the training
result the figures and data, the gate the promotion history, the warehouse the audit
groups. `publish_model_card` puts the card where each reader looks: the registered
version's description in MLflow (Markdown), an HTML artefact on the run, and files in the
reports folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ml.audit.bias import bias_audit
from ml.audit.model_card import (
    DataSummary,
    ModelCardFacts,
    render_model_card_html,
    render_model_card_markdown,
)
from ml.propensity.metrics import calibration_bins, segment_aucs
from ml.propensity.specs import ModelSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ml.propensity.training import TrainingResult

# The warehouse lineage of every model's data (dbt models and the landing files behind them).
TRAINING_DATA_UPSTREAM = (
    "dbt: marts.training_examples (macros/subscriber_features.sql, macros/segments.sql)",
    "dbt: marts.fct_sends, marts.fct_email_events, marts.fct_orders, marts.consent_history",
    "dbt: intermediate.int_subscribers_unified",
    "landing: crm_subscribers, esp_subscribers, consent_events, sends, email_events, orders",
)
# Attributes the bias audit compares groups by (marts.subscriber_profiles); never features.
AUDIT_ATTRIBUTES = ("age_band", "gender")

ETHICAL_CONSIDERATIONS = (
    "Only consented, unsuppressed, unerased subscribers are scored; consent is decided before "
    "the model and a score never overrides it.",
    "Features are behavioural (sends, opens, clicks, orders, tenure); no name, email, age or "
    "gender reaches the model, which sees pseudonymous keys only through the join.",
    "Age band and gender are used only to audit outcomes per group; a gap beyond the threshold "
    "fails a warning check and is shown here.",
)


@dataclass(frozen=True)
class PublishedCard:
    markdown: str
    markdown_path: Path
    html_path: Path


def _data_summary(dataset: dict[str, Any], upstream: tuple[str, ...]) -> DataSummary:
    return DataSummary(
        name=dataset["name"],
        digest=dataset["digest"],
        rows=int(dataset["rows"]),
        first_cutoff=dataset["first_cutoff"],
        last_cutoff=dataset["last_cutoff"],
        positive_rate=float(dataset["positive_rate"]),
        source=dataset["source"],
        upstream=upstream,
    )


def build_model_card_facts(
    spec: ModelSpec,
    result: TrainingResult,
    *,
    groups: pd.DataFrame,
    promotion_history: list[dict],
    code_version: str,
    links: dict[str, str],
    landing_batches: tuple[str, ...] = (),
    oracle_auc: float | None = None,
) -> ModelCardFacts:
    """The card of ``result`` (a registered version of ``spec``).

    ``groups``: subscriber_key plus the audit attributes (marts.subscriber_profiles); joined
    to the test rows by key, so the audit covers exactly the evaluation rows.
    ``promotion_history``: rows of ml.model_promotions for this model, oldest first.
    """
    if result.test is None or result.test_scores is None or result.importance is None:
        raise ValueError("the training result carries no test rows, scores or importance")
    labels = result.test[spec.label].to_numpy()
    scores = result.test_scores
    attributes = [a for a in AUDIT_ATTRIBUTES if a in groups.columns]
    audit_groups = result.test[["subscriber_key"]].merge(
        groups[["subscriber_key", *attributes]].drop_duplicates("subscriber_key"), on="subscriber_key", how="left"
    )
    bias = bias_audit(labels, scores, audit_groups[attributes]) if attributes else None
    upstream = TRAINING_DATA_UPSTREAM + ((f"landing batches: {', '.join(landing_batches)}",) if landing_batches else ())
    metric_names = ("test_auc", "test_pr_auc", "test_log_loss", "test_ece", "test_base_rate", "test_top_decile_lift")
    return ModelCardFacts(
        model_name=result.model_name,
        version=result.model_version,
        run_id=result.run_id,
        experiment_id=result.experiment_id,
        code_version=code_version,
        trained_at=result.trained_at,
        model_family="LightGBM",
        target=spec.target,
        label=spec.label,
        horizon_days=spec.horizon_days,
        intended_use=spec.intended_use,
        out_of_scope=spec.out_of_scope,
        factors=tuple(spec.segments) + tuple(attributes),
        metrics={name: float(result.metrics[name]) for name in metric_names if name in result.metrics},
        auc_ci=(float(result.metrics["test_auc_low"]), float(result.metrics["test_auc_high"])),
        segment_metrics=segment_aucs(labels, scores, result.test[list(spec.segments)]),
        calibration=calibration_bins(labels, scores),
        feature_importance=result.importance,
        training_data=_data_summary(result.datasets["training"], upstream),
        evaluation_data=_data_summary(result.datasets["testing"], upstream),
        bias=bias,
        promotion_history=tuple(promotion_history),
        links=links,
        oracle_auc=oracle_auc,
        caveats=spec.caveats,
        ethical_considerations=ETHICAL_CONSIDERATIONS,
    )


def publish_model_card(client: MlflowClient, facts: ModelCardFacts, folder: Path) -> PublishedCard:
    """Write the card's files, make the Markdown the version's MLflow description and log
    the HTML on the version's run."""
    folder = Path(folder) / facts.model_name / f"v{facts.version}"
    folder.mkdir(parents=True, exist_ok=True)
    markdown = render_model_card_markdown(facts)
    markdown_path = folder / "model_card.md"
    html_path = folder / "model_card.html"
    markdown_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(render_model_card_html(facts), encoding="utf-8")
    client.update_model_version(facts.model_name, facts.version, description=markdown)
    client.log_artifact(facts.run_id, str(html_path), artifact_path="model_card")
    client.log_artifact(facts.run_id, str(markdown_path), artifact_path="model_card")
    return PublishedCard(markdown=markdown, markdown_path=markdown_path, html_path=html_path)
