"""Purchase-propensity model: LightGBM trained on `marts.training_examples`, tracked in MLflow.

The split is by time: the most recent cutoff(s) are the held-out test set, and training
examples whose label window reaches into the test period are purged, so the test score is
what a model trained up to a date would have achieved afterwards. The model is logged in
LightGBM's own text format (no pickle), registered, and given the alias ``candidate``;
promoting it further is a separate decision.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.propensity.features import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    ID_COLUMNS,
    LABEL_COLUMNS,
    NUMERIC_FEATURES,
    PRODUCT_CATEGORIES,
    PURCHASE_LABEL,
)
from ml.tracking import CANDIDATE_ALIAS, MlflowTarget, ensure_experiment, ensure_registered_model, model_version_uri

if TYPE_CHECKING:
    import lightgbm

# `top_category` levels in a fixed order, so training and scoring encode identically.
TOP_CATEGORY_LEVELS = PRODUCT_CATEGORIES + ("none",)

# Days after the cutoff that each label looks at (the number in its name).
LABEL_WINDOW_DAYS = {"label_purchase_14d": 14, "label_click_7d": 7, "label_churn_60d": 60}

DEFAULT_MODEL_NAME = "subscriber_purchase_propensity"

# How many of the most important features also get a metric of their own.
TOP_FEATURE_METRICS = 10


@dataclass(frozen=True)
class PropensityParams:
    """LightGBM settings. Defaults train ~120k rows x 25 features in seconds on 2 cores."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 100
    colsample_bytree: float = 0.9
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 20
    # Share of training subscribers (all their cutoffs) held back to pick the number of trees.
    validation_fraction: float = 0.2
    seed: int = 0
    n_jobs: int = 2

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError("n_estimators must be at least 1")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be between 0 and 1")
        if self.early_stopping_rounds < 1:
            raise ValueError("early_stopping_rounds must be at least 1")

    def classifier_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `lightgbm.LGBMClassifier`, fixed for reproducible fits."""
        return {
            "objective": "binary",
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "random_state": self.seed,
            "n_jobs": self.n_jobs,
            # Same data + same seed -> same trees, on any run.
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced and where MLflow keeps it."""

    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str
    metrics: dict[str, float]
    feature_columns: tuple[str, ...]
    n_train: int
    n_test: int
    trained_at: datetime
    # The fitted in-memory model (its booster is what was logged); not part of equality.
    model: Any = field(default=None, repr=False, compare=False)


def feature_list_hash(columns: tuple[str, ...] | list[str] = FEATURE_COLUMNS) -> str:
    """Short SHA-256 of the ordered feature names: equal hashes mean compatible inputs."""
    return hashlib.sha256("\n".join(columns).encode("utf-8")).hexdigest()[:16]


def prepare_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model input: exactly FEATURE_COLUMNS in order, all float64.

    `top_category` becomes its position in TOP_CATEGORY_LEVELS (a fixed code, NaN when null;
    an unknown value is an error), and LightGBM is told the column is categorical. Codes
    rather than a pandas Categorical because MLflow signatures and JSON serving inputs have
    no categorical type: with codes the registered model also works through pyfunc.
    """
    missing = [column for column in FEATURE_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"feature frame lacks columns {missing}")
    prepared = pd.DataFrame(index=frame.index)
    for column in NUMERIC_FEATURES:
        try:
            prepared[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        except (TypeError, ValueError) as error:
            raise ValueError(f"feature {column!r} is not numeric: {error}") from error
    for column in CATEGORICAL_FEATURES:
        values = frame[column].astype("object")
        unknown = sorted({str(v) for v in values.dropna().unique()} - set(TOP_CATEGORY_LEVELS))
        if unknown:
            raise ValueError(f"feature {column!r} has unknown values {unknown}; expected {list(TOP_CATEGORY_LEVELS)}")
        codes = pd.Categorical(values, categories=list(TOP_CATEGORY_LEVELS)).codes
        prepared[column] = np.where(codes >= 0, codes, np.nan).astype("float64")
    return prepared[list(FEATURE_COLUMNS)]


def time_split(examples: pd.DataFrame, test_cutoffs: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the latest ``test_cutoffs`` cutoff dates are test, earlier ones train."""
    if test_cutoffs < 1:
        raise ValueError("test_cutoffs must be at least 1")
    if "cutoff_at" not in examples.columns:
        raise ValueError("examples lack column 'cutoff_at'")
    cutoff_at = pd.to_datetime(examples["cutoff_at"])
    cutoffs = np.sort(cutoff_at.dropna().unique())
    if len(cutoffs) < 2 or len(cutoffs) <= test_cutoffs:
        raise ValueError(
            f"need more cutoff dates than test_cutoffs={test_cutoffs} (and at least 2); got {len(cutoffs)}"
        )
    if cutoff_at.isna().any():
        raise ValueError("examples have rows without cutoff_at")
    is_test = cutoff_at >= cutoffs[-test_cutoffs]
    return examples.loc[~is_test].copy(), examples.loc[is_test].copy()


