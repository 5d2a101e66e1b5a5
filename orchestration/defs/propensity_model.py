"""The purchase-propensity model (LightGBM in MLflow) and the feature drift report."""

import dagster as dg

from ml.propensity.drift import build_drift_report
from ml.propensity.features import FEATURE_COLUMNS, ID_COLUMNS, PURCHASE_LABEL
from ml.tracking import MlflowTarget
from ml.propensity.training import train_propensity_model
from orchestration import tables
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.resources import PipelineSettings

OWNERS = ["team:ml-engineering"]


def mlflow_target(settings: PipelineSettings) -> MlflowTarget:
    return MlflowTarget(
        client=settings.mlflow_client(),
        artifact_location=settings.mlflow_artifact_location(),
        experiment_name=settings.mlflow_experiment_name,
    )


@dg.asset(
    deps=["training_examples"],
    description=(
        "LightGBM classifier of purchase within 14 days, trained on point-in-time examples "
        "(earlier weekly cutoffs train, the latest cutoff is held out). Logged to MLflow with "
        "params, metrics, input datasets and signature; registered and aliased `candidate`. "
        "Not daily: trained by train_propensity_model_job on its own cadence, on the warehouse "
        "as of the latest day built; the daily scores use whatever version the alias names."
    ),
    group_name="models",
    kinds={"lightgbm", "mlflow"},
    owners=OWNERS,
)
def purchase_propensity_model(
    context: dg.AssetExecutionContext, settings: PipelineSettings
) -> dg.MaterializeResult:
    warehouse = settings.warehouse()
    columns = ", ".join([*ID_COLUMNS, *FEATURE_COLUMNS, PURCHASE_LABEL])
    examples = warehouse.read(f"select {columns} from {tables.TRAINING_EXAMPLES}")
    result = train_propensity_model(
        examples,
        tracking=mlflow_target(settings),
        registered_model_name=settings.registered_model_name,
        dataset_name=tables.TRAINING_EXAMPLES,
        dataset_source=str(settings.warehouse_path()),
    )
    context.log.info(f"Registered {result.model_uri} from run {result.run_id}")
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": result.run_id,
            "mlflow_experiment_id": result.experiment_id,
            "model_uri": result.model_uri,
            "model_version": int(result.model_version),
            "tracking_uri": settings.tracking_uri(),
            "train_rows": result.n_train,
            "test_rows": result.n_test,
            **{name: float(value) for name, value in result.metrics.items()},
        }
    )


@dg.asset(
    deps=["training_examples", "scoring_features"],
    description=(
        "Evidently data-drift report, per day: training features (reference) against the day's "
        "subscriber features (current). HTML in the reports folder; drift numbers as metadata."
    ),
    partitions_def=daily_partitions,
    backfill_policy=one_run_per_day,
    group_name="models",
    kinds={"evidently", "html"},
    owners=OWNERS,
)
def feature_drift_report(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    warehouse = settings.warehouse()
    columns = ", ".join(FEATURE_COLUMNS)
    reference = warehouse.read(f"select {columns} from {tables.TRAINING_EXAMPLES}")
    current = warehouse.read(f"select {columns} from {tables.SCORING_FEATURES}")
    summary = build_drift_report(
        reference, current,
        html_path=settings.reports_path() / f"feature_drift_report_{partition_day(context).isoformat()}.html",
    )
    metadata = summary.to_metadata()
    metadata.pop("html_path")
    return dg.MaterializeResult(
        metadata={"report": dg.MetadataValue.path(str(summary.html_path)), **metadata}
    )
