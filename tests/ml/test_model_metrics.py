"""Evaluation figures: bootstrap AUC intervals, paired differences, calibration, segments."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from ml.propensity.metrics import (
    _resampled_aucs,
    bootstrap_auc,
    calibration_bins,
    expected_calibration_error,
    paired_bootstrap_auc_difference,
    segment_aucs,
)


def binormal(n: int, separation: float, seed: int):
    """Negatives score N(0, 1), positives N(separation, 1): the true AUC is Phi(separation / sqrt 2)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    scores = rng.normal(size=n) + separation * labels
    return labels, scores, float(norm.cdf(separation / np.sqrt(2)))


def test_a_perfect_ranking_has_auc_one_and_an_interval_of_exactly_one():
    labels = np.array([0] * 40 + [1] * 10)
    estimate = bootstrap_auc(labels, np.arange(50), n_boot=200)
    assert (estimate.auc, estimate.low, estimate.high) == (1.0, 1.0, 1.0)
    assert (estimate.n, estimate.n_positive) == (50, 10)
    reversed_ = bootstrap_auc(labels, -np.arange(50), n_boot=200)
    assert (reversed_.auc, reversed_.low, reversed_.high) == (0.0, 0.0, 0.0)


def test_a_single_class_is_refused_and_named():
    with pytest.raises(ValueError, match="all 10 rows have label 0"):
        bootstrap_auc(np.zeros(10), np.arange(10))
    with pytest.raises(ValueError, match="all 5 rows have label 1"):
        paired_bootstrap_auc_difference(np.ones(5), np.arange(5), np.arange(5))


def test_labels_that_are_not_zero_or_one_are_refused():
    with pytest.raises(ValueError, match="0 or 1"):
        bootstrap_auc(np.array([0, 1, 0.5]), np.arange(3))
    with pytest.raises(ValueError, match="0 or 1"):
        bootstrap_auc(pd.Series([0, 1, None], dtype="Int64"), np.arange(3))
    with pytest.raises(ValueError, match="one value per label"):
        bootstrap_auc(np.array([0, 1, 1]), np.arange(4))


def test_every_resample_auc_is_sklearns_auc_with_the_draw_counts_as_weights():
    # The vectorised Mann-Whitney count is the one hand-written statistic here; sklearn is
    # the reference, with many tied scores (rounded) to exercise the half-credit for ties.
    rng = np.random.default_rng(3)
    labels = (rng.random(400) < 0.25).astype(int)
    scores = np.round(rng.random(400) + 0.4 * labels, 1)
    replicates = _resampled_aucs(labels, [scores], n_boot=30, seed=11)[:, 0]
    draws = np.random.default_rng(11).integers(0, 400, size=(30, 400))
    expected = [roc_auc_score(labels, scores, sample_weight=np.bincount(d, minlength=400)) for d in draws]
    np.testing.assert_allclose(replicates, expected, rtol=0, atol=1e-12)


def test_resamples_that_drew_a_single_class_are_skipped():
    # One positive in 20 rows: about a third of the resamples miss it.
    labels = np.array([1] + [0] * 19)
    replicates = _resampled_aucs(labels, [np.arange(20.0)], n_boot=300, seed=0)[:, 0]
    assert 0.2 < np.isnan(replicates).mean() < 0.5
    estimate = bootstrap_auc(labels, np.arange(20.0), n_boot=300)
    assert np.isfinite(estimate.low) and estimate.low <= estimate.auc <= estimate.high


def test_the_interval_covers_the_true_auc_about_as_often_as_it_claims():
    covered = []
    for seed in range(40):
        labels, scores, true_auc = binormal(800, separation=1.0, seed=seed)
        estimate = bootstrap_auc(labels, scores, n_boot=300, seed=seed)
        assert estimate.low < estimate.auc < estimate.high
        covered.append(estimate.low <= true_auc <= estimate.high)
    # A 95% interval: 40 draws would cover 33 or fewer times with probability < 1%.
    assert np.mean(covered) >= 34 / 40


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    labels, scores, _ = binormal(2000, 0.8, seed=1)
    same = paired_bootstrap_auc_difference(labels, scores, scores, n_boot=200)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    assert same.auc_a == same.auc_b == roc_auc_score(labels, scores) and same.n == 2000


