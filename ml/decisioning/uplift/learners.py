"""Uplift models: scikit-uplift meta-learners over LightGBM, and the metrics that judge them.

An uplift model estimates, per person, how much an email changes the probability of the
outcome: P(outcome | emailed) - P(outcome | not emailed). It can only be learned from
randomised data, where whether a person was emailed is independent of who they are.

The meta-learners and the metrics are scikit-uplift's (`sklift`); this module only picks the
base learner, checks its inputs and names the configuration, so a benchmark or an asset
can say exactly what it fitted.

Every learner the daily fit can use (`UpliftLearner` here, `structured.PropensityLiftLearner`)
has one interface, `RowLearner`: ``fit(rows, treatment, outcome, *, seed)`` on randomised rows
of the feature contract returns a `FittedUplift`, whose ``predict(rows)`` is the uplift
estimate per row. The scikit-uplift learners are wrapped to match (`FittedMetaLearner`:
the contract's features prepared, then the sklift estimator); `fit_uplift_model` and
`predict_uplift` stay the lower layer on numeric features (the Hillstrom benchmark's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ml.propensity.features import prepare_features

T_LEARNER = "t_learner"
S_LEARNER = "s_learner"
CLASS_TRANSFORMATION = "class_transformation"
LEARNER_KINDS = (T_LEARNER, S_LEARNER, CLASS_TRANSFORMATION)

# Class transformation (Jaskowski & Jaroszewicz) estimates uplift as 2 P(Z=1) - 1, which is
# unbiased only when half the people were treated. Beyond this distance from one half it
# would rank by the imbalance, so it is refused rather than silently wrong.
CLASS_TRANSFORMATION_MAX_IMBALANCE = 0.05
# The column of randomised rows holding the propensity score: the ranking the uplift model is
# judged against, and what the propensity lift model multiplies.
PROPENSITY_BASELINE = "propensity_score"


class FittedUplift(Protocol):
    """A fitted uplift model: the estimated uplift per row of `rows` (the feature contract,
    and PROPENSITY_BASELINE for a learner that reads it); an empty array for no rows."""

    def predict(self, rows: pd.DataFrame) -> np.ndarray: ...


class RowLearner(Protocol):
    """An uplift learner the daily fit can use: its name, parameters for a tracking run, and
    ``fit`` on randomised rows (treatment 1 emailed, 0 not; outcome 0/1)."""

    name: str

    def params(self) -> dict[str, Any]: ...

    def fit(self, rows: pd.DataFrame, treatment, outcome, *, seed: int = 0) -> FittedUplift: ...


@dataclass(frozen=True)
class LightGBMParams:
    """The LightGBM base learner's parameters; the defaults are LightGBM's own.

    n_jobs is 1: the benchmark fits many small models one after another, where threads
    cost more than they bring, and the machine is shared with the daily loop.
    """

    num_leaves: int = 31
    n_estimators: int = 100
    learning_rate: float = 0.1
    min_child_samples: int = 20
    n_jobs: int = 1

    def classifier(self, seed: int):
        import lightgbm

        return lightgbm.LGBMClassifier(**asdict(self), random_state=seed, verbose=-1)


@dataclass(frozen=True)
class UpliftLearner:
    """A named meta-learner and its base learner's parameters.

    kind:
    - ``t_learner``: one classifier on the treated, one on the controls; uplift is the
      difference of their predictions (sklift ``TwoModels``, method ``vanilla``).
    - ``s_learner``: one classifier with the treatment flag as a feature, predicted with the
      flag set to 1 and to 0 (sklift ``SoloModel``, method ``dummy``).
    - ``class_transformation``: one classifier of Z = 1 when treated and converted or
      untreated and not converted; uplift = 2 P(Z=1) - 1 (sklift ``ClassTransformation``).
      Needs a treated share near one half.
    """

    name: str
    kind: str
    base: LightGBMParams = LightGBMParams()

    def __post_init__(self) -> None:
        if self.kind not in LEARNER_KINDS:
            raise ValueError(f"learner {self.name!r}: unknown kind {self.kind!r}; expected one of {LEARNER_KINDS}")

    def build(self, seed: int):
        """An unfitted sklift estimator; the seed goes to every base learner."""
        from sklift.models import ClassTransformation, SoloModel, TwoModels

        if self.kind == T_LEARNER:
            return TwoModels(self.base.classifier(seed), self.base.classifier(seed), method="vanilla")
        if self.kind == S_LEARNER:
            return SoloModel(self.base.classifier(seed), method="dummy")
        return ClassTransformation(self.base.classifier(seed))

    def params(self) -> dict[str, Any]:
        """Flat parameters for a tracking run: kind and base-learner settings."""
        return {"kind": self.kind, **{f"lgbm_{key}": value for key, value in asdict(self.base).items()}}

    def fit(self, rows: pd.DataFrame, treatment, outcome, *, seed: int = 0) -> "FittedMetaLearner":
        """`fit_uplift_model` on the contract's features of randomised `rows` (`RowLearner`)."""
        return FittedMetaLearner(fit_uplift_model(prepare_features(rows), treatment, outcome, self, seed=seed))