def purge_overlapping_labels(
    train: pd.DataFrame, first_test_cutoff: pd.Timestamp, label_window_days: int
) -> pd.DataFrame:
    """Drop training rows whose label window ends after the first test cutoff, so no outcome
    event counts both in a training label and in the test period."""
    window_end = pd.to_datetime(train["cutoff_at"]) + pd.Timedelta(days=label_window_days)
    return train.loc[window_end <= pd.Timestamp(first_test_cutoff)]


def validation_mask(subscriber_keys: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """True for rows of a seeded random ``fraction`` of subscribers (all their cutoffs), so a
    subscriber is never on both sides of the early-stopping split."""
    unique_keys = np.sort(subscriber_keys.astype(str).unique())
    if len(unique_keys) < 2:
        raise ValueError("need at least 2 training subscribers to hold some back for validation")
    n_validation = min(max(1, round(fraction * len(unique_keys))), len(unique_keys) - 1)
    chosen = np.random.default_rng(seed).choice(unique_keys, size=n_validation, replace=False)
    return subscriber_keys.astype(str).isin(chosen).to_numpy()


def _labels(frame: pd.DataFrame, label: str) -> pd.Series:
    values = pd.to_numeric(frame[label], errors="raise")
    if not values.isin([0, 1]).all():
        raise ValueError(f"label {label!r} must be 0/1")
    return values.astype("int64")


def evaluate_propensity(labels: np.ndarray, scores: np.ndarray, prefix: str = "test") -> dict[str, float]:
    """AUC, PR-AUC (average precision), log loss, base rate and top-decile lift of ``scores``."""
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype="float64")
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{prefix} set has a single label class; AUC is undefined")
    base_rate = float(labels.mean())
    top_n = max(1, int(np.ceil(len(scores) / 10)))
    # Stable sort so ties resolve the same way on every run.
    top = np.argsort(-scores, kind="stable")[:top_n]
    return {
        f"{prefix}_auc": float(roc_auc_score(labels, scores)),
        f"{prefix}_pr_auc": float(average_precision_score(labels, scores)),
        f"{prefix}_log_loss": float(log_loss(labels, scores, labels=[0, 1])),
        f"{prefix}_base_rate": base_rate,
        f"{prefix}_top_decile_lift": float(labels[top].mean() / base_rate),
    }


