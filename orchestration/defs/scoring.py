"""Batch scoring of every eligible (consented, unsuppressed) subscriber."""

import dagster as dg

import pandas as pd

from ml.propensity.drift import build_drift_report
from ml.propensity.monitoring import MAX_AUC_DECAY, LivePerformance, latest_matured_day, live_performance
from ml.propensity.promotion import CHAMPION_ALIAS, champion_version
from ml.propensity.scoring import (
    ELIGIBILITY_COUNT_COLUMNS, SCORE_COLUMN_TYPES, empty_scores, no_champion_reason, nobody_scored_reason, score_subscribers,
)
from ml.propensity.score_checks import (
    IN_RANGE, MIN_DISTINCT_SCORES, MIN_SCORE_STD, NOT_COLLAPSED, ONE_PER_ELIGIBLE_PERSON, SCORE_CHECKS, check_scores,
)
from ml.propensity.service import ModelService
from ml.propensity.specs import PURCHASE
from ml.reports.small_plots import markdown_image, score_histogram

from orchestration import tables
from orchestration.links import model_version_url
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.resources import PipelineSettings

# ml.propensity_scores: the scores, the day they are for, and (added on write) the Dagster run.
SCORES_TABLE_TYPES = {**SCORE_COLUMN_TYPES, "scored_on": "timestamp_ns"}


