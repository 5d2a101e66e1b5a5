import pytest

from orchestration.resources import mlflow_globals_restored


@pytest.fixture(scope="module", autouse=True)
def _isolated_mlflow_uris():
    """Each test module starts from the process's MLflow URIs, whatever the last one set.

    Module scope, so it also wraps the module-scoped fixtures that train models.
    """
    with mlflow_globals_restored():
        yield
