"""The checks on a day's scores: in range, one per eligible person, not collapsed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.propensity.score_checks import IN_RANGE, NOT_COLLAPSED, ONE_PER_ELIGIBLE_PERSON, check_scores


def _scores(keys, values) -> pd.DataFrame:
    return pd.DataFrame({"subscriber_key": keys, "propensity_score": values})


def _by_name(scores, eligible):
    return {check.name: check for check in check_scores(scores, pd.Series(eligible))}


KEYS = [f"k{i}" for i in range(50)]
GOOD = np.linspace(0.01, 0.6, 50)


def test_good_scores_pass_every_check():
    checks = _by_name(_scores(KEYS, GOOD), KEYS)
    assert all(check.passed for check in checks.values()), checks
    assert checks[NOT_COLLAPSED].figures["distinct_scores"] == 50


def test_a_score_outside_0_1_or_missing_fails_the_range_check():
    values = GOOD.copy()
    values[3], values[7] = 1.2, np.nan
    check = _by_name(_scores(KEYS, values), KEYS)[IN_RANGE]
    assert not check.passed and check.figures == {"scores": 50, "outside_0_1": 1, "missing": 1}


def test_a_missing_an_extra_or_a_duplicate_score_fails_the_one_per_person_check():
    keys = KEYS[:-1] + ["k0"]  # k49 unscored, k0 twice
    check = _by_name(_scores(keys, GOOD), KEYS + ["k50"])[ONE_PER_ELIGIBLE_PERSON]
    assert not check.passed
    assert {k: check.figures[k] for k in ("eligible_not_scored", "scored_not_eligible", "duplicates")} == {
        "eligible_not_scored": 2, "scored_not_eligible": 0, "duplicates": 1}
    stranger = _by_name(_scores(KEYS + ["x"], np.append(GOOD, 0.3)), KEYS)[ONE_PER_ELIGIBLE_PERSON]
    assert not stranger.passed and stranger.figures["scored_not_eligible"] == 1


def test_scores_that_all_say_the_same_fail_the_collapse_check():
    assert not _by_name(_scores(KEYS, np.full(50, 0.07)), KEYS)[NOT_COLLAPSED].passed
    nearly = 0.07 + np.arange(50) * 1e-6  # 50 distinct values, no spread
    assert not _by_name(_scores(KEYS, nearly), KEYS)[NOT_COLLAPSED].passed
    few = _by_name(_scores(KEYS[:3], [0.1, 0.1, 0.1]), KEYS[:3])[NOT_COLLAPSED]
    assert few.passed and "too few" in few.description