@dg.asset(
    deps=[PURCHASE.asset_name, "scoring_features", "subscriber_eligibility"],
    description=(
        "Purchase propensity for every eligible subscriber as of the day, from the registered "
        "version behind the `champion` alias at scoring time (each row names it): only a "
        "version the promotion gate passed (or a rollback restored) ever scores. Each row carries the "
        "version's MLflow training run (model_run_id) and the Dagster run that scored it (dagster_run_id). "
        "Ineligible subscribers are not scored: their exclusion reason stays in "
        "marts.subscriber_eligibility. Table ml.propensity_scores, one slice per day (scored_on)."
    ),
    partitions_def=daily_partitions,
    backfill_policy=one_run_per_day,
    group_name="models",
    kinds={"lightgbm", "duckdb"},
    owners=["team:ml-engineering"],
    check_specs=[
        dg.AssetCheckSpec(
            IN_RANGE, asset="propensity_scores", blocking=True,
            description="Every score of the day is a probability: in [0, 1], none missing. Blocks the sends.",
        ),
        dg.AssetCheckSpec(
            ONE_PER_ELIGIBLE_PERSON, asset="propensity_scores", blocking=True,
            description="Exactly one score per eligible subscriber of the day (marts.subscriber_eligibility), "
                        "none for anyone else. Blocks the sends.",
        ),
        dg.AssetCheckSpec(
            NOT_COLLAPSED, asset="propensity_scores",
            description=f"The day's scores are spread out (at least {MIN_DISTINCT_SCORES} distinct values and a "
                        f"standard deviation of {MIN_SCORE_STD} or more): a model that says the same for "
                        "everyone cannot rank.",
        ),
        dg.AssetCheckSpec(
            "prediction_drift",
            asset="propensity_scores",
            description=(
                "Fails when the day's score distribution drifts from the champion's scores on the latest "
                "training cutoff (Evidently's test on the one column). A failure triggers retraining."
            ),
        ),
        dg.AssetCheckSpec(
            "live_auc_decay",
            asset="propensity_scores",
            description=(
                f"Fails when the AUC of the latest scoring day whose {PURCHASE.horizon_days}-day label window has "
                f"closed is more than {MAX_AUC_DECAY} below the AUC the scoring version was promoted with. "
                "Passes, saying so, while no day has matured. A failure triggers retraining."
            ),
        ),
    ],
)
def propensity_scores(context: dg.AssetExecutionContext, settings: PipelineSettings):
    warehouse = settings.warehouse()
    feature_list = ", ".join(f"f.{column}" for column in PURCHASE.features)
    features = warehouse.read(
        f"""
        select f.subscriber_key, f.cutoff_at, {feature_list}
        from {tables.SCORING_FEATURES} f
        join {tables.SUBSCRIBER_ELIGIBILITY} e using (subscriber_key)
        where e.is_eligible
        """
    )
    day = partition_day(context)
    client = settings.mlflow_client()
    if champion_version(client, PURCHASE.registered_model_name) is None:
        # Empty is a state: no version passed the gate (or none was trained), so nothing is
        # scored; the day gets an empty, typed slice and the reason.
        status = no_champion_reason(PURCHASE.registered_model_name, warehouse.read_table_if_exists(tables.MODEL_PROMOTIONS))
        context.log.warning(f"Scored nobody on {day}: {status}")
        warehouse.replace_day(empty_scores().assign(scored_on=pd.Timestamp(day)), tables.PROPENSITY_SCORES, "scored_on", day,
                              column_types=SCORES_TABLE_TYPES, run_id=context.run_id)
        yield dg.MaterializeResult(metadata={"dagster/row_count": 0, "status": status, "table": tables.PROPENSITY_SCORES})
        for check in (*SCORE_CHECKS, "prediction_drift", "live_auc_decay"):
            yield dg.AssetCheckResult(check_name=check, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                      description=f"nothing to check: {status}")
        return
    # Pin the version behind the alias now, so every score row names the exact model.
    model = ModelService.load(client, PURCHASE, alias=CHAMPION_ALIAS)
    model_uri = model.model_uri
    scores = score_subscribers(features, model, scored_at=settings.as_of(day)).assign(scored_on=pd.Timestamp(day))
    rows = warehouse.replace_day(scores, tables.PROPENSITY_SCORES, "scored_on", day, column_types=SCORES_TABLE_TYPES,
                                 run_id=context.run_id)
    if rows:
        status = f"scored {rows:,} eligible subscribers"
        context.log.info(f"Scored {rows} eligible subscribers with {model_uri}")
    else:
        # Empty is a state: an empty slice, and why (reason codes and counts, no keys).
        status = nobody_scored_reason(warehouse.read(
            f"select {', '.join(ELIGIBILITY_COUNT_COLUMNS[:2])}, count(*) as subscribers "
            f"from {tables.SUBSCRIBER_ELIGIBILITY} group by all"
        ))
        context.log.warning(f"Scored nobody on {day}: {status}; the day's later steps plan no sends")

    # Prediction drift: the day's scores against the champion's on its latest training cutoff.
    reference_rows = warehouse.read(
        f"select {', '.join(PURCHASE.features)} from {tables.TRAINING_EXAMPLES} "
        f"where cutoff_at = (select max(cutoff_at) from {tables.TRAINING_EXAMPLES})"
    )
    prediction_drift = None if scores.empty or reference_rows.empty else build_drift_report(
        pd.DataFrame({"propensity_score": model.predict(reference_rows)}),
        scores[["propensity_score"]],
        html_path=settings.reports_path() / f"prediction_drift_report_{day.isoformat()}.html",
        columns=["propensity_score"],
    ).columns["propensity_score"]
    live = _live_performance(warehouse, settings, day)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "model_version": dg.MetadataValue.url(model_version_url(PURCHASE.registered_model_name, model.version)),
            "model_uri": model_uri,
            "status": status,
            "mean_score": round(float(scores["propensity_score"].mean()), 4) if rows else None,
            "score_histogram": dg.MetadataValue.md(markdown_image(
                score_histogram(scores["propensity_score"]), f"propensity scores of {day}")) if rows else None,
            "table": tables.PROPENSITY_SCORES,
        }
    )
    eligible = warehouse.read(f"select subscriber_key from {tables.SUBSCRIBER_ELIGIBILITY} where is_eligible")
    for result in check_scores(scores, eligible["subscriber_key"]):
        yield dg.AssetCheckResult(
            check_name=result.name, passed=result.passed,
            severity=dg.AssetCheckSeverity.WARN if result.name == NOT_COLLAPSED else dg.AssetCheckSeverity.ERROR,
            description=result.description, metadata=result.figures,
        )
    if prediction_drift is None:
        yield dg.AssetCheckResult(
            check_name="prediction_drift", passed=True, severity=dg.AssetCheckSeverity.WARN,
            description="no scores (or no training rows) to compare today",
        )
    else:
        yield dg.AssetCheckResult(
            check_name="prediction_drift",
            passed=not prediction_drift.drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{prediction_drift.method} {prediction_drift.score:.4f} against threshold {prediction_drift.threshold}"
            ),
            metadata={"method": prediction_drift.method, "score": round(prediction_drift.score, 4),
                      "threshold": prediction_drift.threshold},
        )
    if live is None:
        yield dg.AssetCheckResult(
            check_name="live_auc_decay",
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"no scoring day has a closed {PURCHASE.horizon_days}-day label window with enough buyers yet",
            metadata={"matured_day": "none"},
        )
    else:
        yield dg.AssetCheckResult(
            check_name="live_auc_decay",
            passed=not live.decayed,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"AUC {live.auc:.4f} on the scores of {live.scored_on} (v{live.model_version}) against "
                f"{live.promoted_auc:.4f} at promotion: decay {live.decay:+.4f} (max {MAX_AUC_DECAY})"
            ),
            metadata={
                "matured_day": str(live.scored_on),
                "live_auc": round(live.auc, 4),
                "promoted_auc": round(live.promoted_auc, 4),
                "rows": live.rows,
                "positives": live.positives,
            },
        )


def _live_performance(warehouse, settings: PipelineSettings, day) -> LivePerformance | None:
    """The purchase champion's AUC on the latest scoring day whose label window has closed."""
    cutoffs = warehouse.read(
        f"select cast(scored_on as date) as scored_on, max(cutoff_at) as cutoff_at from {tables.PROPENSITY_SCORES} group by all"
    ).set_index("scored_on")["cutoff_at"]
    matured = latest_matured_day(cutoffs, PURCHASE.horizon_days, settings.as_of(day))
    if matured is None:
        return None
    scores = warehouse.read(
        f"select subscriber_key, cutoff_at, propensity_score, model_version from {tables.PROPENSITY_SCORES} "
        "where scored_on = ?",
        [matured],
    )
    versions = scores["model_version"].unique()
    client = settings.mlflow_client()
    run_id = client.get_model_version(PURCHASE.registered_model_name, str(versions[0])).run_id
    orders = warehouse.read(f"select subscriber_key, ordered_at as occurred_at from {tables.FCT_ORDERS}")
    return live_performance(
        scores, orders, horizon_days=PURCHASE.horizon_days,
        promoted_auc=client.get_run(run_id).data.metrics["test_auc"],
    )
