"""One `dbt build` of the whole project on the tiny landing fixture, shared by the dbt tests.

Everything lives in a temporary folder (landing files, warehouse, PII vault, dbt target and
logs), so parallel runs do not clash and the repo's .state/ is never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult

from tests.fixtures.tiny_landing import write_tiny_landing

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
TEST_SECRET = "tests-dbt-not-a-real-secret"


@contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables for the duration of the block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class DbtBuild:
    """A finished dbt build on the tiny fixture and where its files are."""

    result: dbtRunnerResult
    work_dir: Path
    landing_dir: Path
    warehouse_path: Path
    vault_path: Path
    expected: dict

    @property
    def env(self) -> dict[str, str]:
        return {
            "PIPELINE_LANDING_DIR": str(self.landing_dir),
            "PIPELINE_WAREHOUSE_PATH": str(self.warehouse_path),
            "PIPELINE_PII_VAULT_PATH": str(self.vault_path),
            "SUBSCRIBER_KEY_SECRET": TEST_SECRET,
        }

    def invoke(self, *args: str) -> dbtRunnerResult:
        """Run a dbt command from the repo root against this build's files."""
        return invoke_dbt(self.env, self.work_dir, self.expected["extracted_at"], *args)

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


def invoke_dbt(env: dict[str, str | None], work_dir: Path, as_of: str, *args: str) -> dbtRunnerResult:
    """Invoke dbt in-process from the repo root, with target and logs under `work_dir`."""
    command, *rest = args
    cli_args = [
        command,
        *rest,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--vars",
        json.dumps({"as_of": as_of}),
        "--quiet",
    ]
    with patched_environ(env):
        return dbtRunner().invoke(cli_args)


@pytest.fixture(scope="session")
def dbt_build(tmp_path_factory: pytest.TempPathFactory) -> DbtBuild:
    """Write the tiny landing folder and run `dbt build` (models, data tests, unit tests) once."""
    work_dir = tmp_path_factory.mktemp("dbt_build")
    landing_dir = work_dir / "landing"
    expected = write_tiny_landing(landing_dir)
    env = {
        "PIPELINE_LANDING_DIR": str(landing_dir),
        "PIPELINE_WAREHOUSE_PATH": str(work_dir / "state" / "warehouse.duckdb"),
        "PIPELINE_PII_VAULT_PATH": str(work_dir / "state" / "pii_vault.duckdb"),
        "SUBSCRIBER_KEY_SECRET": TEST_SECRET,
    }
    result = invoke_dbt(env, work_dir, expected["extracted_at"], "build")
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
