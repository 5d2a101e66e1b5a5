"""One job that materialises the whole pipeline, run daily."""

import dagster as dg

refresh_email_pipeline_job = dg.define_asset_job(
    name="refresh_email_pipeline_job",
    selection=dg.AssetSelection.all(),
    description="Landing → dbt warehouse → quality checks → model → scores → campaign → report.",
)

daily_refresh_schedule = dg.ScheduleDefinition(
    name="daily_refresh_schedule",
    job=refresh_email_pipeline_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
