"""The dbt project handle, built on first use rather than at import."""

import json
import os
import shutil
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.resources import DBT_PROJECT_DIR


def _put_venv_dbt_on_path() -> None:
    # `python -m pytest` or a UI started by absolute path may run without the venv on PATH;
    # dagster-dbt looks dbt up on PATH, so use the dbt installed beside this interpreter.
    venv_bin = Path(sys.executable).parent
    if shutil.which("dbt") is None and (venv_bin / "dbt").exists():
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"


@cache
def email_dbt_project() -> DbtProject:
    _put_venv_dbt_on_path()
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    # Parse on first use so the asset graph always matches the SQL on disk (a fresh clone
    # has no manifest; an edited project has a stale one). Partial parsing keeps this quick.
    project.preparer.prepare(project)
    return project


# The vault holds PII: it is never read into pandas for Great Expectations.
VAULT_DATABASE = "pii"


def mart_relations(manifest_path: Path) -> dict[str, str]:
    """Every mart (a dbt model under models/marts/, outside the PII vault) by name, with the
    relation it is built as. Each one gets a Great Expectations suite named after it."""
    nodes = json.loads(Path(manifest_path).read_text())["nodes"]
    return {
        node["name"]: node["relation_name"]
        for node in sorted(nodes.values(), key=lambda node: node["name"])
        if node["resource_type"] == "model"
        and node["fqn"][1:2] == ["marts"]
        and node["database"] != VAULT_DATABASE
    }
