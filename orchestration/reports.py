"""`make docs` and the reports index.

    python -m orchestration.reports          # dbt docs generate, then reports/index.html
    python -m orchestration.reports --index  # only the index (the demo summary does this)

The dbt docs are generated as one static page (`--static`: manifest and catalog inside, so it
opens from disk without a web server) into the state folder's dbt/docs. The index lists what
exists in the reports folder and the dbt docs, with links to the Dagster and MLflow UIs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ml.reports.index import collect_reports, write_reports_index
from orchestration.resources import DBT_PROJECT_DIR, PipelineSettings

# Where `make ui` serves the two UIs (orchestration/ui.py uses the same ports by default).
DAGSTER_UI_URL = "http://127.0.0.1:3000"
MLFLOW_UI_URL = "http://127.0.0.1:5000"
DBT_DOCS_PAGE = "static_index.html"


def dbt_docs_dir(settings: PipelineSettings) -> Path:
    return settings.state_path() / "dbt" / "docs"


def generate_dbt_docs(settings: PipelineSettings) -> Path:
    """`dbt docs generate --static` on this state's warehouse; the page's path."""
    dbt = shutil.which("dbt") or str(Path(sys.executable).parent / "dbt")
    if not Path(dbt).exists() and shutil.which("dbt") is None:
        raise FileNotFoundError(f"dbt is not installed beside {sys.executable} nor on PATH: run `make install`")
    if not settings.warehouse_path().exists():
        raise FileNotFoundError(
            f"no warehouse at {settings.warehouse_path()}: dbt docs need a built warehouse, run `make demo` first"
        )
    target = dbt_docs_dir(settings)
    command = [
        dbt, "docs", "generate", "--static",
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target), "--vars", json.dumps(settings.dbt_vars()),
    ]
    completed = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=os.environ.copy(), text=True,
                               capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}"
                           f"{completed.stderr[-2000:]}")
    return target / DBT_DOCS_PAGE


def write_index(settings: PipelineSettings) -> Path:
    """reports/index.html for this state: every report that exists, the dbt docs, the UIs."""
    reports = settings.reports_path()
    index = collect_reports(
        reports,
        dbt_docs=dbt_docs_dir(settings) / DBT_DOCS_PAGE,
        ui_links={"Dagster UI": DAGSTER_UI_URL, "MLflow UI": MLFLOW_UI_URL},
    )
    return write_reports_index(index, reports)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="dbt docs and the reports index of the state folder")
    parser.add_argument("--index", action="store_true", help="only write the reports index")
    args = parser.parse_args(argv)
    settings = PipelineSettings()
    if not args.index:
        print(f"dbt docs: {generate_dbt_docs(settings).as_uri()}")
    print(f"Reports index: {write_index(settings).as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
