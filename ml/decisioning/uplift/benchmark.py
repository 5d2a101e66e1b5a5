"""The uplift benchmark: meta-learners compared on seeded, stratified splits of randomised data,
and the Hillstrom e-mail experiment as the public yardstick.

Every learner is scored on the same splits, so their figures differ by the learner only. A
split is 70/30, stratified on treatment x outcome, one per seed; the figures are the mean and
the spread (sample standard deviation) over the seeds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.decisioning.uplift.learners import (
    CLASS_TRANSFORMATION,
    S_LEARNER,
    T_LEARNER,
    LightGBMParams,
    UpliftLearner,
    check_randomised_sample,
    fit_uplift_model,
    predict_uplift,
    qini_auc,
    uplift_at_k,
    uplift_auc,
)

from ml.tracking import MlflowTarget, ensure_experiment

BENCHMARK_SEEDS = (0, 1, 2, 3, 4)
TEST_SHARE = 0.3
TOP_SHARE = 0.3

# Hillstrom: women's e-mail against no e-mail, outcome a site visit within two weeks.
HILLSTROM_TREATED_SEGMENT = "Womens E-Mail"
HILLSTROM_CONTROL_SEGMENT = "No E-Mail"
HILLSTROM_OUTCOME = "visit"
HILLSTROM_NUMERIC_FEATURES = ("recency", "history", "mens", "womens", "newbie")
# One-hot with a fixed list, so the columns never depend on which values a frame happens to
# hold. history_segment is left out: it is `history` cut into bands, which trees find anyway.
HILLSTROM_CATEGORIES = {
    "zip_code": ("Surburban", "Rural", "Urban"),
    "channel": ("Phone", "Web", "Multichannel"),
}
# The published tutorial figure for uplift@30% (by group) on this benchmark; issue 10's
# goal is to reach it.
HILLSTROM_UPLIFT_AT_30_GOAL = 0.066

# The benchmark's learners. The tuned parameters were chosen on the training parts only:
# `run_uplift_benchmark(..., within_training=True)` over the 5 benchmark seeds, each
# learner kind over the grid num_leaves {4, 8, 16, 31} x n_estimators {100, 300} x
# learning_rate {0.03, 0.1} x min_child_samples {20, 200} (96 candidates, 3.5 min), keeping
# per kind the highest mean uplift@30% on the inner validation part of each training part.
# The 30% test parts, whose figures the benchmark reports, played no part in the choice.
# All three winners are small, slow, well-regularised forests: uplift is a difference of
# two similar probabilities, and deeper trees fit the noise in each arm, which the
# difference amplifies. The untuned T-learner is the baseline the issue measured (~0.059).
HILLSTROM_LEARNERS = (
    UpliftLearner("t_learner_default", T_LEARNER, LightGBMParams()),
    UpliftLearner(
        "t_learner", T_LEARNER, LightGBMParams(num_leaves=8, n_estimators=100, learning_rate=0.03, min_child_samples=200)
    ),
    UpliftLearner(
        "s_learner", S_LEARNER, LightGBMParams(num_leaves=16, n_estimators=300, learning_rate=0.03, min_child_samples=200)
    ),
    UpliftLearner(
        "class_transformation",
        CLASS_TRANSFORMATION,
        LightGBMParams(num_leaves=4, n_estimators=100, learning_rate=0.03, min_child_samples=20),
    ),
)


@dataclass(frozen=True)
class UpliftSample:
    """Randomised rows: numeric features, the treatment flag (1 emailed) and the 0/1 outcome."""

    features: pd.DataFrame
    treatment: np.ndarray
    outcome: np.ndarray

    def __post_init__(self) -> None:
        treatment, outcome = check_randomised_sample(self.treatment, self.outcome)
        if len(self.features) != len(treatment):
            raise ValueError(f"features have {len(self.features)} rows but treatment has {len(treatment)}")
        object.__setattr__(self, "treatment", treatment)
        object.__setattr__(self, "outcome", outcome)


def hillstrom_uplift_sample(frame: pd.DataFrame) -> UpliftSample:
    """The women's e-mail and no e-mail arms of the Hillstrom file, `visit` as the outcome."""
    missing = sorted({"segment", HILLSTROM_OUTCOME, *HILLSTROM_NUMERIC_FEATURES, *HILLSTROM_CATEGORIES} - set(frame.columns))
    if missing:
        raise ValueError(f"the Hillstrom frame lacks columns {missing}")
    rows = frame.loc[frame["segment"].isin([HILLSTROM_TREATED_SEGMENT, HILLSTROM_CONTROL_SEGMENT])].reset_index(drop=True)
    features = rows[list(HILLSTROM_NUMERIC_FEATURES)].astype(float)
    for column, values in HILLSTROM_CATEGORIES.items():
        unknown = sorted(set(rows[column].unique()) - set(values))
        if unknown:
            raise ValueError(f"Hillstrom column {column!r} holds unknown values {unknown}")
        for value in values:
            features[f"{column}_{value.lower()}"] = (rows[column] == value).astype(float)
    return UpliftSample(
        features=features,
        treatment=(rows["segment"] == HILLSTROM_TREATED_SEGMENT).to_numpy(dtype=int),
        outcome=rows[HILLSTROM_OUTCOME].to_numpy(dtype=int),
    )


