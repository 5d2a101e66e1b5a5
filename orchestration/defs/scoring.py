"""Batch scoring of every eligible (consented, unsuppressed) subscriber."""

import dagster as dg

from ml.propensity.features import FEATURE_COLUMNS
from ml.propensity.scoring import load_model, score_subscribers
from ml.tracking import CANDIDATE_ALIAS, model_version_uri, resolve_alias
from orchestration import tables
from orchestration.resources import PipelineSettings


@dg.asset(
    deps=["purchase_propensity_model", "scoring_features", "subscriber_eligibility"],
    description=(
        "Purchase propensity for every eligible subscriber, from the registered model version "
        "behind the `candidate` alias. Ineligible subscribers are not scored: their exclusion "
        "reason stays in marts.subscriber_eligibility. Table ml.propensity_scores."
    ),
    group_name="scoring",
    kinds={"lightgbm", "duckdb"},
    owners=["team:ml-engineering"],
)
def propensity_scores(
    context: dg.AssetExecutionContext, settings: PipelineSettings
) -> dg.MaterializeResult:
    warehouse = settings.warehouse()
    feature_list = ", ".join(f"f.{column}" for column in FEATURE_COLUMNS)
    features = warehouse.read(
        f"""
        select f.subscriber_key, f.cutoff_at, {feature_list}
        from {tables.SCORING_FEATURES} f
        join {tables.SUBSCRIBER_ELIGIBILITY} e using (subscriber_key)
        where e.is_eligible
        """
    )
    # Pin the version behind the alias now, so every score row names the exact model.
    client = settings.mlflow_client()
    model_version = resolve_alias(client, settings.registered_model_name, CANDIDATE_ALIAS)
    model_uri = model_version_uri(settings.registered_model_name, model_version)
    model = load_model(model_uri, client)
    scores = score_subscribers(features, model, model_uri=model_uri, model_version=model_version)
    rows = warehouse.write_table(scores, tables.PROPENSITY_SCORES)
    context.log.info(f"Scored {rows} eligible subscribers with {model_uri}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "model_uri": model_uri,
            "model_version": int(model_version),
            "mean_score": float(scores["propensity_score"].mean()) if rows else 0.0,
            "table": tables.PROPENSITY_SCORES,
        }
    )
