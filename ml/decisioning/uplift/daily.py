"""The daily uplift model: fitted on the randomised rows, judged on held-out randomised rows
against the propensity ranking, and allowed to decide only when it measurably does better.

A held-out split by person (a stable hash, so a person's weeks stay on one side) gives each
candidate learner a Qini AUC. The propensity score is judged the same way, on the same rows,
as if it were an uplift estimate: it is what decides when the uplift model does not. The
best learner *acts* (the targeting policy ranks by its uplift estimate) only when its Qini
beats the propensity ranking's with a bootstrap 95% interval of the gain above zero; an
uplift model nobody can show to be better must not decide who is emailed. The reason is
recorded either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.decisioning.uplift.learners import (
    PROPENSITY_BASELINE, S_LEARNER, T_LEARNER, FittedUplift, LightGBMParams, RowLearner, UpliftLearner, qini_auc,
    uplift_at_k, uplift_auc, weighted_qini_auc,
)
from ml.decisioning.uplift.structured import PropensityLiftLearner
from ml.experiments.design import hash_buckets
from ml.propensity.features import PURCHASE_LABEL

# Small, heavily regularised trees: the email's effect is a fraction of a percentage point
# and a default LightGBM fits the noise (measured on the simulator: default T-learner
# captured 0.53 of the true incremental purchases at 30% volume, this one 0.60).
REGULARISED = LightGBMParams(num_leaves=4, n_estimators=100, learning_rate=0.05, min_child_samples=500)
DAILY_LEARNERS = (
    UpliftLearner("t_learner", T_LEARNER, REGULARISED),
    UpliftLearner("s_learner", S_LEARNER, REGULARISED),
)
# The propensity lift model (structured.py, the propensity times a relative lift in six
# numbers) is not a daily candidate: on two 20,000-person worlds it captured 81.0% and 83.2%
# of the incremental purchases against the propensity's 82.6% and 81.6%, and in the
# 3,000-person end-to-end world it passed the gate on its first day (+0.18 [+0.05, +0.33] on
# 7,206 held-out rows) yet captured 22.1% against the propensity's 27.2% at the policy's
# volume: one more candidate is one more chance for the best of them to pass by luck
# (docs/models.md, "The propensity lift model"). fit_daily_uplift(rows, learners=...) fits it.
WITH_PROPENSITY_LIFT = (*DAILY_LEARNERS, PropensityLiftLearner())
HELD_OUT_SHARE = 0.3
SPLIT_SALT = "uplift-held-out:"
TOP_SHARE = 0.3
BOOTSTRAP_RESAMPLES = 100
# The gate's error rate: 1 - GATE_ALPHA is the interval's level for a single candidate.
GATE_ALPHA = 0.05
BOOTSTRAP_BLOCK = 25  # resamples scored together: (rows x 25) arrays, about 10 MB per 50,000 rows
# Fewer randomised rows or conversions per arm than this and no model is fitted.
MIN_ROWS = 2_000
MIN_CONVERSIONS_PER_ARM = 50


@dataclass(frozen=True)
class LearnerResult:
    name: str
    qini_auc: float
    uplift_auc: float
    uplift_at_30: float


@dataclass(frozen=True)
class UpliftFit:
    """What the day's fit found. `model` is None when there was too little data to fit."""

    rows: int
    treated: int
    converted_treated: int
    converted_control: int
    learners: tuple[LearnerResult, ...] = ()
    baseline: LearnerResult | None = None  # the propensity score judged as an uplift ranking
    best: str | None = None
    qini_gain: float = math.nan  # best learner's Qini minus the propensity ranking's
    qini_gain_ci: tuple[float, float] = (math.nan, math.nan)
    # The interval's level: 95% shared by the candidates the best was picked from (Bonferroni).
    qini_gain_ci_level: float = math.nan
    acts: bool = False
    reason: str = ""
    model: FittedUplift | None = field(default=None, repr=False)
    learner: RowLearner | None = field(default=None, repr=False)

    def metrics(self) -> dict[str, float]:
        out = {"rows": float(self.rows), "treated": float(self.treated),
               "qini_gain_over_propensity": self.qini_gain,
               "qini_gain_ci_low": self.qini_gain_ci[0], "qini_gain_ci_high": self.qini_gain_ci[1],
               "qini_gain_ci_level": self.qini_gain_ci_level}
        for result in (*self.learners, *([self.baseline] if self.baseline else [])):
            out[f"{result.name}_qini_auc"] = result.qini_auc
            out[f"{result.name}_uplift_auc"] = result.uplift_auc
            out[f"{result.name}_uplift_at_30"] = result.uplift_at_30
        return out