@dataclass(frozen=True)
class FittedMetaLearner:
    """A fitted scikit-uplift estimator behind the `FittedUplift` interface."""

    estimator: Any

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return predict_uplift(self.estimator, prepare_features(rows))


def _binary(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    return array.astype(int)


def check_randomised_sample(treatment, outcome) -> tuple[np.ndarray, np.ndarray]:
    """The treatment and outcome as 0/1 arrays, refused when no uplift can be learned:
    an arm without people, or an outcome that never or always happens."""
    treatment = _binary(treatment, "treatment")
    outcome = _binary(outcome, "outcome")
    if len(treatment) != len(outcome):
        raise ValueError(f"treatment has {len(treatment)} rows but outcome has {len(outcome)}")
    if treatment.min() == treatment.max():
        raise ValueError("need both treated and control rows to learn an uplift")
    if outcome.min() == outcome.max():
        raise ValueError("the outcome takes a single value: there is nothing to learn")
    return treatment, outcome


def fit_uplift_model(
    features: pd.DataFrame, treatment, outcome, learner: UpliftLearner, *, seed: int = 0
):
    """Fit `learner` on randomised rows; returns the fitted sklift estimator.

    features: numeric columns only (encode categories before, e.g. as in the Hillstrom
    benchmark); treatment: 1 emailed, 0 not; outcome: 1 when the outcome happened.
    """
    treatment, outcome = check_randomised_sample(treatment, outcome)
    if len(features) != len(treatment):
        raise ValueError(f"features have {len(features)} rows but treatment has {len(treatment)}")
    if learner.kind == CLASS_TRANSFORMATION:
        treated_share = float(treatment.mean())
        if abs(treated_share - 0.5) > CLASS_TRANSFORMATION_MAX_IMBALANCE:
            raise ValueError(
                f"class transformation needs about half the rows treated; {treated_share:.1%} are. "
                "Use a T- or S-learner for unbalanced arms."
            )
    model = learner.build(seed)
    model.fit(features, outcome, treatment)
    return model


def predict_uplift(model, features: pd.DataFrame) -> np.ndarray:
    """The predicted increase in the outcome's probability if emailed, one per row (an
    empty array for no rows: LightGBM refuses to predict on none)."""
    if len(features) == 0:
        return np.empty(0, dtype=float)
    return np.asarray(model.predict(features), dtype=float)


# -- metrics (scikit-uplift's definitions) --------------------------------------------------


def uplift_at_k(outcome, uplift, treatment, k: float = 0.3) -> float:
    """Treated response rate minus control response rate among the top `k` share of each
    group by predicted uplift (sklift ``strategy='by_group'``: k is taken per group)."""
    from sklift.metrics import uplift_at_k as sklift_uplift_at_k

    return float(sklift_uplift_at_k(outcome, uplift, treatment, strategy="by_group", k=k))


def qini_auc(outcome, uplift, treatment) -> float:
    """Area between the Qini curve and the random line, over the same area of the perfect
    ranking (sklift ``qini_auc_score``): 0 is random targeting, 1 perfect."""
    from sklift.metrics import qini_auc_score

    return float(qini_auc_score(outcome, uplift, treatment))


def uplift_auc(outcome, uplift, treatment) -> float:
    """AUUC: the uplift curve's normalised area, as ``qini_auc`` is the Qini curve's
    (sklift ``uplift_auc_score``)."""
    from sklift.metrics import uplift_auc_score

    return float(uplift_auc_score(outcome, uplift, treatment))


def weighted_qini_auc(outcome, uplift, treatment, counts) -> np.ndarray:
    """``qini_auc`` of several resamples at once. ``counts`` is (rows, resamples): how often
    each row is in each resample (a bootstrap draw, as counts). Each result equals
    scikit-uplift's ``qini_auc_score`` on that resample, as the tests check: the same curve
    (ties grouped by score), trapezoids and perfect curve (negative effects included). The
    rows are sorted once, not once per resample. A row counted 0 times adds a point equal to
    the one before it, so no area."""
    outcome, treatment = np.asarray(outcome, dtype=bool), np.asarray(treatment, dtype=bool)
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[:, None] if counts.ndim == 1 else counts

    def area(score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(score, kind="mergesort")[::-1]
        ends = np.r_[np.flatnonzero(np.diff(score[order])), len(order) - 1]  # last row of each tie group
        w, y, t = counts[order], outcome[order], treatment[order]

        def running(mask=None) -> np.ndarray:
            return np.cumsum(w if mask is None else np.where(mask[:, None], w, 0.0), axis=0)[ends]

        num_all, num_treated, y_treated, y_control = running(), running(t), running(y & t), running(y & ~t)
        num_control = num_all - num_treated
        ratio = np.divide(num_treated, num_control, out=np.zeros_like(num_treated), where=num_control != 0)
        zero = np.zeros((1, w.shape[1]))
        x, curve = np.concatenate([zero, num_all]), np.concatenate([zero, y_treated - y_control * ratio])
        return np.trapezoid(curve, x, axis=0), x[-1], curve[-1]

    actual, x_last, y_last = area(np.asarray(uplift, dtype=float))
    perfect, _, _ = area(outcome.astype(float) * np.where(treatment, 1.0, -1.0))
    baseline = x_last * y_last / 2
    return (actual - baseline) / (perfect - baseline)
