"""MLflow through an explicit client: where runs, artifacts and registered models go.

ml/ never reads environment variables and never touches MLflow's process-wide state
(setting the fluent API's tracking URI also writes MLFLOW_TRACKING_URI into the environment, so one run's
store would become the next run's "user setting"). The orchestration builds an
`MlflowClient` for the store it chose and passes it in an `MlflowTarget`; every call here
goes through that client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Dataset

# The MLflow UI opens an experiment on the page its kind names: model training runs, not the
# GenAI traces page it guesses for an experiment without this tag (MLflow 3's UI).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_EXPERIMENT_KIND = "custom_model_development"


@dataclass(frozen=True)
class MlflowTarget:
    """Where runs, artifacts and registered models go.

    client: an ``MlflowClient`` bound to the tracking store and model registry.
    artifact_location: folder or ``file://`` URI for the experiment's artifacts; only used
        when the experiment is created (MLflow fixes it per experiment).
    experiment_name: created on first use.
    """

    client: MlflowClient
    artifact_location: str | Path | None
    experiment_name: str


def artifact_location_uri(location: str | Path) -> str:
    """Turn a plain folder into an absolute ``file://`` URI; URIs with a scheme pass through."""
    text = str(location)
    if urlparse(text).scheme and not Path(text).drive:
        return text
    return Path(text).resolve().as_uri()


def ensure_experiment(target: MlflowTarget) -> str:
    """The id of the target's experiment, created on first use."""
    from mlflow.exceptions import MlflowException

    client = target.client
    experiment = client.get_experiment_by_name(target.experiment_name)
    if experiment is None:
        location = None if target.artifact_location is None else artifact_location_uri(target.artifact_location)
        try:
            return client.create_experiment(
                target.experiment_name, artifact_location=location,
                tags={EXPERIMENT_KIND_TAG: TRAINING_EXPERIMENT_KIND},
            )
        except MlflowException:
            # Another process may have created it between the lookup and the create.
            experiment = client.get_experiment_by_name(target.experiment_name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"MLflow experiment {target.experiment_name!r} is deleted; restore it or use another name"
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != TRAINING_EXPERIMENT_KIND:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT_KIND)
    return experiment.experiment_id


# The experiment MLflow's SQL store creates in every new database (id 0, "Default"): runs
# started without an experiment land there. The pipeline names an experiment for every run.
DEFAULT_EXPERIMENT_ID = "0"


def retire_empty_default_experiment(client: MlflowClient) -> bool:
    """Soft-delete MLflow's "Default" experiment when it holds no run, so the UI lists only
    the pipeline's experiments; True when it was deleted now.

    It cannot be avoided: MLflow 3's SQLAlchemyStore inserts experiment 0 whenever it opens a
    database that lacks it (`_create_default_experiment`, run by its constructor), so every
    client and `mlflow server` recreates a removed one. A deleted experiment still exists, so
    it is not recreated, and the UI hides it (it stays under "deleted" and can be restored).
    One with runs is left alone."""
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    try:
        default = client.get_experiment(DEFAULT_EXPERIMENT_ID)
    except MlflowException:
        return False  # a store without one (not the SQL store)
    if default.lifecycle_stage != "active":
        return False
    if client.search_runs([DEFAULT_EXPERIMENT_ID], run_view_type=ViewType.ALL, max_results=1):
        return False
    client.delete_experiment(DEFAULT_EXPERIMENT_ID)
    return True


def ensure_registered_model(client: MlflowClient, name: str, description: str | None = None) -> None:
    """Create the registered model unless it exists."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=description)
        except MlflowException:
            client.get_registered_model(name)  # created meanwhile by another process, or a real error


def model_version_uri(model_name: str, version: str | int) -> str:
    """``models:/<name>/<version>``: an immutable reference to one registered version."""
    return f"models:/{model_name}/{version}"


def parse_model_uri(model_uri: str) -> tuple[str, str, bool]:
    """(name, version or alias, is_alias) of ``models:/<name>/<version>`` or ``models:/<name>@<alias>``."""
    prefix = "models:/"
    if not model_uri.startswith(prefix):
        raise ValueError(f"expected a registered model URI like 'models:/<name>/<version>', got {model_uri!r}")
    rest = model_uri[len(prefix) :]
    is_alias = "@" in rest
    if is_alias:
        name, reference = rest.split("@", 1)
    else:
        name, _, reference = rest.rpartition("/")
    if not name or not reference:
        raise ValueError(f"no model version or alias in {model_uri!r}")
    return name, reference, is_alias


def resolve_alias(client: MlflowClient, model_name: str, alias: str) -> str:
    """The version number (as a string) that ``alias`` currently points to."""
    return str(client.get_model_version_by_alias(model_name, alias).version)


def download_model_version(client: MlflowClient, model_uri: str) -> str:
    """Download a registered version (by number or alias) to a local folder; return its path."""
    import mlflow.artifacts

    name, reference, is_alias = parse_model_uri(model_uri)
    version = resolve_alias(client, name, reference) if is_alias else reference
    return mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(name, version),
        tracking_uri=client.tracking_uri,
    )


def load_run_dict(client: MlflowClient, run_id: str, artifact_path: str) -> dict:
    """A JSON artefact of a run (e.g. feature_importance.json), read through the client."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        local = client.download_artifacts(run_id, artifact_path, folder)
        return json.loads(Path(local).read_text())


def pandas_dataset_entity(frame: "pd.DataFrame", *, name: str, source: Any, targets: str | None = None) -> "Dataset":
    """The MLflow dataset record of `frame` (name, digest, source, schema, profile): what
    ``Dataset(**mlflow.data.from_pandas(frame, ...).to_dict())`` gives, without its two
    per-cell Python passes. MLflow decides whether each column is required by testing every
    cell in Python, and its digest, which hashes the first MAX_ROWS rows, first maps ``type``
    over every cell of the whole frame to find the string columns: 15 of the 51 s of training
    one model at 100,000 people. Here the types come from the first rows (a numeric column's
    from its dtype), required-ness from a vectorised null test, and the digest from the rows it
    hashes (the same digest whenever a column that is text in those rows is text throughout)."""
    import json

    import mlflow.data
    import numpy as np
    import pandas as pd
    from mlflow.data.dataset import Dataset as MlflowDataset
    from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest
    from mlflow.entities import Dataset
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    # mlflow.data.digest_utils.compute_pandas_digest's recipe (tests/ml/test_tracking_datasets.py
    # proves the digests equal): the first MAX_ROWS rows' text and number columns, the row count
    # and the column names.
    hashed = frame.head(MAX_ROWS)
    text_columns = hashed.columns[(hashed.map(type) == str).all(0)]
    hashed = hashed[text_columns.union(hashed.select_dtypes(include=[np.number]).columns)]
    digest = get_normalized_md5_digest(
        [pd.util.hash_pandas_object(hashed).values, np.int64(len(frame))] + [str(c).encode() for c in frame.columns]
    )
    dataset = mlflow.data.from_pandas(frame, source=source, name=name, targets=targets, digest=digest)
    has_nulls = frame.isna().any()
    schema = Schema([
        ColSpec(spec.type, spec.name, required=not bool(has_nulls[spec.name]))
        for spec in infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs.inputs
    ])
    return Dataset(
        **MlflowDataset.to_dict(dataset),  # name, digest, source and its type: no pass over the cells
        schema=json.dumps({"mlflow_colspec": schema.to_dict()}),
        profile=json.dumps(dataset.profile),
    )


# Rows that pandas_dataset_entity infers column types from (numeric columns need none).
SCHEMA_SAMPLE_ROWS = 100
