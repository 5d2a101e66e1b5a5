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


# Files whose change changes the manifest.
_PROJECT_FILE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py"}


def manifest_is_current(project_dir: Path, manifest_path: Path) -> bool:
    """True when the manifest exists and is newer than every file of the dbt project."""
    if not manifest_path.exists():
        return False
    built_at = manifest_path.stat().st_mtime
    target = manifest_path.parent.resolve()
    for path in Path(project_dir).rglob("*"):
        if path.suffix in _PROJECT_FILE_SUFFIXES and path.is_file() and target not in path.resolve().parents:
            if "logs" in path.relative_to(project_dir).parts:
                continue
            if path.stat().st_mtime > built_at:
                return False
    return True


@cache
def email_dbt_project() -> DbtProject:
    _put_venv_dbt_on_path()
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    # Loading the definitions parses only when it must: a fresh clone has no manifest, an
    # edited project a stale one. Otherwise every UI reload and run would pay for a parse.
    if not manifest_is_current(DBT_PROJECT_DIR, project.manifest_path):
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
