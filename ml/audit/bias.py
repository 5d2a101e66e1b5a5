"""Bias audit of a model's decisions per group, with fairlearn's MetricFrame.

The decision audited is the one the pipeline takes: the top ``selection_share`` of people
by score are selected (emailed). Per group attribute (age band, gender, ...) we compare
the selection rate, the true-positive rate (of the people who did convert, the share
selected) and the AUC. A gap between the best and the worst group above ``max_gap`` is
flagged; groups with fewer than ``min_group_rows`` rows are shown but do not count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.propensity.metrics import MISSING_GROUP, segment_groups

AUDITED_METRICS = ("selection_rate", "true_positive_rate", "roc_auc")
# Metrics informed only by the people who converted: compared only between groups with enough of them.
POSITIVE_METRICS = ("true_positive_rate", "roc_auc")


@dataclass(frozen=True)
class BiasAudit:
    by_group: pd.DataFrame = field(repr=False)  # attribute, group, n, positives, selection_rate, true_positive_rate, roc_auc
    gaps: pd.DataFrame = field(repr=False)  # attribute, metric, gap, flagged
    selection_share: float
    max_gap: float
    min_group_rows: int
    min_group_positives: int = 30

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(
            f"{row.metric} differs by {row.gap:.3f} (95% interval from {row.gap_low:.3f}) between "
            f"{row.attribute} groups (max {self.max_gap:.2f})"
            for row in self.gaps.itertuples()
            if row.flagged
        )

    def to_dict(self) -> dict:
        return {
            "selection_share": self.selection_share,
            "max_gap": self.max_gap,
            "min_group_rows": self.min_group_rows,
            "min_group_positives": self.min_group_positives,
            "by_group": self.by_group.to_dict(orient="records"),
            "gaps": self.gaps.to_dict(orient="records"),
            "flagged": list(self.flagged),
        }


def _auc(y_true, y_score) -> float:
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) == 2 else float("nan")


def selected_top(scores, share: float) -> np.ndarray:
    """1 for the top ``share`` of rows by score (ties by position), else 0."""
    scores = np.asarray(scores, dtype=float)
    chosen = np.zeros(len(scores), dtype=int)
    chosen[np.argsort(-scores, kind="stable")[: int(round(share * len(scores)))]] = 1
    return chosen


def bias_audit(
    labels, scores, groups: pd.DataFrame, *, selection_share: float = 0.3, max_gap: float = 0.1,
    min_group_rows: int = 100, min_group_positives: int = 30, confidence: float = 0.95,
) -> BiasAudit:
    from fairlearn.metrics import MetricFrame, count, selection_rate, true_positive_rate

    if not 0 < selection_share < 1:
        raise ValueError("selection_share must be between 0 and 1")
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    selected = selected_top(scores, selection_share)
    by_group, gaps = [], []
    for attribute in groups.columns:
        values = segment_groups(groups, attribute).to_numpy()
        # selection_rate and TPR read the decision; the AUC reads the scores, hence two frames.
        decisions = MetricFrame(
            metrics={
                "selection_rate": selection_rate, "true_positive_rate": true_positive_rate, "n": count,
                "positives": lambda y_true, y_pred: int(np.sum(y_true)),
            },
            y_true=labels, y_pred=selected, sensitive_features=pd.Series(values, name=attribute),
        )
        ranking = MetricFrame(
            metrics={"roc_auc": _auc}, y_true=labels, y_pred=scores, sensitive_features=pd.Series(values, name=attribute)
        )
        table = decisions.by_group.join(ranking.by_group).reset_index().rename(columns={attribute: "group"})
        table["n"] = table["n"].astype(int)
        table["positives"] = table["positives"].astype(int)
        table.insert(0, "attribute", attribute)
        by_group.append(table)
        known = table.loc[table["group"] != MISSING_GROUP]
        for metric in AUDITED_METRICS:
            enough = known["positives"] >= min_group_positives if metric in POSITIVE_METRICS else known["n"] >= min_group_rows
            judged = known.loc[enough & known[metric].notna()]
            if len(judged) < 2:
                gaps.append({"attribute": attribute, "metric": metric, "gap": 0.0, "gap_low": 0.0, "flagged": False})
                continue
            best, worst = judged.loc[judged[metric].idxmax()], judged.loc[judged[metric].idxmin()]
            gap = float(best[metric] - worst[metric])
            low = _gap_lower_bound(metric, best, worst, labels, scores, values, selected, confidence)
            gaps.append({"attribute": attribute, "metric": metric, "gap": gap, "gap_low": low, "flagged": low > max_gap})
    columns = ["attribute", "group", "n", "positives", *AUDITED_METRICS]
    return BiasAudit(
        by_group=pd.concat(by_group, ignore_index=True)[columns] if by_group else pd.DataFrame(columns=columns),
        gaps=pd.DataFrame(gaps, columns=["attribute", "metric", "gap", "gap_low", "flagged"]),
        selection_share=selection_share, max_gap=max_gap, min_group_rows=min_group_rows,
        min_group_positives=min_group_positives,
    )


def _gap_lower_bound(metric, best, worst, labels, scores, values, selected, confidence: float) -> float:
    """Lower end of the ``confidence`` interval of (best - worst) for the two extreme groups.

    A gap is flagged only when even this lower end exceeds the threshold: with a few dozen
    converters per group, point gaps of 0.1 and more arise from noise alone. Rates use
    Newcombe's interval for a difference of proportions (statsmodels); the AUC a normal
    approximation with each group's bootstrap standard error.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep

    from ml.propensity.metrics import bootstrap_auc

    alpha = 1 - confidence
    in_best, in_worst = values == best["group"], values == worst["group"]
    if metric == "selection_rate":
        low, _ = confint_proportions_2indep(
            int(selected[in_best].sum()), int(in_best.sum()), int(selected[in_worst].sum()), int(in_worst.sum()),
            method="newcomb", alpha=alpha,
        )
        return float(low)
    if metric == "true_positive_rate":
        converted_best, converted_worst = in_best & (labels == 1), in_worst & (labels == 1)
        low, _ = confint_proportions_2indep(
            int(selected[converted_best].sum()), int(converted_best.sum()),
            int(selected[converted_worst].sum()), int(converted_worst.sum()), method="newcomb", alpha=alpha,
        )
        return float(low)
    from scipy.stats import norm

    a = bootstrap_auc(labels[in_best], scores[in_best], n_boot=200, confidence=confidence)
    b = bootstrap_auc(labels[in_worst], scores[in_worst], n_boot=200, confidence=confidence)
    z = norm.ppf(1 - alpha / 2)
    se = np.hypot((a.high - a.low) / (2 * z), (b.high - b.low) / (2 * z))
    return float(a.auc - b.auc - z * se)
