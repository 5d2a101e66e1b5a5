"""dbt's DuckDB connection runs with the pipeline's memory limit, threads and spill folder, so
DuckDB's own default (80% of the machine's memory per process) cannot silently come back."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestration.resources import PipelineSettings
from tests.dbt.conftest import DBT_PROJECT_DIR, TEST_SECRET, run_dbt
from tests.ml.test_duckdb_settings import expected


def test_dbt_connects_with_the_settings_the_pipeline_passes(tmp_path: Path) -> None:
    settings = PipelineSettings(state_dir=str(tmp_path / "state"), duckdb_memory_limit="345MB", duckdb_threads=1)
    ran = run_dbt(tmp_path, settings.dbt_vars(), TEST_SECRET, "run-operation", "duckdb_settings_in_use")
    assert ran.success, ran.output
    (line,) = [line for line in ran.output.splitlines() if line.startswith("duckdb_settings_in_use ")]
    found = json.loads(line.removeprefix("duckdb_settings_in_use "))
    limit, threads, spill = expected(settings.duckdb_settings())
    assert found == {"memory_limit": limit, "threads": str(threads), "temp_directory": spill}
    assert spill == str(tmp_path / "state" / "duckdb_spill")


def test_dbt_duckdbs_per_cursor_settings_survive_a_spill(tmp_path: Path) -> None:
    """dbt-duckdb SETs a profile's `settings` again on every node's cursor, and DuckDB refuses
    to switch temp_directory once it has spilled ("Cannot switch temporary directory", seen at
    100,000 people and a 1GB limit): the limits must be `config_options`, given once."""
    import duckdb
    import yaml
    from dbt.adapters.duckdb.environments import Environment

    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["email_pipeline"]["outputs"]["dev"]
    assert {"memory_limit", "threads", "temp_directory"} <= set(profile["config_options"])
    connection = duckdb.connect(str(tmp_path / "w.duckdb"), config={
        "memory_limit": "40MB", "threads": "1", "temp_directory": str(tmp_path / "spill")})
    connection.execute("select count(distinct md5(range::varchar)) from range(3000000)")  # spills
    assert (tmp_path / "spill").is_dir()
    # What dbt-duckdb does for each node, with the profile's per-cursor settings.
    per_cursor = {key: str(value) for key, value in profile["settings"].items()}
    Environment.initialize_cursor(SimpleNamespace(settings=per_cursor, retries=None), connection.cursor())
    # and what it would do with the spill folder among them:
    with pytest.raises(duckdb.NotImplementedException, match="temporary directory"):
        Environment.initialize_cursor(
            SimpleNamespace(settings={"temp_directory": str(tmp_path / "spill")}, retries=None), connection.cursor())
    connection.close()
