"""Bayesian readout of rates: Beta-Binomial posteriors, chance to beat control, expected loss.

Each arm's rate has a Beta(a, b) prior, declared up front (uniform Beta(1, 1) by default);
after s successes in n units its posterior is Beta(a + s, b + n - s) (conjugacy; scipy's
`beta` distribution carries it). For an arm A against control C:

- chance to beat control  P(p_A > p_C) = integral of f_A(x) F_C(x) dx;
- expected loss of shipping A  E[max(p_C - p_A, 0)]: the conversion rate given up, on
  average, if A is shipped and control was in fact better; and of keeping control,
  E[max(p_A - p_C, 0)]. Using E[p_C 1{p_C > x}] = E[p_C] * P(Beta(a_C + 1, b_C) > x),
  E[max(p_C - x, 0)] = E[p_C] * sf_{Beta(a_C + 1, b_C)}(x) - x * sf_C(x), integrated against f_A.

scipy has no call for the comparison of two Beta variables, so the two one-dimensional
integrals are taken by Gauss-Legendre quadrature, piecewise (`_integrate_over`), over
scipy's Beta densities and tails
(the closed sums, e.g. Evan Miller's "Formulas for Bayesian A/B testing", need integer
parameters and so do not cover every declared prior). tests/ml/test_experiment_statistics.py
checks both figures against a seeded Monte Carlo estimate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

BAYESIAN_METHOD = "Beta-Binomial posteriors; chance to beat control and expected loss by numerical integration"

# Posterior mass left outside the integration range: far below any figure reported.
_TAIL_MASS = 1e-12
# Where the integration range is split (`_integrate_over`): quantiles of the arm's posterior
# and of the control's, and Gauss-Legendre nodes and weights on [-1, 1] for each piece.
_ARM_CUTS = np.array([1e-3, 0.25, 0.5, 0.75, 1 - 1e-3])
_CONTROL_CUTS = np.array([_TAIL_MASS, 0.25, 0.5, 0.75])
_GAUSS_LEGENDRE = np.polynomial.legendre.leggauss(64)


@dataclass(frozen=True)
class BetaPrior:
    """A Beta(alpha, beta) prior for a rate, the same for every arm. Beta(1, 1) is uniform."""

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"prior {name} must be a positive number, got {value!r}")


UNIFORM_PRIOR = BetaPrior(1.0, 1.0)


def rate_posterior(successes: int, n: int, prior: BetaPrior = UNIFORM_PRIOR):
    """The posterior of a rate after `successes` in `n` units: a frozen scipy Beta."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    return stats.beta(prior.alpha + successes, prior.beta + n - successes)


def chance_to_beat(arm_posterior, control_posterior) -> float:
    """P(arm rate > control rate) for independent Beta posteriors (frozen scipy Betas)."""
    return _integrate_over(arm_posterior, control_posterior, control_posterior.cdf)


def expected_loss(arm_posterior, control_posterior) -> float:
    """E[max(control rate - arm rate, 0)]: the rate lost, on average, by choosing the arm."""
    a_control, b_control = control_posterior.args
    control_mean = control_posterior.mean()
    upper_tail_of_size_biased = stats.beta(a_control + 1, b_control).sf

    def shortfall_below_control(x: np.ndarray) -> np.ndarray:
        return control_mean * upper_tail_of_size_biased(x) - x * control_posterior.sf(x)

    return _integrate_over(arm_posterior, control_posterior, shortfall_below_control)


@dataclass(frozen=True)
class BayesianComparison:
    """An arm against control under Beta-Binomial posteriors."""

    arm: str
    control: str
    posterior_mean: float
    credible_low: float
    credible_high: float
    control_posterior_mean: float
    chance_to_beat_control: float
    expected_loss: float  # of shipping the arm
    expected_loss_of_control: float  # of keeping control instead


def compare_rates_bayesian(
    counts: pd.DataFrame, *, control: str, prior: BetaPrior = UNIFORM_PRIOR, credible_level: float = 0.95
) -> pd.DataFrame:
    """One row per non-control arm of `counts` (columns arm, successes, n): the fields of `BayesianComparison`."""
    for column in ("arm", "successes", "n"):
        if column not in counts.columns:
            raise ValueError(f"counts lack column {column!r}")
    if not 0 < credible_level < 1:
        raise ValueError("credible_level must be in (0, 1)")
    by_arm = {row.arm: (int(row.successes), int(row.n)) for row in counts.itertuples(index=False)}
    if len(by_arm) != len(counts):
        raise ValueError("counts have more than one row for an arm")
    if control not in by_arm:
        raise ValueError(f"counts have no row for the control arm {control!r}")
    control_posterior = rate_posterior(*by_arm[control], prior)
    rows = []
    for arm, (successes, n) in by_arm.items():
        if arm == control:
            continue
        posterior = rate_posterior(successes, n, prior)
        low, high = posterior.interval(credible_level)
        rows.append(
            asdict(BayesianComparison(
                arm=arm,
                control=control,
                posterior_mean=float(posterior.mean()),
                credible_low=float(low),
                credible_high=float(high),
                control_posterior_mean=float(control_posterior.mean()),
                chance_to_beat_control=chance_to_beat(posterior, control_posterior),
                expected_loss=expected_loss(posterior, control_posterior),
                expected_loss_of_control=expected_loss(control_posterior, posterior),
            ))
        )
    return pd.DataFrame(rows)


def _integrate_over(arm_posterior, control_posterior, function) -> float:
    """Integral of arm_posterior.pdf(x) * function(x) over the bulk of the arm's posterior.

    With thousands of units a posterior is a narrow spike in [0, 1]; integrating over [0, 1]
    blindly can step over it. The range is cut to all but `_TAIL_MASS` of the arm's mass,
    and split where either factor changes fastest: at the arm's and the control's quantiles
    (and where the control's own bulk begins and ends). Each piece is then smooth and a few
    standard deviations wide at most, and `_GAUSS_LEGENDRE` nodes per piece integrate it to
    within 1e-12, evaluated as one vectorised call of scipy's densities and tails (the
    readout compares every arm on every day; scipy's adaptive quad, calling them one point
    at a time, cost about a second a day).
    """
    low, high = arm_posterior.ppf(_TAIL_MASS), arm_posterior.isf(_TAIL_MASS)
    cuts = np.concatenate([
        arm_posterior.ppf(_ARM_CUTS), control_posterior.ppf(_CONTROL_CUTS), control_posterior.isf([_TAIL_MASS]),
    ])
    edges = np.unique(np.clip(np.concatenate([[low, high], cuts]), low, high))
    start, end = edges[:-1, None], edges[1:, None]
    nodes, weights = _GAUSS_LEGENDRE
    x = (start + end) / 2 + (end - start) / 2 * nodes
    value = float(np.sum((end - start) / 2 * weights * arm_posterior.pdf(x) * function(x)))
    return float(min(max(value, 0.0), 1.0))
