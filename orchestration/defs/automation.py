"""The jobs, schedules and sensors: the daily loop, training on its own cadence, and
retraining when a model check fails."""

import os
from collections.abc import Mapping
from datetime import date

import dagster as dg

from ml.propensity.specs import MODEL_SPECS
from orchestration.defs.drift import SEGMENT_OUTCOME_CHECK
from orchestration.defs.uplift import BENCHMARK_ASSET

# dagster.yaml (orchestration/dagster.yaml) queues runs with this tag one at a time: one
# Dagster home per state folder, so one run per warehouse. The run lock backs this up for
# runs started outside the queue (`dg launch`, docs/loop.md).
ONE_RUN_PER_WAREHOUSE = {"email_pipeline/warehouse": "state"}

MODELS = dg.AssetSelection.assets(*(spec.asset_name for spec in MODEL_SPECS))
# Benchmarks on vendored data: their figures change only with the code, so they run by hand.
BENCHMARKS = dg.AssetSelection.assets(BENCHMARK_ASSET)
# What a day of the loop materialises: not the models (trained by their own job) nor the benchmarks.
DAILY_LOOP = dg.AssetSelection.all() - MODELS - BENCHMARKS

run_daily_loop_job = dg.define_asset_job(
    name="run_daily_loop_job",
    selection=DAILY_LOOP,
    description=(
        "One day of the loop (a daily partition): the day's landing → the warehouse as of the "
        "day's end → quality checks → scores with the model version the alias names → "
        "variants, arms and the sends planned for the next day → the experiment readout."
    ),
    tags=ONE_RUN_PER_WAREHOUSE,
)

train_models_job = dg.define_asset_job(
    name="train_models_job",
    selection=MODELS,
    description=(
        "Trains every model of ml/propensity/specs.py on the training examples of the latest day "
        "built, gates each challenger against its champion and writes the model cards. Not part "
        "of the daily loop: run on its own cadence (weekly schedule) or by hand."
    ),
    tags=ONE_RUN_PER_WAREHOUSE,
)

uplift_benchmark_job = dg.define_asset_job(
    name="uplift_benchmark_job",
    selection=BENCHMARKS,
    description=(
        "The Hillstrom uplift benchmark (hillstrom_uplift_benchmark): the uplift learners on the "
        "vendored experiment, figures in metadata and MLflow. Run by hand when the learners change; "
        "it needs landing/hillstrom materialised."
    ),
    tags=ONE_RUN_PER_WAREHOUSE,
)

# The one switch for automation: schedules and run-requesting sensors are STOPPED unless the
# environment says `running`. A dev `make ui` must not start runs by itself (the daily schedule
# would re-run the whole pipeline at 05:00 UTC); a deployment sets PIPELINE_AUTOMATION=running.
AUTOMATION_ENV = "PIPELINE_AUTOMATION"
AUTOMATION_VALUES = ("stopped", "running")


def automation_running(environ: Mapping[str, str] | None = None) -> bool:
    """True when PIPELINE_AUTOMATION is `running` (deployment); False when unset or `stopped` (dev)."""
    value = (os.environ if environ is None else environ).get(AUTOMATION_ENV, "").strip().lower() or "stopped"
    if value not in AUTOMATION_VALUES:
        raise ValueError(
            f"{AUTOMATION_ENV}={value!r} is not a valid value: set it to 'running' in a deployment "
            "(schedules and sensors start runs) or 'stopped' (the default, for dev)"
        )
    return value == "running"


