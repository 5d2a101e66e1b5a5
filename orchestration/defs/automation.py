"""The jobs and schedules: the daily loop, and training on its own cadence."""

import dagster as dg

# dagster.yaml (orchestration/dagster.yaml) queues runs with this tag one at a time: one
# Dagster home per state folder, so one run per warehouse. The run lock backs this up for
# runs started outside the queue (`dagster job execute`).
ONE_RUN_PER_WAREHOUSE = {"email_pipeline/warehouse": "state"}

MODEL = dg.AssetSelection.assets("purchase_propensity_model")

run_daily_loop_job = dg.define_asset_job(
    name="run_daily_loop_job",
    selection=dg.AssetSelection.all() - MODEL,
    description=(
        "One day of the loop (a daily partition): the day's landing → the warehouse as of the "
        "day's end → quality checks → scores with the model version the alias names → "
        "variants, arms and the sends planned for the next day → the experiment readout."
    ),
    tags=ONE_RUN_PER_WAREHOUSE,
)

train_propensity_model_job = dg.define_asset_job(
    name="train_propensity_model_job",
    selection=MODEL,
    description=(
        "Trains and registers the purchase model on the training examples of the latest day "
        "built. Not part of the daily loop: run on its own cadence (weekly schedule) or by hand."
    ),
    tags=ONE_RUN_PER_WAREHOUSE,
)

# Stopped by default: a dev `make ui` must not start runs by itself. Turn on in production.
# At 05:00 UTC it runs the partition of the day that just ended (everything known at its end).
daily_loop_schedule = dg.build_schedule_from_partitioned_job(
    run_daily_loop_job, hour_of_day=5, default_status=dg.DefaultScheduleStatus.STOPPED
)

weekly_training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=train_propensity_model_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


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
