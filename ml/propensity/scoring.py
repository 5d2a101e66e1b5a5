"""Batch scoring of `marts.scoring_features` with a registered model version.

The model is always a `ModelService` loaded from the MLflow registry (the version behind
`champion`), so what scores subscribers is exactly the version the gate promoted, not a
file that happens to be on disk.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ml.propensity.service import ModelService

# Column -> SQL type of a scores frame. `model_run_id` is the MLflow run that trained the
# version (the registry's run of that version), so a score leads to its training run.
SCORE_COLUMN_TYPES = {
    "subscriber_key": "varchar",
    "cutoff_at": "timestamp_ns",
    "propensity_score": "double",
    "score_rank": "bigint",
    "score_decile": "bigint",
    "model_name": "varchar",
    "model_version": "varchar",
    "model_run_id": "varchar",
    "scored_at": "timestamp_ns",
}
SCORE_COLUMNS = tuple(SCORE_COLUMN_TYPES)


def score_subscribers(
    features: pd.DataFrame,
    model: ModelService,
    *,
    scored_at: datetime | None = None,
) -> pd.DataFrame:
    """One row per subscriber with the purchase propensity, its rank (1 = most likely) and
    decile (1 = top 10 %), plus which model version produced it and the MLflow run that
    trained that version. Columns: SCORE_COLUMNS."""
    missing = [c for c in ("subscriber_key", "cutoff_at") if c not in features.columns]
    if missing:
        raise ValueError(f"scoring features lack columns {missing}")
    if features["subscriber_key"].isna().any():
        raise ValueError("scoring features have rows without subscriber_key")
    if features["subscriber_key"].duplicated().any():
        raise ValueError("scoring features have more than one row per subscriber_key")
    scored_at = scored_at or datetime.now(timezone.utc)
    scores = model.predict(features)

    scored = pd.DataFrame(
        {
            "subscriber_key": features["subscriber_key"].to_numpy(),
            "cutoff_at": pd.to_datetime(features["cutoff_at"]).to_numpy(),
            "propensity_score": scores,
        }
    )
    # Highest score first; ties broken by key so ranks are reproducible.
    scored = scored.sort_values(["propensity_score", "subscriber_key"], ascending=[False, True], ignore_index=True)
    scored["score_rank"] = np.arange(1, len(scored) + 1, dtype="int64")
    scored["score_decile"] = score_deciles(scored["score_rank"].to_numpy(), len(scored))
    scored["model_name"] = model.model_name
    scored["model_version"] = str(model.version)
    scored["model_run_id"] = model.run_id
    scored["scored_at"] = pd.Timestamp(scored_at)
    return scored[list(SCORE_COLUMNS)]


def empty_scores() -> pd.DataFrame:
    """No scores, with SCORE_COLUMNS and the types score_subscribers gives: a day's slice
    when there is no model to score with, so readers of the table find a typed, empty day."""
    return pd.DataFrame({
        "subscriber_key": pd.Series(dtype="string"),
        "cutoff_at": pd.Series(dtype="datetime64[ns]"),
        "propensity_score": pd.Series(dtype="float64"),
        "score_rank": pd.Series(dtype="int64"),
        "score_decile": pd.Series(dtype="int64"),
        "model_name": pd.Series(dtype="string"),
        "model_version": pd.Series(dtype="string"),
        "model_run_id": pd.Series(dtype="string"),
        "scored_at": pd.Series(dtype="datetime64[ns]"),
    })[list(SCORE_COLUMNS)]


def no_champion_reason(model_name: str, decisions: pd.DataFrame) -> str:
    """Why nothing is scored when ``model_name`` has no champion, from its gate decisions
    (rows of ml.model_promotions, any order): the latest one's version, action and reasons."""
    mine = decisions.loc[decisions["model_name"] == model_name] if not decisions.empty else decisions
    if mine.empty:
        return f"no champion for {model_name}: no version has been trained yet"
    latest = mine.sort_values("decided_at").iloc[-1]
    return (
        f"no champion for {model_name}: the gate {latest['action']} v{latest['version']} "
        f"({latest['reasons']}), and no earlier version was promoted"
    )


def score_deciles(ranks: np.ndarray, n: int) -> np.ndarray:
    """Decile 1..10 of 1-based ``ranks`` among ``n`` rows; rank 1 is always in decile 1."""
    if n == 0:
        return np.array([], dtype="int64")
    return ((np.asarray(ranks, dtype="int64") - 1) * 10 // n + 1).astype("int64")


# Columns of the per-reason counts `nobody_scored_reason` reads: one row per (is_eligible,
# exclusion_reason) group of marts.subscriber_eligibility, with its number of subscribers.
ELIGIBILITY_COUNT_COLUMNS = ("is_eligible", "exclusion_reason", "subscribers")


def nobody_scored_reason(eligibility_counts: pd.DataFrame, *, top: int = 3) -> str:
    """Why a scoring day has no rows, from reason codes and counts only (no keys, no PII):
    e.g. "0 eligible of 4,367: no_consent_record 4,367". The ``top`` most frequent exclusion
    reasons are named (most first, ties by name), the rest summed. ``eligibility_counts`` has
    ELIGIBILITY_COUNT_COLUMNS; a null is_eligible counts as excluded (consent fails closed)."""
    missing = [c for c in ELIGIBILITY_COUNT_COLUMNS if c not in eligibility_counts.columns]
    if missing:
        raise ValueError(f"eligibility counts lack columns {missing}")
    counts = eligibility_counts.assign(
        subscribers=pd.to_numeric(eligibility_counts["subscribers"]).fillna(0).astype("int64"),
        is_eligible=eligibility_counts["is_eligible"].astype("boolean").fillna(False).astype(bool),
        exclusion_reason=eligibility_counts["exclusion_reason"].astype("object").where(
            eligibility_counts["exclusion_reason"].notna(), "no_reason_recorded"),
    )
    total = int(counts["subscribers"].sum())
    if total == 0:
        return "0 eligible of 0: marts.subscriber_eligibility has no subscribers"
    eligible = int(counts.loc[counts["is_eligible"], "subscribers"].sum())
    by_reason = (
        counts.loc[~counts["is_eligible"]].groupby("exclusion_reason")["subscribers"].sum()
        .reset_index().sort_values(["subscribers", "exclusion_reason"], ascending=[False, True])
    )
    named = [f"{row.exclusion_reason} {int(row.subscribers):,}" for row in by_reason.head(top).itertuples()]
    rest = by_reason.iloc[top:]
    if len(rest):
        named.append(f"{len(rest)} other reasons {int(rest['subscribers'].sum()):,}")
    excluded = ", ".join(named) or "none excluded"
    if eligible == 0:
        return f"0 eligible of {total:,}: {excluded}"
    return f"{eligible:,} eligible of {total:,} but none has a row in scoring_features; excluded: {excluded}"
