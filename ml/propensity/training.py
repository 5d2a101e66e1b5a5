"""The subscriber models (ml/propensity/specs.py): LightGBM on `marts.training_examples`, in MLflow.

One function trains any spec. The split is by time: the most recent labelled cutoff is the
held-out test set, and training examples whose label window reaches into the test period
are purged, so the test score is what a model trained up to a date would have achieved
afterwards. The model is logged in LightGBM's own text format (no pickle), registered, and
given the alias ``challenger``; whether it becomes ``champion`` is the promotion gate's
decision (ml/propensity/promotion.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.propensity.features import (
    CATEGORICAL_FEATURES,
    CUTOFF_EVERY_DAYS,
    EXAMPLE_LABEL_DAYS,
    FEATURE_COLUMNS,
    FEATURE_WARM_UP_DAYS,
    ID_COLUMNS,
    feature_list_hash,
    prepare_features,
)
from ml.propensity.promotion import CHALLENGER_ALIAS
from ml.propensity.specs import ModelSpec, TrainingParams
from ml.tracking import MlflowTarget, ensure_experiment, ensure_registered_model, model_version_uri, pandas_dataset_entity

if TYPE_CHECKING:
    import lightgbm

# How many of the most important features also get a metric of their own.
TOP_FEATURE_METRICS = 10


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
    # Datasets as logged to MLflow: {"training"|"testing": {"name", "digest", "rows", ...}}.
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The fitted in-memory model (its booster is what was logged); not part of equality.
    model: Any = field(default=None, repr=False, compare=False)
    # The test rows (ids, features, segments, label) and the model's scores on them, for the
    # gate (which scores the same rows with the champion) and the model card.
    test: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    test_scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    importance: pd.DataFrame | None = field(default=None, repr=False, compare=False)


def _whole_weeks(days: int) -> int:
    """``days`` rounded up to the cutoffs' weekly cadence."""
    return CUTOFF_EVERY_DAYS * -(-days // CUTOFF_EVERY_DAYS)


def history_days_needed(spec: ModelSpec, test_cutoffs: int = 1) -> int:
    """Days from the first behavioural data (first send or order) to the as-of day that
    marts.training_examples needs before ``spec`` can train: the features' warm-up before
    the first training cutoff, the purge gap from it to the first test cutoff (the label
    window, in whole weeks), ``test_cutoffs - 1`` more weeks, and the last test cutoff's
    label window (its rows exist after EXAMPLE_LABEL_DAYS; a longer label is null until it
    has passed). Purchase: 28 + 14 + 14 = 56 days."""
    if test_cutoffs < 1:
        raise ValueError("test_cutoffs must be at least 1")
    return (
        FEATURE_WARM_UP_DAYS
        + _whole_weeks(spec.horizon_days)
        + CUTOFF_EVERY_DAYS * (test_cutoffs - 1)
        + _whole_weeks(max(EXAMPLE_LABEL_DAYS, spec.horizon_days))
    )


def history_days_needed_by_model(specs: tuple[ModelSpec, ...] | None = None) -> dict[str, int]:
    """{model key: history_days_needed} for every model spec (the landing check reads it)."""
    from ml.propensity.specs import MODEL_SPECS

    return {spec.key: history_days_needed(spec) for spec in (specs or MODEL_SPECS)}


class NotEnoughHistory(ValueError):
    """The training examples hold too few labelled cutoffs for ``spec`` to train and test."""

    def __init__(self, spec: ModelSpec, labelled_cutoffs: int, test_cutoffs: int = 1):
        self.spec, self.labelled_cutoffs, self.test_cutoffs = spec, labelled_cutoffs, test_cutoffs
        super().__init__(self.explain(None))

    def explain(self, days_of_history: int | None) -> str:
        """The cause and the fix in one sentence; ``days_of_history``: days from the first
        send or order to the as-of day (None when unknown, e.g. no send or order at all)."""
        needed = history_days_needed(self.spec, self.test_cutoffs)
        has = "no send or order at all" if days_of_history is None else f"{days_of_history:,} days"
        if days_of_history is None:
            fix = f"land sends and orders that span at least {needed} days"
        elif days_of_history < needed:
            fix = f"land at least {needed - days_of_history:,} more days of sends and orders, or wait that long"
        else:
            fix = "the history is long enough, so check that subscribers signed up before the cutoffs"
        return (
            f"{self.spec.key} model: no model can be trained from {self.labelled_cutoffs} labelled weekly cutoff(s) "
            f"in training_examples, because it needs {needed} days of history (the first send or order to the "
            f"as-of day: {FEATURE_WARM_UP_DAYS} days of features, {_whole_weeks(self.spec.horizon_days)} from a "
            f"training to a test cutoff, {_whole_weeks(max(EXAMPLE_LABEL_DAYS, self.spec.horizon_days))} for the "
            f"test cutoff's {self.spec.label} window) and the data has {has}; fix: {fix}."
        )


class LabelHasOneClass(ValueError):
    """Every labelled training example of ``spec`` has the same label: nothing to learn.

    Not an error in the data: a shop export without an ESP's events has no clicks, so the
    click model has no positive example. The model is then not trained, and the run says why.
    """

    def __init__(self, spec: ModelSpec, value: int, rows: int):
        self.spec, self.value, self.rows = spec, value, rows
        source = f" {spec.label_source}." if spec.label_source else ""
        super().__init__(
            f"{spec.key} model: not trained, because all {rows:,} labelled examples in training_examples have "
            f"{spec.label} = {value}, so there is nothing to learn.{source}"
        )


def days_of_history(first_data_at, as_of) -> int | None:
    """Whole days from the first send or order's day to the as-of day (how training_examples
    counts them); None when there is no send or order at all."""
    if first_data_at is None or pd.isna(first_data_at):
        return None
    return int((pd.Timestamp(as_of).normalize() - pd.Timestamp(first_data_at).normalize()).days)


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
    # In one fixed order, whatever order the rows came in: a warehouse table built in parallel
    # keeps its rows in no fixed order, and LightGBM's sums and the bootstrap's resamples
    # follow row order, so the same examples must give the same model and the same gate.
    by = ["_cutoff", "subscriber_key"] if "subscriber_key" in examples.columns else ["_cutoff"]
    ordered = examples.assign(_cutoff=cutoff_at).sort_values(by, kind="stable")
    is_test = ordered["_cutoff"] >= cutoffs[-test_cutoffs]
    ordered = ordered.drop(columns="_cutoff")
    return ordered.loc[~is_test].copy(), ordered.loc[is_test].copy()


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


def evaluate_scores(labels: np.ndarray, scores: np.ndarray, prefix: str = "test") -> dict[str, float]:
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


def fit_model(
    train: pd.DataFrame, *, label: str, params: TrainingParams | None = None,
    features: tuple[str, ...] = FEATURE_COLUMNS,
) -> tuple[lightgbm.LGBMClassifier, dict[str, int]]:
    """Fit LightGBM on ``train`` with early stopping on a held-back slice of its subscribers.

    Returns the model and row counts (``n_fit``, ``n_validation``)."""
    import lightgbm

    params = params or TrainingParams()
    mask = validation_mask(train["subscriber_key"], params.validation_fraction, params.seed)
    prepared = prepare_features(train, features)
    labels = _labels(train, label)
    fit_x, fit_y = prepared.loc[~mask], labels.loc[~mask]
    if fit_y.nunique() < 2:
        raise ValueError(f"training rows have a single {label!r} class; nothing to learn")
    model = lightgbm.LGBMClassifier(**params.classifier_kwargs())
    model.fit(
        fit_x,
        fit_y,
        eval_X=(prepared.loc[mask],),
        eval_y=(labels.loc[mask],),
        eval_metric="binary_logloss",
        categorical_feature=[c for c in CATEGORICAL_FEATURES if c in features],
        callbacks=[lightgbm.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    return model, {"n_fit": int((~mask).sum()), "n_validation": int(mask.sum())}


def train_model(
    examples: pd.DataFrame,
    spec: ModelSpec,
    *,
    tracking: MlflowTarget,
    dataset_name: str,
    dataset_source: str,
    run_tags: dict[str, str] | None = None,
    test_cutoffs: int = 1,
    feature_params: dict[str, str] | None = None,
) -> TrainingResult:
    """Train ``spec``'s model, evaluate on the latest labelled cutoff(s), log to MLflow,
    register, alias ``challenger``.

    ``examples`` is `marts.training_examples`; ``dataset_source`` says where it came from
    (e.g. the warehouse path and table) and is recorded with the logged datasets, which hold
    features and label only, never subscriber keys. ``run_tags`` go on the run and on the
    registered version (e.g. the git commit, the orchestrator's run id and asset key). The run
    carries ROC, precision-recall, calibration and feature-importance plots (DIAGNOSTIC_PLOTS).
    ``feature_params`` are logged as params: what the features meant for this run (which
    category fills each category slot, `features.category_slot_params`).
    """
    import mlflow.lightgbm
    from mlflow.entities import DatasetInput, InputTag, LoggedModelOutput, Metric, Param
    from mlflow.models import infer_signature

    from ml.propensity.metrics import bootstrap_auc, diagnostic_figures, expected_calibration_error

    label, params, features = spec.label, spec.params, spec.features
    missing = [c for c in (*ID_COLUMNS, label) if c not in examples.columns]
    if missing:
        raise ValueError(f"training examples lack columns {missing}")
    labelled = examples.loc[examples[label].notna()]
    labelled_cutoffs = int(pd.to_datetime(labelled["cutoff_at"]).nunique())
    if labelled_cutoffs <= max(test_cutoffs, 1):
        raise NotEnoughHistory(spec, labelled_cutoffs, test_cutoffs)
    values = _labels(labelled, label).unique()
    if len(values) == 1:
        raise LabelHasOneClass(spec, int(values[0]), len(labelled))
    train, test = time_split(labelled, test_cutoffs=test_cutoffs)
    first_test_cutoff = pd.to_datetime(test["cutoff_at"]).min()
    purged_train = purge_overlapping_labels(train, first_test_cutoff, spec.horizon_days)
    if purged_train.empty:
        raise NotEnoughHistory(spec, labelled_cutoffs, test_cutoffs)

    # Fail on a bad MLflow target before spending time on the fit.
    experiment_id = ensure_experiment(tracking)
    model, fit_counts = fit_model(purged_train, label=label, params=params, features=features)
    test_x, test_y = prepare_features(test, features), _labels(test, label)
    test_scores = model.predict_proba(test_x)[:, 1]
    importance = gain_importance(model)
    train_cutoffs = sorted(pd.to_datetime(purged_train["cutoff_at"]).unique())
    auc = bootstrap_auc(test_y.to_numpy(), test_scores, n_boot=spec.gate.n_boot, seed=spec.gate.seed)
    metrics = {
        **evaluate_scores(test_y.to_numpy(), test_scores, prefix="test"),
        "test_auc_low": auc.low,
        "test_auc_high": auc.high,
        "test_ece": expected_calibration_error(test_y.to_numpy(), test_scores),
        "train_base_rate": float(_labels(purged_train, label).mean()),
        "n_train": float(len(purged_train)),
        "n_fit": float(fit_counts["n_fit"]),
        "n_validation": float(fit_counts["n_validation"]),
        "n_test": float(len(test)),
        "n_purged_for_label_overlap": float(len(train) - len(purged_train)),
        "n_unlabelled_dropped": float(len(examples) - len(labelled)),
        "best_iteration": float(model.best_iteration_ or model.n_estimators),
    }
    feature_hash = feature_list_hash(features)

    client = tracking.client
    params_logged = {
        **{f"lgbm_{key}": value for key, value in params.classifier_kwargs().items()},
        "early_stopping_rounds": params.early_stopping_rounds,
        "validation_fraction": params.validation_fraction,
        "model": spec.key,
        "label": label,
        "label_window_days": spec.horizon_days,
        "n_features": len(features),
        "n_train_cutoffs": len(train_cutoffs),
        "first_train_cutoff": pd.Timestamp(train_cutoffs[0]).isoformat(),
        "last_train_cutoff": pd.Timestamp(train_cutoffs[-1]).isoformat(),
        "n_test_cutoffs": test_cutoffs,
        "first_test_cutoff": pd.Timestamp(first_test_cutoff).isoformat(),
        **(feature_params or {}),
    }
    with warnings.catch_warnings():
        # Known-benign MLflow notes about dataset metadata: a local path matches two
        # equivalent source types, and the 0/1 label is (correctly) an integer column.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        train_frame, test_frame = _loggable(purged_train, label, features), _loggable(test, label, features)
        example_rows = test_x.head(5)
        signature = infer_signature(example_rows, model.predict_proba(example_rows)[:, 1])
        dataset_entities = {
            "training": pandas_dataset_entity(train_frame, source=dataset_source, name=f"{dataset_name}-train",
                                              targets=label),
            "testing": pandas_dataset_entity(test_frame, source=dataset_source, name=f"{dataset_name}-test",
                                             targets=label),
        }

    name = spec.registered_model_name
    run = client.create_run(
        experiment_id,
        run_name=f"{spec.key}-{pd.Timestamp(first_test_cutoff).date()}",
        tags={
            **(run_tags or {}),
            "model": spec.key,
            "label": label,
            "feature_list_sha256": feature_hash,
            "model_family": "lightgbm",
            "mlflow.note.content": spec.target,
        },
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
                dataset_name=dataset_entities["testing"].name if on_test else None,
                dataset_digest=dataset_entities["testing"].digest if on_test else None,
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
        client.log_dict(run_id, asdict(params), "training_params.json")
        for artifact_file, figure in diagnostic_figures(test_y.to_numpy(), test_scores, importance).items():
            client.log_figure(run_id, figure, artifact_file)

        ensure_registered_model(client, name, description=spec.target)
        version = str(
            client.create_model_version(
                name,
                # The artefact location itself: a `models:/<id>` source would be resolved
                # through MLflow's process-wide tracking URI, not this client's.
                source=logged_model.artifact_location,
                run_id=run_id,
                model_id=model_id,
                tags={**(run_tags or {}), "run_id": run_id, "model": spec.key, "label": label,
                      "feature_list_sha256": feature_hash},
                description=f"{spec.target} (run {run_id}); the model card replaces this once written.",
            ).version
        )
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, version)
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status=status)

    return TrainingResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=name,
        model_version=version,
        model_uri=model_version_uri(name, version),
        metrics=metrics,
        feature_columns=tuple(features),
        n_train=len(purged_train),
        n_test=len(test),
        trained_at=datetime.now(timezone.utc),
        datasets={
            context: {
                "name": dataset.name,
                "digest": dataset.digest,
                "rows": len(frame),
                "first_cutoff": pd.to_datetime(frame["cutoff_at"]).min().isoformat(),
                "last_cutoff": pd.to_datetime(frame["cutoff_at"]).max().isoformat(),
                "positive_rate": float(_labels(frame, label).mean()),
                "source": dataset_source,
            }
            for context, dataset, frame in (("training", dataset_entities["training"], purged_train),
                                            ("testing", dataset_entities["testing"], test))
        },
        model=model,
        test=test[[c for c in (*ID_COLUMNS, *features, *spec.segments, label) if c in test.columns]].reset_index(drop=True),
        test_scores=np.asarray(test_scores, dtype="float64"),
        importance=importance,
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


def _loggable(frame: pd.DataFrame, label: str, features: tuple[str, ...] = FEATURE_COLUMNS) -> pd.DataFrame:
    """Features and label only: subscriber keys are pseudonymous, but nothing downstream needs them."""
    loggable = prepare_features(frame, features)
    loggable[label] = _labels(frame, label).to_numpy()
    return loggable
