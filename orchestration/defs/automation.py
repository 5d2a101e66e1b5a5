"""One job that materialises the whole pipeline, run daily."""

import dagster as dg

refresh_email_pipeline_job = dg.define_asset_job(
    name="refresh_email_pipeline_job",
    selection=dg.AssetSelection.all(),
    description="Landing → dbt warehouse → quality checks → model → scores → campaign → report.",
    # dagster.yaml (orchestration/dagster.yaml) queues runs with this tag one at a time: one
    # Dagster home per state folder, so one run per warehouse. The run lock backs this up
    # for runs started outside the queue (`dagster job execute`).
    tags={"email_pipeline/warehouse": "state"},
)

daily_refresh_schedule = dg.ScheduleDefinition(
    name="daily_refresh_schedule",
    job=refresh_email_pipeline_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
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
