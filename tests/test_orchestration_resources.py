"""The settings resource resolves paths and hands dbt its settings as arguments."""

import os

import pandas as pd

from orchestration.resources import PipelineSettings


def test_state_paths_follow_the_configured_state_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPELINE_LANDING_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = PipelineSettings(state_dir=str(tmp_path))
    assert settings.user_landing_dir() is None
    assert settings.landing_path() == tmp_path / "landing"
    assert settings.warehouse_path() == tmp_path / "warehouse.duckdb"
    assert settings.pii_vault_path() == tmp_path / "pii_vault.duckdb"
    assert settings.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_a_user_landing_folder_and_remote_mlflow_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_LANDING_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    settings = PipelineSettings(state_dir=str(tmp_path))
    assert settings.user_landing_dir() == tmp_path / "exports"
    assert settings.tracking_uri() == "http://127.0.0.1:5000"


def test_as_of_is_the_export_time_of_the_landing_manifest(tmp_path):
    settings = PipelineSettings(state_dir=str(tmp_path))
    settings.landing_path().mkdir(parents=True)
    (settings.landing_path() / "_manifest.json").write_text('{"extracted_at": "2026-06-30T00:00:00"}')
    assert settings.as_of().isoformat() == "2026-06-30T00:00:00"


def test_dbt_gets_its_paths_as_vars_and_the_environment_is_left_alone(tmp_path, monkeypatch):
    # Exporting PIPELINE_LANDING_DIR would make later assets think the user brought their own data.
    monkeypatch.delenv("PIPELINE_LANDING_DIR", raising=False)
    environment_before = dict(os.environ)
    settings = PipelineSettings(state_dir=str(tmp_path))
    assert settings.dbt_vars() == {
        "landing_dir": str(tmp_path / "landing"),
        "warehouse_path": str(tmp_path / "warehouse.duckdb"),
        "pii_vault_path": str(tmp_path / "pii_vault.duckdb"),
        "as_of": settings.as_of().isoformat(sep=" "),
    }
    assert dict(os.environ) == environment_before
    assert settings.user_landing_dir() is None


def test_warehouse_replaces_tables_and_counts_rows(tmp_path):
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    assert warehouse.write_table(pd.DataFrame({"a": [1, 2, 3]}), "ml.example") == 3
    assert warehouse.write_table(pd.DataFrame({"a": [9]}), "ml.example") == 1
    assert warehouse.read_table("ml.example")["a"].tolist() == [9]


def test_the_mlflow_client_is_bound_to_the_state_store_without_touching_process_uris(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    process_uri = mlflow.get_tracking_uri()
    client = PipelineSettings(state_dir=str(tmp_path)).mlflow_client()
    assert client.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == process_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_the_dbt_manifest_is_current_until_a_project_file_changes(tmp_path):
    import time

    from orchestration.dbt_project import manifest_is_current

    project = tmp_path / "dbt_project"
    (project / "models").mkdir(parents=True)
    model = project / "models" / "a.sql"
    model.write_text("select 1")
    manifest = project / "target" / "manifest.json"
    assert not manifest_is_current(project, manifest)  # a fresh clone: parse
    manifest.parent.mkdir()
    time.sleep(0.01)
    manifest.write_text("{}")
    (project / "target" / "run_results.json").write_text("{}")  # dbt's own output does not count
    assert manifest_is_current(project, manifest)  # nothing changed since: no parse on load
    time.sleep(0.01)
    model.write_text("select 2")
    assert not manifest_is_current(project, manifest)  # an edited model: parse again
