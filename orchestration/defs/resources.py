"""Binds the shared resources and the executor for every stage."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import email_dbt_project
from orchestration.resources import PipelineSettings


@dg.definitions
def resources() -> dg.Definitions:
    settings = PipelineSettings()
    return dg.Definitions(
        resources={
            "settings": settings,
            "dbt": DbtCliResource(project_dir=email_dbt_project()),
        },
        # One DuckDB file is written by several stages: run them one after another.
        executor=dg.in_process_executor,
    )
