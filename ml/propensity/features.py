"""The feature contract shared by the dbt feature marts and the models.

`training_examples` and `scoring_features` (dbt marts) both carry exactly these columns,
computed by one dbt macro, so a model trained on one can score the other; and
`prepare_features` turns either into the model input, for training and scoring alike.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from ml import vocabulary

ID_COLUMNS = ("subscriber_key", "cutoff_at")

NUMERIC_FEATURES = (
    "tenure_days",
    # Null when the person is not a shop customer (no CRM record) before the cutoff: orders
    # name CRM ids, so a newsletter-only subscriber cannot have one. Worth +0.03 test AUC
    # (docs/models.md, "Features").
    "customer_tenure_days",
    "consent_age_days",
    "orders_total",
    "monetary_total",
    "orders_90d",
    "monetary_90d",
    "days_since_last_order",
    "sends_7d",
    "sends_30d",
    "sends_90d",
    "opens_7d",
    "opens_30d",
    "opens_90d",
    "clicks_7d",
    "clicks_30d",
    "clicks_90d",
    "open_rate_30d",
    "click_rate_30d",
    "open_rate_90d",
    "click_rate_90d",
    "days_since_last_open",
    "days_since_last_click",
    "preferred_send_hour",
    "fatigue_score",
)

# The slot of the person's top category (most orders + clicks), one of
# TOP_CATEGORY_SLOT_LEVELS: generic slots, not category names, so any shop's categories fit
# (marts.category_slots says which category fills which slot; docs/data_contract.md).
CATEGORICAL_FEATURES = ("top_category_slot",)

# "Days since the last order / open / click": null when there is none before the cutoff.
RECENCY_FEATURES = tuple(column for column in NUMERIC_FEATURES if column.startswith("days_since_"))

# The longest look-back window of the windowed features, in days: 90, read off the names
# (sends_90d, orders_90d, ...) that the dbt macro subscriber_features generates from its windows.
LONGEST_WINDOW_DAYS = max(int(match.group(1)) for match in map(re.compile(r"_(\d+)d$").search, NUMERIC_FEATURES) if match)

FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# How marts.training_examples picks its cutoffs (dbt_project/models/marts/features/
# training_examples.sql holds the SQL copy; tests/test_one_source.py proves them equal):
# weekly cutoffs counted back from the as-of day, each at least FEATURE_WARM_UP_DAYS after
# the first behavioural data (first send or order), kept once EXAMPLE_LABEL_DAYS have passed
# after it (the purchase and click label windows are complete).
CUTOFF_EVERY_DAYS = 7
FEATURE_WARM_UP_DAYS = 28
EXAMPLE_LABEL_DAYS = 14

LABEL_COLUMNS = ("label_purchase_14d", "label_click_7d", "label_churn_28d")

PURCHASE_LABEL = "label_purchase_14d"

# Columns of training_examples that evaluations break results down by (the promotion gate,
# model cards). Segments, never features: a model does not see them.
SEGMENT_COLUMNS = ("lifecycle_stage", "tenure_band", "source_systems")

# `top_category_slot` levels in a fixed order, so training and scoring encode identically:
# the slots, the other bucket (a category outside the slots), 'none' (no category signal).
NO_CATEGORY = "none"
TOP_CATEGORY_SLOT_LEVELS = (*vocabulary.CATEGORY_SLOTS, vocabulary.OTHER_CATEGORY_SLOT, NO_CATEGORY)


def category_slot_params(category_slots: pd.DataFrame) -> dict[str, str]:
    """What each category slot stood for, from `marts.category_slots` (columns slot,
    slot_label, assigned_by), as MLflow params: {category_slot_1: its label, ...,
    category_slots_assigned_by: mapping_file or top_revenue}. An unfilled slot is '(empty)'."""
    filled = category_slots[category_slots["slot"].isin(vocabulary.CATEGORY_SLOTS)]
    labels = filled.groupby("slot")["slot_label"].unique()
    several = [slot for slot, values in labels.items() if len(values) > 1]
    if several:
        raise ValueError(f"category slots {several} have more than one label in category_slots")
    params = {slot: str(labels[slot][0]) if slot in labels.index else "(empty)" for slot in vocabulary.CATEGORY_SLOTS}
    params["category_slots_assigned_by"] = ",".join(sorted(category_slots["assigned_by"].unique())) or "(no categories)"
    return params


def feature_list_hash(columns: tuple[str, ...] | list[str] = FEATURE_COLUMNS) -> str:
    """Short SHA-256 of the ordered feature names: equal hashes mean compatible inputs."""
    return hashlib.sha256("\n".join(columns).encode("utf-8")).hexdigest()[:16]


def prepare_features(frame: pd.DataFrame, columns: tuple[str, ...] = FEATURE_COLUMNS) -> pd.DataFrame:
    """The model input: exactly ``columns`` (a model spec's features, by default the whole
    contract) in contract order, all float64.

    `top_category_slot` becomes its position in TOP_CATEGORY_SLOT_LEVELS (a fixed code, NaN when null;
    an unknown value is an error), and LightGBM is told the column is categorical. Codes
    rather than a pandas Categorical because MLflow signatures and JSON serving inputs have
    no categorical type: with codes the registered model also works through pyfunc.
    """
    unknown_columns = sorted(set(columns) - set(FEATURE_COLUMNS))
    if unknown_columns:
        raise ValueError(f"{unknown_columns} are not in the feature contract")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"feature frame lacks columns {missing}")
    prepared = pd.DataFrame(index=frame.index)
    for column in (c for c in NUMERIC_FEATURES if c in columns):
        try:
            prepared[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        except (TypeError, ValueError) as error:
            raise ValueError(f"feature {column!r} is not numeric: {error}") from error
    for column in (c for c in CATEGORICAL_FEATURES if c in columns):
        values = frame[column].astype("object")
        unknown = sorted({str(v) for v in values.dropna().unique()} - set(TOP_CATEGORY_SLOT_LEVELS))
        if unknown:
            raise ValueError(f"feature {column!r} has unknown values {unknown}; expected {list(TOP_CATEGORY_SLOT_LEVELS)}")
        codes = pd.Categorical(values, categories=list(TOP_CATEGORY_SLOT_LEVELS)).codes
        prepared[column] = np.where(codes >= 0, codes, np.nan).astype("float64")
    return prepared[[column for column in FEATURE_COLUMNS if column in columns]]
