"""Run the project's compiled dbt SQL in an in-memory DuckDB, in milliseconds per landing set.

`dbt build` costs seconds of process start, parsing and tests, far too much for a
property-based test that tries hundreds of landing folders. This harness compiles the
project once (the real models, macros and vars), then replays the compiled SQL of the
models a test asks about, in dependency order, against whatever landing files are in the
compiled landing folder at the time. The SQL is dbt's own output: nothing is re-implemented.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


def _plugin_module():
    spec = importlib.util.spec_from_file_location(
        "subscriber_key_udf_for_tests", DBT_PROJECT_DIR / "plugins" / "subscriber_key_udf.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class CompiledProject:
    """The compiled models of the project, bound to one landing folder and one as_of."""

    landing_dir: Path
    as_of: str
    secret: str
    nodes: dict[str, dict] = field(repr=False)
    # Singular data tests (dbt_project/tests/*.sql) by name: their compiled SQL returns failing rows.
    singular_tests: dict[str, str] = field(default_factory=dict, repr=False)

    def unique_id(self, model: str) -> str:
        return f"model.email_pipeline.{model}"

    def ancestors(self, models: Iterable[str]) -> list[str]:
        """Unique ids of the models and seeds needed for `models`, in dependency order. The
        landing verdict (int_landing_files_judged) is left out with its own parents: it is
        Python run by dbt, not SQL, and its dependants only wait for it (a `depends_on`
        line), they do not read it."""
        ordered: list[str] = []
        seen: set[str] = set()

        def visit(unique_id: str) -> None:
            if unique_id in seen or unique_id not in self.nodes:
                return
            if self.nodes[unique_id].get("language") == "python":
                return  # the landing verdict: not SQL, and its dependants do not read it (see run)
            seen.add(unique_id)
            for parent in self.nodes[unique_id].get("depends_on", {}).get("nodes", []):  # seeds have none
                visit(parent)
            ordered.append(unique_id)

        for model in models:
            visit(self.unique_id(model))
        return ordered

    def run(self, models: Iterable[str]) -> duckdb.DuckDBPyConnection:
        """Build `models` and their ancestors from the current landing files; return the connection."""
        connection = duckdb.connect()
        connection.execute("set TimeZone = 'UTC'")
        for database in sorted({node["database"] for node in self.nodes.values()}):
            connection.execute(f"attach ':memory:' as \"{database}\"")
        _plugin_module().register_subscriber_key_function(connection, self.secret)
        # Unqualified names (`marts.x`) resolve in the warehouse, as they do in the pipeline.
        warehouse = next(n["database"] for n in self.nodes.values() if n["database"] != "pii")
        connection.execute(f'use "{warehouse}"')
        for unique_id in self.ancestors(models):
            node = self.nodes[unique_id]
            connection.execute(f'create schema if not exists "{node["database"]}"."{node["schema"]}"')
            if node["resource_type"] == "seed":
                self._load_seed(connection, node)
                continue
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            connection.execute(f"create or replace {kind} {node['relation_name']} as {node['compiled_code']}")
        return connection

    @staticmethod
    def _load_seed(connection: duckdb.DuckDBPyConnection, node: dict) -> None:
        path = DBT_PROJECT_DIR / node["original_file_path"]
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        types = node["config"].get("column_types", {})
        columns = ", ".join(f'"{name}" {types.get(name, "varchar")}' for name in rows[0])
        connection.execute(f"create or replace table {node['relation_name']} ({columns})")
        placeholders = ", ".join("?" for _ in rows[0])
        connection.executemany(
            f"insert into {node['relation_name']} values ({placeholders})", [list(row.values()) for row in rows]
        )


def compile_project(work_dir: Path, landing_dir: Path, as_of: str, secret: str) -> CompiledProject:
    """`dbt compile` the whole project against `landing_dir` (files need not exist yet)."""
    from tests.dbt.conftest import dbt_vars, run_dbt

    run = run_dbt(work_dir, dbt_vars(landing_dir, work_dir, as_of), secret, "compile", "--quiet", "--no-introspect")
    if not run.success:
        raise RuntimeError(f"dbt compile failed: {run.output}")
    manifest = json.loads((work_dir / "target" / "manifest.json").read_text())
    nodes = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }
    singular_tests = {
        node["name"]: node["compiled_code"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and node["original_file_path"].startswith("tests/")
    }
    return CompiledProject(
        landing_dir=landing_dir, as_of=as_of, secret=secret, nodes=nodes, singular_tests=singular_tests
    )
