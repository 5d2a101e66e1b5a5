"""The dbt project handle, built on first use rather than at import."""

from functools import cache

from dagster_dbt import DbtProject

from orchestration.resources import DBT_PROJECT_DIR


@cache
def email_dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    # Parse on first use so the asset graph always matches the SQL on disk (a fresh clone
    # has no manifest; an edited project has a stale one). Partial parsing keeps this quick.
    project.preparer.prepare(project)
    return project