def gain_importance(model: lightgbm.LGBMClassifier) -> pd.DataFrame:
    """Per-feature total gain and its share, most important first."""
    booster = model.booster_
    gain = booster.feature_importance(importance_type="gain", iteration=booster.best_iteration or None)
    table = pd.DataFrame({"feature": booster.feature_name(), "gain": gain.astype("float64")})
    total = table["gain"].sum()
    table["gain_share"] = table["gain"] / total if total > 0 else 0.0
    return table.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def fit_propensity_model(
    train: pd.DataFrame, *, label: str = PURCHASE_LABEL, params: PropensityParams | None = None
) -> tuple[lightgbm.LGBMClassifier, dict[str, int]]:
    """Fit LightGBM on ``train`` with early stopping on a held-back slice of its subscribers.

    Returns the model and row counts (``n_fit``, ``n_validation``)."""
    import lightgbm

    params = params or PropensityParams()
    mask = validation_mask(train["subscriber_key"], params.validation_fraction, params.seed)
    features = prepare_features(train)
    labels = _labels(train, label)
    fit_x, fit_y = features.loc[~mask], labels.loc[~mask]
    if fit_y.nunique() < 2:
        raise ValueError(f"training rows have a single {label!r} class; nothing to learn")
    model = lightgbm.LGBMClassifier(**params.classifier_kwargs())
    model.fit(
        fit_x,
        fit_y,
        eval_X=(features.loc[mask],),
        eval_y=(labels.loc[mask],),
        eval_metric="binary_logloss",
        categorical_feature=list(CATEGORICAL_FEATURES),
        callbacks=[lightgbm.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    return model, {"n_fit": int((~mask).sum()), "n_validation": int(mask.sum())}


def train_propensity_model(
    examples: pd.DataFrame,
    *,
    label: str = PURCHASE_LABEL,
    params: PropensityParams | None = None,
    tracking: MlflowTarget,
    dataset_name: str,
    dataset_source: str,
    registered_model_name: str = DEFAULT_MODEL_NAME,
    test_cutoffs: int = 1,
) -> TrainingResult:
    """Train, evaluate on the latest cutoff(s), log to MLflow, register, alias ``candidate``.

    ``examples`` is `marts.training_examples`; ``dataset_source`` says where it came from
    (e.g. the warehouse path and table) and is recorded with the logged datasets, which hold
    features and label only, never subscriber keys.
    """
    import mlflow.data
    import mlflow.lightgbm
    from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, Metric, Param
    from mlflow.models import infer_signature

    if label not in LABEL_COLUMNS:
        raise ValueError(f"unknown label {label!r}; expected one of {list(LABEL_COLUMNS)}")
    missing = [c for c in (*ID_COLUMNS, label) if c not in examples.columns]
    if missing:
        raise ValueError(f"training examples lack columns {missing}")
    params = params or PropensityParams()
    labelled = examples.loc[examples[label].notna()]
    train, test = time_split(labelled, test_cutoffs=test_cutoffs)
    first_test_cutoff = pd.to_datetime(test["cutoff_at"]).min()
    purged_train = purge_overlapping_labels(train, first_test_cutoff, LABEL_WINDOW_DAYS[label])
    if purged_train.empty:
        raise ValueError(
            f"no training cutoff is at least {LABEL_WINDOW_DAYS[label]} days before the first test cutoff "
            f"{first_test_cutoff}; add earlier cutoffs"
        )

    # Fail on a bad MLflow target before spending time on the fit.
    experiment_id = ensure_experiment(tracking)
    model, fit_counts = fit_propensity_model(purged_train, label=label, params=params)
    test_x, test_y = prepare_features(test), _labels(test, label)
    test_scores = model.predict_proba(test_x)[:, 1]
    importance = gain_importance(model)
    train_cutoffs = sorted(pd.to_datetime(purged_train["cutoff_at"]).unique())
    metrics = {
        **evaluate_propensity(test_y.to_numpy(), test_scores, prefix="test"),
        "train_base_rate": float(_labels(purged_train, label).mean()),
        "n_train": float(len(purged_train)),
        "n_fit": float(fit_counts["n_fit"]),
        "n_validation": float(fit_counts["n_validation"]),
        "n_test": float(len(test)),
        "n_purged_for_label_overlap": float(len(train) - len(purged_train)),
        "n_unlabelled_dropped": float(len(examples) - len(labelled)),
        "best_iteration": float(model.best_iteration_ or model.n_estimators),
    }
    feature_hash = feature_list_hash()

    client = tracking.client
    params_logged = {
        **{f"lgbm_{key}": value for key, value in params.classifier_kwargs().items()},
        "early_stopping_rounds": params.early_stopping_rounds,
        "validation_fraction": params.validation_fraction,
        "label": label,
        "label_window_days": LABEL_WINDOW_DAYS[label],
        "n_features": len(FEATURE_COLUMNS),
        "n_train_cutoffs": len(train_cutoffs),
        "first_train_cutoff": pd.Timestamp(train_cutoffs[0]).isoformat(),
        "last_train_cutoff": pd.Timestamp(train_cutoffs[-1]).isoformat(),
        "n_test_cutoffs": test_cutoffs,
        "first_test_cutoff": pd.Timestamp(first_test_cutoff).isoformat(),
    }
    with warnings.catch_warnings():
        # Known-benign MLflow notes about dataset metadata: a local path matches two
        # equivalent source types, and the 0/1 label is (correctly) an integer column.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        train_dataset = mlflow.data.from_pandas(
            _loggable(purged_train, label), source=dataset_source, name=f"{dataset_name}-train", targets=label
        )
        test_dataset = mlflow.data.from_pandas(
            _loggable(test, label), source=train_dataset.source, name=f"{dataset_name}-test", targets=label
        )
        example_rows = test_x.head(5)
        signature = infer_signature(example_rows, model.predict_proba(example_rows)[:, 1])
        # The schema and profile are computed lazily, on first read: read them here.
        dataset_entities = {
            "training": Dataset(**train_dataset.to_dict()),
            "testing": Dataset(**test_dataset.to_dict()),
        }

    run = client.create_run(
        experiment_id,
        run_name=f"propensity-{label}",
        tags={"label": label, "feature_list_sha256": feature_hash, "model_family": "lightgbm"},
    )
    run_id = run.info.run_id
    status = "FAILED"
    try:
        client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params_logged.items()])
        client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])
                for context, entity in dataset_entities.items()
            ],
        )
        logged_model = log_lightgbm_model(
            client, experiment_id, run_id, model.booster_, signature=signature, input_example=example_rows
        )
        model_id = logged_model.model_id
        client.log_outputs(run_id, models=[LoggedModelOutput(model_id=model_id, step=0)])
        for key, value in metrics.items():
            # Test metrics belong to the model and the test set they were measured on.
            on_test = key.startswith("test_")
            client.log_metric(
                run_id,
                key,
                value,
                model_id=model_id if on_test else None,
                dataset_name=test_dataset.name if on_test else None,
                dataset_digest=test_dataset.digest if on_test else None,
            )
        top_features = importance.head(TOP_FEATURE_METRICS)
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(f"gain_share.{row.feature}", float(row.gain_share), now_ms, 0) for row in top_features.itertuples()],
        )
        client.log_dict(
            run_id, {"importance_type": "gain", "features": importance.to_dict(orient="records")}, "feature_importance.json"
        )
        client.log_dict(run_id, asdict(params), "propensity_params.json")

        ensure_registered_model(client, registered_model_name)
        version = str(
            client.create_model_version(
                registered_model_name,
                # The artefact location itself: a `models:/<id>` source would be resolved
                # through MLflow's process-wide tracking URI, not this client's.
                source=logged_model.artifact_location,
                run_id=run_id,
                model_id=model_id,
                tags={"run_id": run_id, "label": label, "feature_list_sha256": feature_hash},
            ).version
        )
        client.set_registered_model_alias(registered_model_name, CANDIDATE_ALIAS, version)
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status=status)

    return TrainingResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=registered_model_name,
        model_version=version,
        model_uri=model_version_uri(registered_model_name, version),
        metrics=metrics,
        feature_columns=tuple(FEATURE_COLUMNS),
        n_train=len(purged_train),
        n_test=len(test),
        trained_at=datetime.now(timezone.utc),
        model=model,
    )


def log_lightgbm_model(client, experiment_id: str, run_id: str, booster, *, signature, input_example):
    """Log a LightGBM booster as an MLflow logged model of ``run_id``; return the `LoggedModel`.

    `mlflow.lightgbm.log_model` needs the process-wide active run; saving the model to a
    temporary folder and uploading it through the client gives the same artefact without it.
    """
    import tempfile

    import mlflow.lightgbm

    logged = client.create_logged_model(experiment_id, name="model", source_run_id=run_id, model_type="lightgbm")
    try:
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / "model"
            with warnings.catch_warnings():
                # The 0/1-valued count features are (correctly) integer columns.
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
                mlflow.lightgbm.save_model(
                    booster,
                    str(local),
                    signature=signature,
                    input_example=input_example,
                    pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),
                )
            client.log_model_artifacts(logged.model_id, str(local))
    except BaseException:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    return client.finalize_logged_model(logged.model_id, "READY")


def _loggable(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Features and label only: subscriber keys are pseudonymous, but nothing downstream needs them."""
    loggable = prepare_features(frame)
    loggable[label] = _labels(frame, label).to_numpy()
    return loggable