def _judge(name: str, outcome: np.ndarray, score: np.ndarray, treatment: np.ndarray) -> LearnerResult:
    return LearnerResult(
        name=name,
        qini_auc=qini_auc(outcome, score, treatment),
        uplift_auc=uplift_auc(outcome, score, treatment),
        uplift_at_30=uplift_at_k(outcome, score, treatment, TOP_SHARE),
    )


def qini_gain_interval(outcome, candidate, baseline, treatment, *, seed: int = 0,
                       resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (at `level`, 95% by default) of Qini(candidate) -
    Qini(baseline) on the same rows (paired: both rankings are judged on each resample). Resamples with one arm only are
    skipped. The resamples are scored as counts, BOOTSTRAP_BLOCK at a time
    (`weighted_qini_auc`: the same Qini as scikit-uplift's, without sorting every resample)."""
    rng = np.random.default_rng(seed)
    outcome, treatment = np.asarray(outcome), np.asarray(treatment)
    n = len(outcome)
    counts = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        if treatment[pick].min() != treatment[pick].max():
            counts.append(np.bincount(pick, minlength=n))
    if not counts:
        return (math.nan, math.nan)
    gains = np.concatenate([
        weighted_qini_auc(outcome, candidate, treatment, block) - weighted_qini_auc(outcome, baseline, treatment, block)
        for block in (np.stack(counts[i:i + BOOTSTRAP_BLOCK], axis=1) for i in range(0, len(counts), BOOTSTRAP_BLOCK))
    ])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(gains, [tail, 100 - tail])
    return (float(low), float(high))


def fit_daily_uplift(rows: pd.DataFrame, *, seed: int = 0, learners: tuple[RowLearner, ...] = DAILY_LEARNERS) -> UpliftFit:
    """Fit each learner on the training side of `rows` (randomised examples with `treated`,
    PURCHASE_LABEL, the feature contract and PROPENSITY_BASELINE), judge it and the
    propensity ranking on the held-out side, and decide whether the best one acts."""
    missing = [c for c in ("subscriber_key", "treated", PURCHASE_LABEL, PROPENSITY_BASELINE) if c not in rows.columns]
    if missing:
        raise ValueError(f"uplift rows lack columns {missing}")
    treatment = rows["treated"].to_numpy(dtype=int)
    outcome = rows[PURCHASE_LABEL].to_numpy(dtype=int)
    converted_treated = int(outcome[treatment == 1].sum())
    converted_control = int(outcome[treatment == 0].sum())
    counts = dict(rows=len(rows), treated=int(treatment.sum()),
                  converted_treated=converted_treated, converted_control=converted_control)
    if len(rows) < MIN_ROWS or min(converted_treated, converted_control) < MIN_CONVERSIONS_PER_ARM:
        return UpliftFit(**counts, reason=(
            f"too little randomised data: {len(rows):,} rows, {converted_treated:,} conversions emailed and "
            f"{converted_control:,} not; need {MIN_ROWS:,} rows and {MIN_CONVERSIONS_PER_ARM} conversions in each"
        ))
    held_out = hash_buckets(rows["subscriber_key"].astype(str).tolist(), SPLIT_SALT) < HELD_OUT_SHARE
    test_outcome, test_treatment = outcome[held_out], treatment[held_out]
    baseline_score = rows.loc[held_out, PROPENSITY_BASELINE].to_numpy(dtype=float)
    baseline = _judge(PROPENSITY_BASELINE, test_outcome, baseline_score, test_treatment)
    fitted, results = {}, []
    for learner in learners:
        model = learner.fit(rows[~held_out], treatment[~held_out], outcome[~held_out], seed=seed)
        score = model.predict(rows[held_out])
        fitted[learner.name] = (learner, model, score)
        results.append(_judge(learner.name, test_outcome, score, test_treatment))
    # A learner that predicts one value for everyone (trees that never split on the email)
    # ranks nobody: it is reported, never chosen.
    ranking = [r for r in results if np.ptp(fitted[r.name][2]) > 0]
    if not ranking:
        return UpliftFit(**counts, learners=tuple(results), baseline=baseline, reason=(
            "every learner predicted the same uplift for everyone: no signal to rank by, so the propensity "
            "ranking decides"))
    best = max(ranking, key=lambda r: r.qini_auc)
    learner, model, best_score = fitted[best.name]
    gain = best.qini_auc - baseline.qini_auc
    held = f"{best.name} Qini {best.qini_auc:.4f} vs propensity {baseline.qini_auc:.4f} on {int(held_out.sum()):,} " \
           "held-out randomised rows"
    if not gain > 0:
        # Not better even as a point estimate: no interval can show it better, so none is drawn.
        return UpliftFit(**counts, learners=tuple(results), baseline=baseline, best=best.name, qini_gain=gain,
                         reason=f"{held}: gain {gain:+.4f}; not better, so the propensity ranking decides",
                         model=model, learner=learner)
    # The best of k candidates is the one tested: judged alone at 95%, some candidate would
    # pass by luck more often than 1 day in 40. Bonferroni over the k candidates that could
    # have been picked keeps the chance that any of them passes without being better at most
    # 2.5% (one-sided; with 2 candidates the interval is 97.5%).
    level = 1 - GATE_ALPHA / len(ranking)
    low, high = qini_gain_interval(test_outcome, best_score, baseline_score, test_treatment, seed=seed, level=level)
    acts = bool(low > 0)
    reason = f"{held}: gain {gain:+.4f} [{low:+.4f}, {high:+.4f}] ({level:.1%} interval, best of {len(ranking)}); " + (
        "the uplift model decides" if acts else "not shown better, so the propensity ranking decides")
    return UpliftFit(**counts, learners=tuple(results), baseline=baseline, best=best.name, qini_gain=gain,
                     qini_gain_ci=(low, high), qini_gain_ci_level=level, acts=acts, reason=reason, model=model,
                     learner=learner)


def estimate_uplift(fit: UpliftFit, features: pd.DataFrame) -> np.ndarray:
    """The fitted best learner's uplift estimate for each row of `features` (the contract, and
    PROPENSITY_BASELINE when the best learner is the propensity lift model)."""
    if fit.model is None:
        raise ValueError(f"no uplift model was fitted: {fit.reason}")
    return fit.model.predict(features)


def log_daily_uplift(tracking, fit: UpliftFit, *, params: dict, run_name: str,
                     run_tags: dict[str, str] | None = None) -> str:
    """One MLflow run of the day's fit (through `tracking`, an ml.tracking.MlflowTarget): the
    sources and balance in `params`, every learner's and the propensity ranking's held-out
    Qini, AUUC and uplift@30%, whether the model acts and why. Returns the run id."""
    from mlflow.entities import Metric, Param

    from ml.tracking import ensure_experiment

    client = tracking.client
    run = client.create_run(
        ensure_experiment(tracking),
        run_name=run_name,
        tags={**(run_tags or {}), "model": "uplift", "acts": str(fit.acts).lower(), "decision": fit.reason[:5000]},
    )
    status = "FAILED"
    try:
        now_ms = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        all_params = {**params, "best_learner": fit.best or "",
                      **{f"learner_{learner.name}": str(learner.params()) for learner in DAILY_LEARNERS}}
        client.log_batch(
            run.info.run_id,
            params=[Param(key, str(value)[:6000]) for key, value in all_params.items()],
            metrics=[Metric(key, float(value), now_ms, 0) for key, value in fit.metrics().items() if math.isfinite(value)],
        )
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


# ml.uplift_estimates: one row per person per day.
UPLIFT_ESTIMATE_COLUMN_TYPES = {
    "estimated_on": "date",
    "subscriber_key": "varchar",
    "uplift_estimate": "double",
    "learner": "varchar",
    "acts": "boolean",
    "uplift_run_id": "varchar",
}
