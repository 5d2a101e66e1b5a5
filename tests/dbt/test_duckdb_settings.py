"""dbt's DuckDB connection runs with the pipeline's memory limit, threads and spill folder, so
DuckDB's own default (80% of the machine's memory per process) cannot silently come back."""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.resources import PipelineSettings
from tests.dbt.conftest import TEST_SECRET, run_dbt
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
