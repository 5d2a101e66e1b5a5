"""One `dbt build` of the whole project on the tiny landing fixture, shared by the dbt tests.

Everything lives in a temporary folder (landing files, warehouse, PII vault, dbt target and
logs), so parallel runs do not clash and the repo's .state/ is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from ml.landing.categories import category_mapping_csv
from tests.fixtures.tiny_landing import write_tiny_landing

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
TEST_SECRET = "tests-dbt-not-a-real-secret"


DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"


@dataclass(frozen=True)
class DbtRun:
    """A finished dbt command: its exit code, its node results (run_results.json) and output."""

    success: bool
    results: list[dict]
    output: str


def dbt_vars(landing_dir: Path, state_dir: Path, as_of: str) -> dict[str, str]:
    """The vars that place a build's files, as the orchestration passes them, and its as_of
    (which the orchestration writes to ml.warehouse_as_of instead: see tests/dbt/test_as_of.py)."""
    return {
        "landing_dir": str(landing_dir),
        # The fixtures write their small Hillstrom sample beside the landing files; the
        # pipeline installs the verified copy in <state>/reference instead.
        "hillstrom_csv": str(landing_dir / "hillstrom.csv"),
        "warehouse_path": str(state_dir / "warehouse.duckdb"),
        "pii_vault_path": str(state_dir / "pii_vault.duckdb"),
        "category_mapping_csv": str(category_mapping_csv(landing_dir)),
        "duckdb_temp_directory": str(state_dir / "duckdb_spill"),
        # The fixtures quarantine a large share of their rows on purpose: no file is judged
        # systemically broken here but in tests/dbt/test_landing_verdict.py.
        "max_quarantine_share": 1.0,
        "as_of": as_of,
    }


def run_dbt(work_dir: Path, variables: dict[str, str], secret: str, *args: str) -> DbtRun:
    """Run dbt as a subprocess, as the orchestration does: settings as `--vars`, the secret in
    the child's environment only, target and logs under `work_dir`."""
    command, *rest = args
    completed = subprocess.run(
        [
            str(DBT_EXECUTABLE), command, *rest,
            "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(work_dir / "target"),
            "--log-path", str(work_dir / "logs"),
            "--vars", json.dumps(variables),
        ],
        env={**os.environ, "SUBSCRIBER_KEY_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=600,
    )
    run_results = work_dir / "target" / "run_results.json"
    results = json.loads(run_results.read_text())["results"] if run_results.exists() else []
    return DbtRun(completed.returncode == 0, results, completed.stdout + completed.stderr)


@dataclass
class DbtBuild:
    """A finished dbt build on the tiny fixture and where its files are."""

    result: DbtRun
    work_dir: Path
    landing_dir: Path
    warehouse_path: Path
    vault_path: Path
    expected: dict

    def invoke(self, *args: str) -> DbtRun:
        """Run a dbt command against this build's files."""
        variables = dbt_vars(self.landing_dir, self.warehouse_path.parent, self.expected["extracted_at"])
        return run_dbt(self.work_dir, variables, TEST_SECRET, *args)

    @contextmanager
    def connect(self, attach_vault: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the warehouse (with the vault attached as `pii` if asked)."""
        conn = duckdb.connect(str(self.warehouse_path), read_only=True)
        try:
            if attach_vault:
                conn.execute(f"ATTACH '{self.vault_path}' AS pii (READ_ONLY)")
            yield conn
        finally:
            conn.close()


@pytest.fixture(scope="session")
def dbt_build(tmp_path_factory: pytest.TempPathFactory) -> DbtBuild:
    """Write the tiny landing folder and run `dbt build` (models, data tests, unit tests) once."""
    work_dir = tmp_path_factory.mktemp("dbt_build")
    landing_dir = work_dir / "landing"
    expected = write_tiny_landing(landing_dir)
    variables = dbt_vars(landing_dir, work_dir / "state", expected["extracted_at"])
    result = run_dbt(work_dir, variables, TEST_SECRET, "build")
    return DbtBuild(
        result=result,
        work_dir=work_dir,
        landing_dir=landing_dir,
        warehouse_path=work_dir / "state" / "warehouse.duckdb",
        vault_path=work_dir / "state" / "pii_vault.duckdb",
        expected=expected,
    )


@pytest.fixture(scope="session")
def compiled_project(tmp_path_factory: pytest.TempPathFactory):
    """The project's compiled SQL, replayable in memory on any landing set (tests/dbt/compiled_sql.py)."""
    from tests.dbt.compiled_sql import compile_project
    from tests.dbt.landing_builder import EXTRACTED_AT

    work_dir = tmp_path_factory.mktemp("dbt_compiled")
    return compile_project(work_dir, work_dir / "landing", EXTRACTED_AT, TEST_SECRET)
