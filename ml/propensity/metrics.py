"""Evaluation figures shared by the promotion gate and the model cards.

AUCs come with percentile-bootstrap intervals (rows resampled with replacement); a paired
bootstrap resamples the same rows for two models, so their difference is judged on equal
footing and the noise both share (which rows happened to be drawn) cancels. Calibration uses
equal-frequency bins, so every bin holds enough rows to mean something even when most scores
are small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Elements per (resamples x rows) block: bounds the bootstrap's memory (a few tens of MB)
# whatever the number of rows.
_BLOCK_ELEMENTS = 2_000_000

SEGMENT_COLUMNS = ["attribute", "group", "n", "n_positive", "auc", "auc_low", "auc_high"]


def roc_auc_score(labels, scores) -> float:
    """sklearn's ROC AUC, imported when first needed: loading the Dagster definitions imports
    this module (through the promotion gate's criteria), and sklearn with scipy.stats costs
    about 0.8 s of the 5 s that loading may take (issue 15)."""
    from sklearn.metrics import roc_auc_score as sklearn_roc_auc_score

    return float(sklearn_roc_auc_score(labels, scores))


@dataclass(frozen=True)
class AucEstimate:
    """ROC AUC on all rows, with a percentile-bootstrap interval."""

    auc: float
    low: float
    high: float
    n: int
    n_positive: int


@dataclass(frozen=True)
class AucDifference:
    """auc_a - auc_b on the same rows, with a paired-bootstrap interval."""

    difference: float
    low: float
    high: float
    auc_a: float
    auc_b: float
    n: int


def _labels(labels) -> np.ndarray:
    # A label of 0.7 or NaN cast silently to int would corrupt every figure; refuse it.
    try:
        values = np.asarray(labels, dtype=float)
    except (TypeError, ValueError):  # e.g. pandas NA in a nullable column
        raise ValueError("labels must be 0 or 1 (no missing values)") from None
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("labels must be a non-empty 1-d array")
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (no missing values)")
    return values.astype(np.int64)


def _scores(scores, n: int, what: str = "scores") -> np.ndarray:
    values = np.asarray(scores, dtype=float)
    if values.shape != (n,):
        raise ValueError(f"{what} must have one value per label ({n}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{what} must be finite (no NaN or inf)")
    return values


def _require_both_classes(labels: np.ndarray) -> None:
    if labels.min() == labels.max():
        raise ValueError(f"AUC is undefined: all {len(labels)} rows have label {int(labels[0])}")


def _check_bootstrap(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be strictly between 0 and 1")


def calibration_bins(labels, scores, n_bins: int = 10) -> pd.DataFrame:
    """Equal-frequency bins of the scores (lowest first): bin, n, mean_score, observed_rate.

    Rows are sorted by score (stable, so ties keep their input order) and split into
    ``n_bins`` groups whose sizes differ by at most one; fewer bins when there are fewer rows.
    """
    labels = _labels(labels)
    scores = _scores(scores, len(labels))
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    order = np.argsort(scores, kind="stable")
    groups = np.array_split(order, min(n_bins, len(scores)))
    return pd.DataFrame({
        "bin": np.arange(1, len(groups) + 1),
        "n": [len(g) for g in groups],
        "mean_score": [float(scores[g].mean()) for g in groups],
        "observed_rate": [float(labels[g].mean()) for g in groups],
    })


def expected_calibration_error(labels, scores, n_bins: int = 10) -> float:
    """Row-weighted mean |observed rate - mean score| over equal-frequency bins."""
    bins = calibration_bins(labels, scores, n_bins)
    weights = bins["n"] / bins["n"].sum()
    return float((weights * (bins["observed_rate"] - bins["mean_score"]).abs()).sum())


def _resampled_aucs(labels: np.ndarray, score_sets: list[np.ndarray], n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, len(score_sets)) AUCs, every score set on the same resamples; NaN for a
    resample that drew a single class.

    A resample is the original rows with multiplicities (how often each was drawn), so its AUC
    is the Mann-Whitney statistic with those counts as weights: the same number sklearn's
    ``roc_auc_score(..., sample_weight=counts)`` gives (ties count one half), which the tests
    check. Sorting the distinct scores once and counting draws per distinct score with
    ``np.bincount`` avoids sorting every resample, which ``rankdata`` per resample would do:
    that took over 2 s for 500 resamples of 20k rows.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    codes = []
    for scores in score_sets:
        distinct, code = np.unique(scores, return_inverse=True)
        codes.append((len(distinct), code))
    out = np.full((n_boot, len(score_sets)), np.nan)
    chunk = max(1, min(n_boot, _BLOCK_ELEMENTS // n))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        index = rng.integers(0, n, size=(size, n))
        drawn_labels = labels[index].ravel()
        positives = drawn_labels.reshape(size, n).sum(axis=1)
        negatives = n - positives
        valid = (positives > 0) & (negatives > 0)
        for k, (n_distinct, code) in enumerate(codes):
            # Key each draw by (resample, distinct score) so one bincount counts them all.
            keys = (np.arange(size)[:, None] * n_distinct + code[index]).ravel()
            pos = np.bincount(keys, weights=drawn_labels, minlength=size * n_distinct).reshape(size, n_distinct)
            neg = np.bincount(keys, minlength=size * n_distinct).reshape(size, n_distinct) - pos
            below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
            pairs = (pos * (below + 0.5 * neg)).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start : start + size, k] = np.where(valid, pairs / (positives * negatives), np.nan)
    return out


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:  # every resample drew one class (a handful of rows): no interval
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def bootstrap_auc(labels, scores, *, n_boot: int = 500, seed: int = 0, confidence: float = 0.95) -> AucEstimate:
    """AUC with a percentile-bootstrap interval (resamples that drew one class are skipped)."""
    labels = _labels(labels)
    scores = _scores(scores, len(labels))
    _require_both_classes(labels)
    _check_bootstrap(n_boot, confidence)
    low, high = _interval(_resampled_aucs(labels, [scores], n_boot, seed)[:, 0], confidence)
    return AucEstimate(
        auc=float(roc_auc_score(labels, scores)), low=low, high=high, n=len(labels), n_positive=int(labels.sum())
    )


def paired_bootstrap_auc_difference(
    labels, scores_a, scores_b, *, n_boot: int = 500, seed: int = 0, confidence: float = 0.95
) -> AucDifference:
    """AUC(a) - AUC(b) on the same rows; each bootstrap replicate resamples the rows once for both."""
    labels = _labels(labels)
    a = _scores(scores_a, len(labels), "scores_a")
    b = _scores(scores_b, len(labels), "scores_b")
    _require_both_classes(labels)
    _check_bootstrap(n_boot, confidence)
    resampled = _resampled_aucs(labels, [a, b], n_boot, seed)
    low, high = _interval(resampled[:, 0] - resampled[:, 1], confidence)
    auc_a, auc_b = float(roc_auc_score(labels, a)), float(roc_auc_score(labels, b))
    return AucDifference(difference=auc_a - auc_b, low=low, high=high, auc_a=auc_a, auc_b=auc_b, n=len(labels))


# The group of a row whose attribute is null: missing data, not a group of its own.
MISSING_GROUP = "unknown"


def segment_groups(segments: pd.DataFrame, attribute: str) -> pd.Series:
    """The group of every row for one attribute, as text, with nulls as MISSING_GROUP."""
    column = segments[attribute]
    return column.astype("object").where(column.notna(), MISSING_GROUP).astype(str)


def segment_aucs(
    labels, scores, segments: pd.DataFrame, *, min_rows: int = 200, n_boot: int = 200, seed: int = 0
) -> pd.DataFrame:
    """Per attribute (column of ``segments``) and group: n, n_positive, auc, auc_low, auc_high.

    Rows of ``segments`` match ``labels`` by position. Groups with fewer than ``min_rows``
    rows or a single class keep their row with NaN AUC, so a reader sees every group,
    including the ones too small to judge. ``n_boot=0`` gives point AUCs only (interval NaN).
    """
    labels = _labels(labels)
    scores = _scores(scores, len(labels))
    if len(segments) != len(labels):
        raise ValueError(f"segments has {len(segments)} rows for {len(labels)} labels")
    rows = []
    for attribute in segments.columns:
        groups = segment_groups(segments, attribute).to_numpy()
        for group in sorted(set(groups)):
            mask = groups == group
            n, positives = int(mask.sum()), int(labels[mask].sum())
            auc = low = high = float("nan")
            if n >= min_rows and 0 < positives < n:
                if n_boot > 0:
                    estimate = bootstrap_auc(labels[mask], scores[mask], n_boot=n_boot, seed=seed)
                    auc, low, high = estimate.auc, estimate.low, estimate.high
                else:
                    auc = float(roc_auc_score(labels[mask], scores[mask]))
            rows.append(dict(zip(SEGMENT_COLUMNS, (attribute, group, n, positives, auc, low, high))))
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


# The diagnostic plots logged on every training run, by artifact file name.
DIAGNOSTIC_PLOTS = ("plots/roc_curve.png", "plots/precision_recall.png", "plots/calibration.png",
                    "plots/feature_importance.png")
TOP_IMPORTANCE_PLOTTED = 15


def diagnostic_figures(labels, scores, importance: pd.DataFrame) -> dict:
    """ROC, precision-recall, calibration (equal-frequency bins) and gain-importance figures of
    a model on its test rows, by DIAGNOSTIC_PLOTS name. Plain matplotlib `Figure` objects
    (no pyplot, so no process-wide figure state); `importance` has columns feature, gain_share."""
    from matplotlib.figure import Figure
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    y = _labels(labels)
    p = _scores(scores, len(y))
    _require_both_classes(y)
    roc, pr, calibration, gains = (Figure(figsize=(5, 4), layout="constrained") for _ in range(4))

    fpr, tpr, _ = roc_curve(y, p)
    axes = roc.add_subplot()
    axes.plot(fpr, tpr, label=f"model (AUC {roc_auc_score(y, p):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test rows)")
    axes.legend(loc="lower right")

    precision, recall, _ = precision_recall_curve(y, p)
    axes = pr.add_subplot()
    axes.plot(recall, precision, label=f"model (AP {average_precision_score(y, p):.3f})")
    axes.axhline(y.mean(), linestyle="--", color="grey", label=f"base rate {y.mean():.3f}")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall (test rows)")
    axes.legend(loc="upper right")

    bins = calibration_bins(y, p)
    axes = calibration.add_subplot()
    top = float(max(bins["mean_score"].max(), bins["observed_rate"].max()))
    axes.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    axes.plot(bins["mean_score"], bins["observed_rate"], marker="o", label=f"model (ECE {expected_calibration_error(y, p):.4f})")
    axes.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration (equal-frequency bins)")
    axes.legend(loc="upper left")

    shown = importance.head(TOP_IMPORTANCE_PLOTTED).iloc[::-1]
    axes = gains.add_subplot()
    axes.barh(shown["feature"], shown["gain_share"])
    axes.set(xlabel="share of total gain", title=f"Feature importance (gain, top {len(shown)})")

    return dict(zip(DIAGNOSTIC_PLOTS, (roc, pr, calibration, gains), strict=True))
