"""Batch scoring of every eligible (consented, unsuppressed) subscriber."""

import dagster as dg

from ml.propensity.features import FEATURE_COLUMNS
from ml.propensity.scoring import load_model, score_subscribers
from ml.tracking import CANDIDATE_ALIAS, model_version_uri, resolve_alias
import pandas as pd

from orchestration import tables
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.resources import PipelineSettings


@dg.asset(
    deps=["purchase_propensity_model", "scoring_features", "subscriber_eligibility"],
    description=(
        "Purchase propensity for every eligible subscriber as of the day, from the registered "
        "model version behind the `candidate` alias at scoring time (each row names it). "
        "Ineligible subscribers are not scored: their exclusion reason stays in "
        "marts.subscriber_eligibility. Table ml.propensity_scores, one slice per day (scored_on)."
    ),
    partitions_def=daily_partitions,
    backfill_policy=one_run_per_day,
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
    day = partition_day(context)
    scores = score_subscribers(
        features, model, model_uri=model_uri, model_version=model_version, scored_at=settings.as_of(day)
    ).assign(scored_on=pd.Timestamp(day))
    rows = warehouse.replace_day(scores, tables.PROPENSITY_SCORES, "scored_on", day)
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
