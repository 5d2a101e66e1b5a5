"""Product recommendations, day by day: item-to-item collaborative filtering on the orders
up to the day's end, with a popularity fallback (ml/decisioning/recommendations.py). The
next day's planned sends carry each person's products, and the decision record the MLflow
run behind them."""

import dagster as dg

from ml.decisioning.recommendations import (
    EVALUATION_DAYS, METHOD, ORDER_INPUT, RecommenderParams, log_evaluation, recommend_for_day,
)
from ml.tracking import MlflowTarget
from orchestration import tables
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.resources import PipelineSettings, code_version

OWNERS = ["team:ml-engineering"]
EXPERIMENT_NAME = "product-recommendations"
RECOMMENDATION_COLUMN_TYPES = {
    "recommended_on": "date",
    "subscriber_key": "varchar",
    "rank": "integer",
    "product_id": "varchar",
    "score": "double",
    "source": "varchar",
    "method": "varchar",
    "trained_until": "timestamp",
    "mlflow_run_id": "varchar",
}


@dg.asset(
    deps=["fct_orders", "subscriber_profiles"],
    description=(
        f"Five products per canonical subscriber for the next day's email ({METHOD}: 'people who "
        "bought i went on to buy j', shrunk toward popularity; popularity for anyone with fewer "
        "than two orders, and each row says which). Fitted on every order up to the day's end. "
        f"Each day a fit on the orders before the last {EVALUATION_DAYS} days is scored on the "
        "purchases of those days (recall@5, NDCG@5 against popularity) in the MLflow experiment "
        f"`{EXPERIMENT_NAME}`, whose run id every row carries. No PII. Table "
        "ml.product_recommendations, one slice per day (recommended_on)."
    ),
    group_name="campaign",
    kinds={"python", "duckdb", "mlflow"},
    owners=OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=one_run_per_day,
    check_specs=[
        dg.AssetCheckSpec(
            "recommendations_beat_popularity",
            asset="product_recommendations",
            description=(
                f"On the purchases of the last {EVALUATION_DAYS} days, the recommendations' recall@5 is "
                "not below the popularity ranking's (warns; skipped when there is nothing to score)."
            ),
        )
    ],
)
def product_recommendations(context: dg.AssetExecutionContext, settings: PipelineSettings):
    warehouse = settings.warehouse()
    day = partition_day(context)
    as_of = settings.as_of(day)
    orders = warehouse.read(f"select {', '.join(ORDER_INPUT)} from {tables.FCT_ORDERS} where ordered_at <= ?", [as_of])
    people = warehouse.read(f"select subscriber_key from {tables.SUBSCRIBER_PROFILES} order by subscriber_key")
    params = RecommenderParams()
    result = recommend_for_day(orders, people["subscriber_key"], as_of, params)
    run_id = None
    if result.evaluation is not None:
        run_id = log_evaluation(
            MlflowTarget(
                client=settings.mlflow_client(),
                artifact_location=settings.mlflow_artifact_location(),
                experiment_name=EXPERIMENT_NAME,
            ),
            result.evaluation,
            run_tags={"code_version": code_version(), "dagster.run_id": context.run_id, "day": day.isoformat()},
        )
    rows = result.rows.assign(recommended_on=day, mlflow_run_id=run_id)[list(RECOMMENDATION_COLUMN_TYPES)]
    written = warehouse.replace_day(
        rows, tables.PRODUCT_RECOMMENDATIONS, "recommended_on", day, column_types=RECOMMENDATION_COLUMN_TYPES
    )
    evaluation = result.evaluation
    figures = {}
    if evaluation is not None:
        k = params.k
        figures = {
            f"test_recall_at_{k}": round(evaluation.model.recall, 4),
            f"test_popularity_recall_at_{k}": round(evaluation.popularity.recall, 4),
            f"test_ndcg_at_{k}": round(evaluation.model.ndcg, 4),
            f"test_popularity_ndcg_at_{k}": round(evaluation.popularity.ndcg, 4),
            "recall_gain_95ci": f"{evaluation.recall_gain.mean:+.4f} "
                                f"[{evaluation.recall_gain.ci_low:+.4f}, {evaluation.recall_gain.ci_high:+.4f}]",
            "test_people": evaluation.model.people,
            "mlflow_run_id": run_id,
        }
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "people": int(rows["subscriber_key"].nunique()),
            "by_source": {source: int(n) for source, n in rows.drop_duplicates("subscriber_key")["source"].value_counts().sort_index().items()},
            "orders_fitted": len(orders),
            **figures,
            **({"not_evaluated": result.why_not_evaluated} if evaluation is None else {}),
        }
    )
    yield dg.AssetCheckResult(
        check_name="recommendations_beat_popularity",
        passed=evaluation is None or evaluation.model.recall >= evaluation.popularity.recall,
        severity=dg.AssetCheckSeverity.WARN,
        description=result.why_not_evaluated if evaluation is None else None,
        metadata={key: value for key, value in figures.items() if key != "mlflow_run_id"},
    )
