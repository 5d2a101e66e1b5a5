"""Checks on a day's propensity scores: in range, one per eligible person, not collapsed.

Each returns a `ScoreCheck` (name, passed, a sentence, figures); the orchestration turns them
into asset check results. Keys are compared, never shown: the sentences carry counts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

IN_RANGE = "scores_in_range"
ONE_PER_ELIGIBLE_PERSON = "one_score_per_eligible_person"
NOT_COLLAPSED = "scores_not_collapsed"
SCORE_CHECKS = (IN_RANGE, ONE_PER_ELIGIBLE_PERSON, NOT_COLLAPSED)

# A day's scores have collapsed when they (nearly) all say the same: fewer distinct values
# than this, or a standard deviation below MIN_SCORE_STD.
MIN_DISTINCT_SCORES = 10
MIN_SCORE_STD = 1e-3


@dataclass(frozen=True)
class ScoreCheck:
    name: str
    passed: bool
    description: str
    figures: dict = field(default_factory=dict)


def check_scores(scores: pd.DataFrame, eligible_keys: pd.Series) -> list[ScoreCheck]:
    """The three checks of `scores` (columns subscriber_key, propensity_score) against the
    day's eligible subscriber keys."""
    values = pd.to_numeric(scores["propensity_score"], errors="coerce").to_numpy(dtype=float)
    missing = int(np.isnan(values).sum())
    outside = int(((values < 0) | (values > 1)).sum())
    in_range = ScoreCheck(
        IN_RANGE, missing == 0 and outside == 0,
        f"{len(values):,} scores: {outside:,} outside [0, 1], {missing:,} missing",
        {"scores": len(values), "outside_0_1": outside, "missing": missing},
    )

    keys = scores["subscriber_key"]
    eligible = set(eligible_keys)
    duplicated = int(keys.duplicated().sum())
    scored = set(keys)
    not_scored, not_eligible = len(eligible - scored), len(scored - eligible)
    one_each = ScoreCheck(
        ONE_PER_ELIGIBLE_PERSON, duplicated == 0 and not_scored == 0 and not_eligible == 0,
        f"{len(eligible):,} eligible, {len(scored):,} scored: {not_scored:,} eligible without a score, "
        f"{not_eligible:,} scored but not eligible, {duplicated:,} scored twice",
        {"eligible": len(eligible), "scored": len(scored), "eligible_not_scored": not_scored,
         "scored_not_eligible": not_eligible, "duplicates": duplicated},
    )

    finite = values[np.isfinite(values)]
    if len(finite) < MIN_DISTINCT_SCORES:
        spread = ScoreCheck(NOT_COLLAPSED, True, f"only {len(finite)} score(s): too few to judge their spread",
                            {"scores": len(finite)})
    else:
        distinct, std = int(len(np.unique(finite))), float(finite.std())
        spread = ScoreCheck(
            NOT_COLLAPSED, distinct >= MIN_DISTINCT_SCORES and std >= MIN_SCORE_STD,
            f"{distinct:,} distinct scores, standard deviation {std:.4f} (collapsed below "
            f"{MIN_DISTINCT_SCORES} distinct or {MIN_SCORE_STD})",
            {"distinct_scores": distinct, "std": round(std, 4), "p10": round(float(np.quantile(finite, 0.1)), 4),
             "p50": round(float(np.quantile(finite, 0.5)), 4), "p90": round(float(np.quantile(finite, 0.9)), 4)},
        )
    return [in_range, one_each, spread]