@dataclass(frozen=True)
class LearnerBenchmark:
    """One learner's figures, one per seed, in the order of the benchmark's seeds."""

    learner: UpliftLearner
    uplift_at_k: tuple[float, ...]
    qini_auc: tuple[float, ...]
    uplift_auc: tuple[float, ...]
    seconds: float

    @property
    def mean_uplift_at_k(self) -> float:
        return float(np.mean(self.uplift_at_k))

    def summary(self, metric_name: str) -> dict[str, float]:
        """`<figure>_mean` and `<figure>_std` (sample standard deviation over the seeds) of
        uplift@k (named `metric_name`), Qini AUC and AUUC, and the seconds all seeds took."""
        summary = {}
        for figure, values in ((metric_name, self.uplift_at_k), ("qini_auc", self.qini_auc), ("uplift_auc", self.uplift_auc)):
            summary[f"{figure}_mean"] = float(np.mean(values))
            summary[f"{figure}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        summary["seconds"] = self.seconds
        return summary


@dataclass(frozen=True)
class UpliftBenchmark:
    """Every learner scored on the same seeded splits.

    evaluated_on: "test" (the held-out 30%) or "inner validation" (a split of the training
    part, for choosing parameters without touching the test parts).
    """

    seeds: tuple[int, ...]
    k: float
    test_share: float
    rows: int
    treated_share: float
    evaluated_on: str
    learners: tuple[LearnerBenchmark, ...]
    seconds: float

    @property
    def metric_name(self) -> str:
        """``uplift_at_30`` for k = 0.3."""
        return f"uplift_at_{round(self.k * 100)}"

    def best(self) -> LearnerBenchmark:
        """The learner with the highest mean uplift@k (the first one on a tie)."""
        return max(self.learners, key=lambda result: result.mean_uplift_at_k)

    def table(self) -> pd.DataFrame:
        """One row per learner: its name, kind and summary (mean and spread of every figure)."""
        return pd.DataFrame(
            [
                {"learner": result.learner.name, "kind": result.learner.kind, **result.summary(self.metric_name)}
                for result in self.learners
            ]
        )


def seeded_split(sample: UpliftSample, seed: int, test_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions: a split stratified on treatment x outcome."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(sample.treatment))
    strata = sample.treatment * 2 + sample.outcome
    train, test = train_test_split(positions, test_size=test_share, random_state=seed, stratify=strata)
    return np.sort(train), np.sort(test)


def benchmark_splits(
    sample: UpliftSample, seeds: tuple[int, ...], test_share: float, within_training: bool
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(seed, rows fitted on, rows scored on) per seed. Normally the training and test parts;
    within_training, the training part split again the same way, so that the test part is
    never seen while parameters are chosen."""
    splits = []
    for seed in seeds:
        train, test = seeded_split(sample, seed, test_share)
        if within_training:
            inner_train, inner_validation = seeded_split(_subset(sample, train), seed, test_share)
            train, test = train[inner_train], train[inner_validation]
        splits.append((seed, train, test))
    return splits


def _subset(sample: UpliftSample, positions: np.ndarray) -> UpliftSample:
    return UpliftSample(
        features=sample.features.iloc[positions].reset_index(drop=True),
        treatment=sample.treatment[positions],
        outcome=sample.outcome[positions],
    )


def run_uplift_benchmark(
    sample: UpliftSample,
    learners: tuple[UpliftLearner, ...],
    *,
    seeds: tuple[int, ...] = BENCHMARK_SEEDS,
    test_share: float = TEST_SHARE,
    k: float = TOP_SHARE,
    within_training: bool = False,
) -> UpliftBenchmark:
    """Fit every learner on the training part of each seed's split and score it on the test
    part: uplift@k (by group), Qini AUC and AUUC.

    within_training: split each training part again (same seed and share) and score on that
    inner validation part instead, so parameters can be chosen without the test parts.
    """
    if not learners:
        raise ValueError("no learners to benchmark")
    names = [learner.name for learner in learners]
    if len(set(names)) != len(names):
        raise ValueError(f"learner names must be unique, got {names}")
    if not seeds:
        raise ValueError("need at least one seed")
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    started = time.perf_counter()
    splits = [
        (seed, _subset(sample, fit_rows), _subset(sample, scored_rows))
        for seed, fit_rows, scored_rows in benchmark_splits(sample, seeds, test_share, within_training)
    ]

    results = []
    for learner in learners:
        learner_started = time.perf_counter()
        at_k, qini, auuc = [], [], []
        for seed, train, test in splits:
            model = fit_uplift_model(train.features, train.treatment, train.outcome, learner, seed=seed)
            uplift = predict_uplift(model, test.features)
            at_k.append(uplift_at_k(test.outcome, uplift, test.treatment, k=k))
            qini.append(qini_auc(test.outcome, uplift, test.treatment))
            auuc.append(uplift_auc(test.outcome, uplift, test.treatment))
        results.append(
            LearnerBenchmark(learner, tuple(at_k), tuple(qini), tuple(auuc), time.perf_counter() - learner_started)
        )
    return UpliftBenchmark(
        seeds=tuple(seeds),
        k=k,
        test_share=test_share,
        rows=len(sample.treatment),
        treated_share=float(sample.treatment.mean()),
        evaluated_on="inner validation" if within_training else "test",
        learners=tuple(results),
        seconds=time.perf_counter() - started,
    )


def benchmark_hillstrom(
    frame: pd.DataFrame,
    learners: tuple[UpliftLearner, ...] = HILLSTROM_LEARNERS,
    *,
    seeds: tuple[int, ...] = BENCHMARK_SEEDS,
) -> UpliftBenchmark:
    """The Hillstrom benchmark: women's e-mail vs no e-mail, `visit`, uplift@30% by group
    over the seeded 70/30 splits. `frame` is the Hillstrom file as read from its CSV."""
    return run_uplift_benchmark(hillstrom_uplift_sample(frame), learners, seeds=seeds)


def log_uplift_benchmark(
    target: MlflowTarget,
    benchmark: UpliftBenchmark,
    *,
    run_name: str,
    dataset: str,
    run_tags: dict[str, str] | None = None,
) -> str:
    """One MLflow run through the target's client: the benchmark's settings and every
    learner's parameters as params, per-learner mean and spread as metrics, the per-seed
    figures as steps, and the whole table as ``uplift_benchmark.json``. Returns the run id."""
    from mlflow.entities import Metric, Param

    name = benchmark.metric_name
    params = {
        "seeds": ",".join(str(seed) for seed in benchmark.seeds),
        "k": benchmark.k,
        "test_share": benchmark.test_share,
        "rows": benchmark.rows,
        "evaluated_on": benchmark.evaluated_on,
        **{
            f"{result.learner.name}.{key}": value
            for result in benchmark.learners
            for key, value in result.learner.params().items()
        },
    }
    now_ms = int(time.time() * 1000)
    metrics = []
    for result in benchmark.learners:
        prefix = result.learner.name
        metrics += [Metric(f"{prefix}.{key}", value, now_ms, 0) for key, value in result.summary(name).items()]
        for step, (at_k, qini) in enumerate(zip(result.uplift_at_k, result.qini_auc)):
            metrics.append(Metric(f"{prefix}.{name}_by_seed", float(at_k), now_ms, step))
            metrics.append(Metric(f"{prefix}.qini_auc_by_seed", float(qini), now_ms, step))
    best = benchmark.best()
    metrics.append(Metric(f"best.{name}_mean", best.mean_uplift_at_k, now_ms, 0))
    client = target.client
    experiment_id = ensure_experiment(target)
    run_id = client.create_run(experiment_id, run_name=run_name, tags={**(run_tags or {}), "dataset": dataset}).info.run_id
    status = "FAILED"
    try:
        client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])
        client.log_batch(run_id, metrics=metrics)
        client.set_tag(run_id, "best_learner", best.learner.name)
        client.log_dict(run_id, json.loads(benchmark.table().to_json(orient="records")), "uplift_benchmark.json")
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status=status)
    return run_id
