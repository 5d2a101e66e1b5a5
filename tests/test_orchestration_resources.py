"""The settings resource resolves paths and hands dbt its environment without leaking it."""

import os

import pandas as pd

from orchestration.defs.warehouse import _environment
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


def test_dbt_environment_is_restored_after_the_build(tmp_path, monkeypatch):
    # Leaking PIPELINE_LANDING_DIR would make later assets think the user brought their own data.
    monkeypatch.delenv("PIPELINE_LANDING_DIR", raising=False)
    settings = PipelineSettings(state_dir=str(tmp_path))
    with _environment(settings.dbt_env()):
        assert os.environ["PIPELINE_LANDING_DIR"] == str(tmp_path / "landing")
    assert "PIPELINE_LANDING_DIR" not in os.environ
    assert settings.user_landing_dir() is None


def test_warehouse_replaces_tables_and_counts_rows(tmp_path):
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    assert warehouse.write_table(pd.DataFrame({"a": [1, 2, 3]}), "ml.example") == 3
    assert warehouse.write_table(pd.DataFrame({"a": [9]}), "ml.example") == 1
    assert warehouse.read_table("ml.example")["a"].tolist() == [9]


def test_a_training_run_does_not_become_the_next_runs_mlflow_setting(tmp_path, monkeypatch):
    import mlflow

    from orchestration.resources import mlflow_globals_restored

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = PipelineSettings(state_dir=str(tmp_path / "next"))
    with mlflow_globals_restored():
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}")  # what training does
        assert "MLFLOW_TRACKING_URI" in os.environ
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert settings.tracking_uri() == f"sqlite:///{tmp_path / 'next' / 'mlflow' / 'mlflow.db'}"
