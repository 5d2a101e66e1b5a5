"""Pointing MLflow at an explicit tracking store and model registry.

ml/ never reads environment variables: the orchestration decides where MLflow lives and
passes an `MlflowTarget`. Every function here sets or uses that target explicitly, so a
stray ``MLFLOW_TRACKING_URI`` in the shell cannot redirect a run somewhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# Alias a freshly trained version gets; promotion to another alias is a separate, reviewed step.
CANDIDATE_ALIAS = "candidate"


@dataclass(frozen=True)
class MlflowTarget:
    """Where runs, artifacts and registered models go.

    tracking_uri: e.g. ``sqlite:////abs/path/mlflow.db``; also used as the registry URI.
    artifact_location: folder or ``file://`` URI for the experiment's artifacts; only used
        when the experiment is created (MLflow fixes it per experiment).
    experiment_name: created on first use.
    """

    tracking_uri: str
    artifact_location: str | Path | None
    experiment_name: str


def sqlite_target(state_dir: Path, experiment_name: str) -> MlflowTarget:
    """A local target: ``<state_dir>/mlflow.db`` plus ``<state_dir>/mlartifacts``."""
    state_dir = Path(state_dir).resolve()
    return MlflowTarget(
        tracking_uri=f"sqlite:///{state_dir / 'mlflow.db'}",
        artifact_location=(state_dir / "mlartifacts").as_uri(),
        experiment_name=experiment_name,
    )


def artifact_location_uri(location: str | Path) -> str:
    """Turn a plain folder into an absolute ``file://`` URI; URIs with a scheme pass through."""
    text = str(location)
    if urlparse(text).scheme and not Path(text).drive:
        return text
    return Path(text).resolve().as_uri()


def use_tracking_uri(tracking_uri: str) -> None:
    """Point the fluent MLflow API (runs and registry) at ``tracking_uri``."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def activate(target: MlflowTarget) -> str:
    """Point MLflow at ``target``, create the experiment if needed; return its id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    use_tracking_uri(target.tracking_uri)
    experiment = mlflow.get_experiment_by_name(target.experiment_name)
    if experiment is None:
        location = None if target.artifact_location is None else artifact_location_uri(target.artifact_location)
        try:
            return mlflow.create_experiment(target.experiment_name, artifact_location=location)
        except MlflowException:
            # Another process may have created it between the lookup and the create.
            experiment = mlflow.get_experiment_by_name(target.experiment_name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"MLflow experiment {target.experiment_name!r} is deleted; restore it or use another name"
        )
    return experiment.experiment_id


def client_for(tracking_uri: str):
    """An ``MlflowClient`` bound to ``tracking_uri`` for both tracking and registry."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def model_version_uri(model_name: str, version: str | int) -> str:
    """``models:/<name>/<version>``: an immutable reference to one registered version."""
    return f"models:/{model_name}/{version}"


def parse_model_name(model_uri: str) -> str:
    """The registered model name in ``models:/<name>/<version>`` or ``models:/<name>@<alias>``."""
    prefix = "models:/"
    if not model_uri.startswith(prefix):
        raise ValueError(f"expected a registered model URI like 'models:/<name>/<version>', got {model_uri!r}")
    rest = model_uri[len(prefix) :]
    if "@" in rest:
        name, reference = rest.split("@", 1)
    else:
        name, _, reference = rest.rpartition("/")
    if not name or not reference:
        raise ValueError(f"no model version or alias in {model_uri!r}")
    return name


def resolve_alias(model_name: str, alias: str, *, tracking_uri: str) -> str:
    """The version number (as a string) that ``alias`` currently points to."""
    return str(client_for(tracking_uri).get_model_version_by_alias(model_name, alias).version)
