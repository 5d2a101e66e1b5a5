import pytest

from orchestration.resources import mlflow_globals_restored


@pytest.fixture(autouse=True)
def _isolated_mlflow_uris():
    """Each test starts from the process's MLflow URI settings, whatever the last one set."""
    with mlflow_globals_restored():
        yield