def test_pairing_narrows_the_interval_of_two_similar_models():
    # Both models see the same rows: the luck of the draw cancels in the paired difference,
    # so its interval is far narrower than either model's own.
    labels, scores, _ = binormal(3000, 1.0, seed=2)
    other = scores + np.random.default_rng(9).normal(scale=0.3, size=len(scores))
    paired = paired_bootstrap_auc_difference(labels, scores, other, n_boot=300)
    own = bootstrap_auc(labels, scores, n_boot=300)
    assert paired.difference == pytest.approx(roc_auc_score(labels, scores) - roc_auc_score(labels, other))
    assert paired.low < paired.difference < paired.high
    assert (paired.high - paired.low) < 0.5 * (own.high - own.low)


def test_twenty_thousand_rows_and_five_hundred_resamples_take_well_under_two_seconds():
    labels, scores, _ = binormal(20_000, 1.0, seed=4)
    started = time.perf_counter()
    bootstrap_auc(labels, scores, n_boot=500)
    assert time.perf_counter() - started < 2.0


def test_calibration_bins_are_equal_frequency_sorted_by_score():
    scores = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    labels = (scores > 0.45).astype(int)
    bins = calibration_bins(labels, scores, n_bins=3)
    assert bins.columns.tolist() == ["bin", "n", "mean_score", "observed_rate"]
    assert bins["bin"].tolist() == [1, 2, 3] and bins["n"].tolist() == [4, 3, 3]
    assert bins["mean_score"].tolist() == pytest.approx([0.15, 0.5, 0.8])
    assert bins["observed_rate"].tolist() == pytest.approx([0.0, 2 / 3, 1.0])
    # Fewer rows than bins: one bin per row.
    assert calibration_bins([0, 1], [0.2, 0.6], n_bins=10)["n"].tolist() == [1, 1]


def test_expected_calibration_error_by_hand():
    scores = np.array([0.2] * 3 + [0.5] * 3 + [0.9] * 3)
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 1, 1])
    # Bins of three: observed 1/3, 2/3, 1 against 0.2, 0.5, 0.9, each weighing a third.
    expected = (abs(1 / 3 - 0.2) + abs(2 / 3 - 0.5) + abs(1 - 0.9)) / 3
    assert expected_calibration_error(labels, scores, n_bins=3) == pytest.approx(expected)
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4, n_bins=2) == pytest.approx(0.0)


def test_segment_aucs_keep_every_group_including_small_and_unknown_ones():
    labels, scores, _ = binormal(1200, 1.0, seed=5)
    n = len(labels)
    segments = pd.DataFrame({
        "tenure_band": np.where(np.arange(n) < 60, "0-89d", "90d+"),
        "source": pd.Series(np.where(np.arange(n) % 4 == 0, None, "web"), dtype="object"),
    })
    labels[:60] = 0  # the small group also has a single class
    table = segment_aucs(labels, scores, segments, min_rows=200, n_boot=100)
    assert table.columns.tolist() == ["attribute", "group", "n", "n_positive", "auc", "auc_low", "auc_high"]
    rows = table.set_index(["attribute", "group"])
    assert set(rows.index) == {("tenure_band", "0-89d"), ("tenure_band", "90d+"), ("source", "unknown"), ("source", "web")}
    small = rows.loc[("tenure_band", "0-89d")]
    assert small["n"] == 60 and small["n_positive"] == 0 and np.isnan(small[["auc", "auc_low", "auc_high"]]).all()
    for group in [("tenure_band", "90d+"), ("source", "unknown"), ("source", "web")]:
        row = rows.loc[group]
        assert row["auc_low"] < row["auc"] < row["auc_high"]
    assert rows.loc[("source", "unknown"), "n"] == n // 4
    web = (segments["source"] == "web").to_numpy()
    assert rows.loc[("source", "web"), "auc"] == pytest.approx(roc_auc_score(labels[web], scores[web]))
    # n_boot=0: point AUCs only.
    points = segment_aucs(labels, scores, segments, min_rows=200, n_boot=0)
    assert points["auc"].equals(table["auc"]) and points["auc_low"].isna().all()
    with pytest.raises(ValueError, match="segments has 10 rows"):
        segment_aucs(labels, scores, segments.head(10))