def automation(running: bool) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The schedules and the retraining sensor, all running or all stopped. The dead-run sensor
    runs either way: it only marks dead runs failed and never starts one."""
    schedule_status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    sensor_status = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    # At 05:00 UTC it runs the partition of the day that just ended (everything known at its end).
    daily_loop_schedule = dg.build_schedule_from_partitioned_job(
        run_daily_loop_job, hour_of_day=5, default_status=schedule_status
    )
    weekly_training_schedule = dg.ScheduleDefinition(
        name="weekly_training_schedule",
        job=train_models_job,
        cron_schedule="0 3 * * 1",
        execution_timezone="UTC",
        default_status=schedule_status,
    )
    return [daily_loop_schedule, weekly_training_schedule], [build_retraining_sensor(sensor_status)]


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks runs whose process died (kill -9, OOM, machine restart) as failed, so they do not "
        "stay STARTED forever. Dagster's run monitoring cannot check the default launcher's workers."
    ),
)
def dead_run_sensor(context: dg.SensorEvaluationContext):
    from orchestration.run_guard import fail_runs_whose_process_died

    failed = fail_runs_whose_process_died(context.instance)
    return dg.SkipReason(f"Marked {len(failed)} dead run(s) failed." if failed else "No dead runs.")


# Model checks whose failure means the champion may be stale: each triggers retraining
# (docs/models.md). The new challenger then goes through the promotion gate like any other.
RETRAINING_CHECKS = frozenset({
    ("feature_drift_report", "feature_drift_share"),
    ("feature_drift_report", "important_feature_drift"),
    ("propensity_scores", "prediction_drift"),
    ("propensity_scores", "live_auc_decay"),
    ("fct_send_outcomes", SEGMENT_OUTCOME_CHECK),
})


# Retrain at most once in this many days of the loop: drift that persists after a retrain
# (the new normal) must not retrain every day.
RETRAIN_COOLDOWN_DAYS = 3
# Tag on training runs: the loop day whose warehouse they trained on.
LOOP_DAY_TAG = "email_pipeline/loop_day"


# The period of weekly_training_schedule, in days. The simulated loop runs no schedules
# (orchestration/loop.py), so it trains when its last training is this old, as the
# schedule would have: a model is then refreshed weekly even when no check fails.
TRAINING_CADENCE_DAYS = 7


def loop_training_reasons(check_reasons: list[str], day: date, last_trained_day: date | None) -> list[str]:
    """Why the simulated loop trains after ``day``: its failed retraining checks when the
    cooldown is over (`retraining_due`, the sensor's rule), else the weekly cadence when the
    last training is at least TRAINING_CADENCE_DAYS old (the schedule's); empty: no training."""
    if retraining_due(check_reasons, day, last_trained_day):
        return check_reasons
    if last_trained_day is not None and (day - last_trained_day).days >= TRAINING_CADENCE_DAYS:
        return [f"weekly cadence: last trained on {last_trained_day}, {TRAINING_CADENCE_DAYS} or more days before"]
    return []


def retraining_due(reasons: list[str], day: date, last_trained_day: date | None) -> bool:
    """Retrain when a retraining check failed and the last training is at least
    RETRAIN_COOLDOWN_DAYS days before ``day``."""
    return bool(reasons) and (last_trained_day is None or (day - last_trained_day).days >= RETRAIN_COOLDOWN_DAYS)


def last_trained_day(instance: dg.DagsterInstance) -> date | None:
    """The loop day of the latest successful train_models_job run, from its tag."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="train_models_job", statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    tagged = runs[0].tags.get(LOOP_DAY_TAG) if runs else None
    return date.fromisoformat(tagged) if tagged else None


def retraining_reasons(evaluations) -> list[str]:
    """The failed retraining checks among a run's asset check evaluations, as sentences."""
    return sorted(
        f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name} failed"
        + (f": {evaluation.description}" if evaluation.description else "")
        for evaluation in evaluations
        if not evaluation.passed
        and (evaluation.asset_key.to_user_string(), evaluation.check_name) in RETRAINING_CHECKS
    )


def build_retraining_sensor(default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="retrain_on_failed_model_checks",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[run_daily_loop_job],
        request_job=train_models_job,
        default_status=default_status,
        description=(
            "After each successful day of the loop, retrains every model when a drift or decay check of "
            "that day failed (RETRAINING_CHECKS). The reasons go on the training run as a tag."
        ),
    )
    def retrain_on_failed_model_checks(context: dg.RunStatusSensorContext):
        records = context.instance.all_logs(
            context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        reasons = retraining_reasons(record.asset_check_evaluation for record in records)
        day = date.fromisoformat(context.dagster_run.tags["dagster/partition"])
        if not retraining_due(reasons, day, last_trained_day(context.instance)):
            return dg.SkipReason(
                f"no retraining: {'; '.join(reasons) or 'every drift and decay check passed'}"
                f" (cooldown {RETRAIN_COOLDOWN_DAYS} days)"
            )
        return dg.RunRequest(
            run_key=f"retrain-after-{context.dagster_run.run_id}",
            tags={"retraining_reasons": "; ".join(reasons)[:2000], LOOP_DAY_TAG: day.isoformat()},
        )

    return retrain_on_failed_model_checks


@dg.definitions
def defs() -> dg.Definitions:
    schedules, sensors = automation(automation_running())
    return dg.Definitions(
        jobs=[run_daily_loop_job, train_models_job, uplift_benchmark_job],
        schedules=schedules,
        sensors=[dead_run_sensor, *sensors],
    )
