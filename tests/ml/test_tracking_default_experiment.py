"""MLflow's "Default" experiment, which its SQL store creates with every database, is retired
when empty, stays retired, and is left alone when something ran in it."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import ViewType

from ml.tracking import DEFAULT_EXPERIMENT_ID, retire_empty_default_experiment


def _client(tmp_path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_an_empty_default_experiment_is_deleted_once_and_not_recreated(tmp_path):
    client = _client(tmp_path)
    client.create_experiment("training", artifact_location=(tmp_path / "artifacts").as_uri())
    assert {e.name for e in client.search_experiments()} == {"Default", "training"}
    assert retire_empty_default_experiment(client) is True
    assert retire_empty_default_experiment(client) is False
    # A new client (and store) on the same database finds it deleted and leaves it so.
    again = _client(tmp_path)
    assert [e.name for e in again.search_experiments()] == ["training"]
    assert again.get_experiment(DEFAULT_EXPERIMENT_ID).lifecycle_stage == "deleted"
    assert {e.name for e in again.search_experiments(view_type=ViewType.ALL)} == {"Default", "training"}


def test_a_default_experiment_with_a_run_is_left_alone(tmp_path):
    client = _client(tmp_path)
    client.set_terminated(client.create_run(DEFAULT_EXPERIMENT_ID).info.run_id)
    assert retire_empty_default_experiment(client) is False
    assert client.get_experiment(DEFAULT_EXPERIMENT_ID).lifecycle_stage == "active"
