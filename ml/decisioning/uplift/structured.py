"""A low-variance uplift model: the propensity times a relative lift with few parameters.

How an email's effect arises (docs/models.md, "What the true uplift depends on"): an opened
or clicked email multiplies the person's purchase hazard for a few days. The incremental
purchase chance is therefore roughly the base chance times a *relative* lift that grows with
how often the person opens (their engagement) and shrinks with the emails they had just
before (fatigue). A flexible learner (a T-learner of two LightGBMs) has to find that shape in
a contrast of a fraction of a percentage point; this one is told the shape and estimates six
numbers.

One Poisson regression (statsmodels GLM, log link) on randomised rows:

    log E[purchase] = a0 + a1 log p + a2 z + t (b0 + b1 z + b2 s)

- ``p``: the propensity score (PROPENSITY_BASELINE column), clipped to [1e-6, 1];
- ``z``: log of the 90-day open rate shrunk toward the training rows' overall rate by
  ``prior_sends`` pseudo-sends, over that overall rate (0 for an average opener);
- ``s``: sends in the 7 days before, capped at ``max_recent_sends``;
- ``t``: 1 when emailed.

The uplift estimate is ``exp(a0 + a1 log p + a2 z) * (exp(b0 + b1 z + b2 s) - 1)``: the
fitted chance without the email times the relative lift. With a rare outcome the Poisson
mean is the probability; the ranking, which is what the gate judges, does not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.decisioning.uplift.learners import PROPENSITY_BASELINE, check_randomised_sample

PROPENSITY_LIFT = "propensity_lift"
# Columns of the feature contract the lift reads, and the score it multiplies.
LIFT_FEATURES = ("opens_90d", "sends_90d", "sends_7d")
TERMS = ("intercept", "log_propensity", "engagement", "treated", "treated_x_engagement", "treated_x_recent_sends")
MIN_PROPENSITY = 1e-6


@dataclass(frozen=True)
class PropensityLiftLearner:
    """The structured learner's name and its two fixed settings (not fitted)."""

    name: str = PROPENSITY_LIFT
    prior_sends: float = 5.0  # pseudo-sends at the overall open rate added to each person's history
    max_recent_sends: int = 5
    kind: str = PROPENSITY_LIFT

    def params(self) -> dict[str, object]:
        return {"kind": self.kind, "prior_sends": self.prior_sends, "max_recent_sends": self.max_recent_sends,
                "terms": ",".join(TERMS)}

    def fit(self, rows: pd.DataFrame, treatment, outcome, baseline_column: str = PROPENSITY_BASELINE, *,
            seed: int = 0) -> FittedPropensityLift:
        """Fit on randomised rows (LIFT_FEATURES and ``baseline_column``, the propensity score);
        the `RowLearner` interface. The GLM's fit is deterministic: `seed` is accepted for the
        interface and changes nothing."""
        from statsmodels.genmod import families
        from statsmodels.genmod.generalized_linear_model import GLM

        treatment, outcome = check_randomised_sample(treatment, outcome)
        if len(rows) != len(treatment):
            raise ValueError(f"rows have {len(rows)} entries but treatment has {len(treatment)}")
        sends, opens = _counts(rows)
        if sends.sum() == 0:
            raise ValueError("no sends in the last 90 days in any row: the engagement cannot be measured")
        open_rate = float(opens.sum() / sends.sum())
        model = FittedPropensityLift(self, open_rate, baseline_column, np.zeros(len(TERMS)))
        design = model.design(rows, treatment)
        result = GLM(outcome, design, family=families.Poisson()).fit()
        return FittedPropensityLift(self, open_rate, baseline_column, np.asarray(result.params, dtype=float))


@dataclass(frozen=True)
class FittedPropensityLift:
    learner: PropensityLiftLearner
    open_rate: float  # the training rows' overall 90-day open rate, the shrinkage target
    baseline_column: str
    coefficients: np.ndarray  # in TERMS order

    def design(self, rows: pd.DataFrame, treatment) -> np.ndarray:
        if self.baseline_column not in rows.columns:
            raise ValueError(f"the propensity lift model needs the propensity score in column {self.baseline_column!r}")
        sends, opens = _counts(rows)
        prior = self.learner.prior_sends
        engagement = np.log((opens + prior * self.open_rate) / (sends + prior) / self.open_rate)
        recent = np.minimum(pd.to_numeric(rows["sends_7d"]).fillna(0).to_numpy(float), self.learner.max_recent_sends)
        propensity = np.clip(pd.to_numeric(rows[self.baseline_column]).to_numpy(float), MIN_PROPENSITY, 1.0)
        t = np.asarray(treatment, dtype=float)
        return np.column_stack([np.ones(len(rows)), np.log(propensity), engagement, t, t * engagement, t * recent])

    def relative_lift(self, rows: pd.DataFrame) -> np.ndarray:
        """exp(b0 + b1 z + b2 s) - 1 per row: the email's proportional change of the chance."""
        x = self.design(rows, np.ones(len(rows)))
        return np.exp(x[:, 3:] @ self.coefficients[3:]) - 1.0

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """The estimated uplift per row: the chance without the email times the relative lift."""
        if len(rows) == 0:
            return np.empty(0, dtype=float)
        x = self.design(rows, np.zeros(len(rows)))
        return np.exp(x[:, :3] @ self.coefficients[:3]) * self.relative_lift(rows)


def _counts(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    missing = [column for column in LIFT_FEATURES if column not in rows.columns]
    if missing:
        raise ValueError(f"the propensity lift model needs columns {missing}")
    sends = pd.to_numeric(rows["sends_90d"]).fillna(0).clip(lower=0).to_numpy(float)
    opens = np.minimum(pd.to_numeric(rows["opens_90d"]).fillna(0).clip(lower=0).to_numpy(float), sends)
    return sends, opens
