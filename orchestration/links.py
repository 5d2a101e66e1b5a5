"""Links between the tools: MLflow pages as Dagster metadata URLs, the Dagster run and asset on
MLflow runs and versions, and key figures as one small table instead of loose entries."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import dagster as dg

from orchestration.reports import MLFLOW_UI_URL

# Tags on MLflow runs and registered versions that lead back to the code and the Dagster run.
GIT_COMMIT_TAG = "mlflow.source.git.commit"
DAGSTER_RUN_TAG = "dagster.run_id"
DAGSTER_ASSET_TAG = "dagster.asset_key"


def mlflow_run_url(experiment_id: str, run_id: str, base_url: str = MLFLOW_UI_URL) -> str:
    return f"{base_url}/#/experiments/{quote(str(experiment_id))}/runs/{quote(run_id)}"


def model_version_url(model_name: str, version: str | int, base_url: str = MLFLOW_UI_URL) -> str:
    return f"{base_url}/#/models/{quote(model_name)}/versions/{quote(str(version))}"


def mlflow_tags(context: dg.AssetExecutionContext, commit: str) -> dict[str, str]:
    """The git commit, the Dagster run id and the asset key, for an MLflow run or version.
    The older `code_version` tag stays, for what already reads it."""
    return {
        GIT_COMMIT_TAG: commit,
        "code_version": commit,
        DAGSTER_RUN_TAG: context.run_id,
        DAGSTER_ASSET_TAG: context.asset_key.to_user_string(),
    }


def key_figures_table(figures: Mapping[str, object]) -> dg.MetadataValue:
    """Figures (already rounded and formatted) as one two-column Markdown table."""
    rows = "\n".join(f"| {name} | {str(value).replace('|', '/')} |" for name, value in figures.items())
    return dg.MetadataValue.md(f"| figure | value |\n|---|---|\n{rows}")
