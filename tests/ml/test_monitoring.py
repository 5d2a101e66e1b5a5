"""Live performance of the scoring version once labels mature, and which features are watched."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from ml.propensity.monitoring import MAX_AUC_DECAY, important_features, latest_matured_day, live_performance


def test_a_scoring_day_matures_when_its_whole_label_window_has_closed():
    cutoffs = pd.Series(
        pd.to_datetime(["2026-07-01 23:59:59", "2026-07-02 23:59:59", "2026-07-03 23:59:59"]),
        index=[date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 3)],
    )
    assert latest_matured_day(cutoffs, 14, datetime(2026, 7, 15, 23, 59, 58)) is None
    assert latest_matured_day(cutoffs, 14, datetime(2026, 7, 15, 23, 59, 59)) == date(2026, 7, 1)
    assert latest_matured_day(cutoffs, 14, datetime(2026, 7, 17, 23, 59, 59)) == date(2026, 7, 3)


def day_of_scores(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.random(n) * 0.2
    keys = [f"k{i}" for i in range(n)]
    buyers = rng.random(n) < truth
    scores = pd.DataFrame({
        "subscriber_key": keys, "cutoff_at": pd.Timestamp("2026-07-01 23:59:59"),
        "propensity_score": truth, "model_version": "3",
    })
    # Buyers in the window, one order just after it (must not count), and one before it.
    orders = pd.DataFrame({
        "subscriber_key": [k for k, b in zip(keys, buyers) if b] + ["k0", "k1"],
        "occurred_at": [pd.Timestamp("2026-07-05")] * int(buyers.sum())
        + [pd.Timestamp("2026-07-15 23:59:59"), pd.Timestamp("2026-06-30")],
    })
    return scores, orders, buyers


def test_live_auc_reads_exactly_the_label_window_and_measures_decay_against_promotion():
    from sklearn.metrics import roc_auc_score

    scores, orders, buyers = day_of_scores()
    live = live_performance(scores, orders, horizon_days=14, promoted_auc=0.80)
    assert live.positives == int(buyers.sum()) and live.rows == 2000 and live.model_version == "3"
    assert live.auc == pytest.approx(roc_auc_score(buyers, scores["propensity_score"]))
    assert live.decay == pytest.approx(0.80 - live.auc)
    assert live.decayed == (live.decay > MAX_AUC_DECAY)
    shuffled = scores.assign(propensity_score=np.random.default_rng(1).permutation(scores["propensity_score"]))
    assert live_performance(shuffled, orders, horizon_days=14, promoted_auc=0.80).decayed


def test_live_auc_is_not_read_on_too_few_buyers_or_mixed_days():
    scores, orders, _ = day_of_scores(200)
    assert live_performance(scores, orders.head(5), horizon_days=14, promoted_auc=0.8) is None
    mixed = scores.assign(cutoff_at=[pd.Timestamp("2026-07-01"), pd.Timestamp("2026-07-02")] * 100)
    with pytest.raises(ValueError, match="one scoring day"):
        live_performance(mixed, orders, horizon_days=14, promoted_auc=0.8)


def test_the_watched_features_are_the_top_gain_shares():
    importance = [
        {"feature": "a", "gain_share": 0.1}, {"feature": "b", "gain_share": 0.5},
        {"feature": "c", "gain_share": 0.0}, {"feature": "d", "gain_share": 0.4},
    ]
    assert important_features(importance, n=3) == ["b", "d", "a"]
    assert important_features(importance, n=5) == ["b", "d", "a"]  # zero gain is never watched
