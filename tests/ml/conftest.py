"""Small synthetic feature marts with a real, learnable purchase signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.propensity.features import FEATURE_COLUMNS, ID_COLUMNS, LABEL_COLUMNS, SEGMENT_COLUMNS
from ml.vocabulary import CATEGORY_SLOTS


def fake_subscriber_keys(n: int, salt: str = "test") -> list[str]:
    """Hex keys shaped like the real HMAC subscriber keys (but of made-up ids, not emails)."""
    return [hashlib.sha256(f"{salt}-{i}".encode()).hexdigest() for i in range(n)]


def make_feature_rows(
    n_subscribers: int,
    cutoffs: list[pd.Timestamp],
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """`scoring_features`-shaped rows: one per subscriber and cutoff, plus hidden latent traits.

    Each subscriber has a stable purchase affinity and engagement, so their features are
    correlated across cutoffs, as in the real marts. Latent columns start with ``_``.
    """
    rng = np.random.default_rng(seed)
    keys = np.array(fake_subscriber_keys(n_subscribers, salt=f"seed{seed}"))
    affinity = rng.lognormal(mean=-1.0, sigma=0.8, size=n_subscribers)
    engagement = rng.beta(2, 5, size=n_subscribers)
    signup_days_before_first_cutoff = rng.integers(30, 900, size=n_subscribers)
    favourite = rng.choice(np.array(CATEGORY_SLOTS), size=n_subscribers)

    frames = []
    for index, cutoff in enumerate(cutoffs):
        n = n_subscribers
        days_since_first = (pd.Timestamp(cutoff) - pd.Timestamp(cutoffs[0])).days
        tenure = (signup_days_before_first_cutoff + days_since_first).astype("float64")
        orders_total = rng.poisson(affinity * tenure / 120)
        orders_90d = np.minimum(orders_total, rng.poisson(affinity * 0.8))
        monetary_total = orders_total * rng.gamma(3.0, 20.0, size=n)
        monetary_90d = np.where(orders_total > 0, monetary_total * orders_90d / np.maximum(orders_total, 1), 0.0)
        days_since_last_order = np.where(
            orders_total > 0, np.minimum(tenure, rng.exponential(60 / (1 + orders_90d), size=n)), np.nan
        )
        sends_7d = rng.poisson(2, size=n)
        sends_30d = sends_7d + rng.poisson(6, size=n)
        sends_90d = sends_30d + rng.poisson(16, size=n)
        opens_7d = rng.binomial(sends_7d, engagement)
        opens_30d = opens_7d + rng.binomial(sends_30d - sends_7d, engagement)
        opens_90d = opens_30d + rng.binomial(sends_90d - sends_30d, engagement)
        click_p = np.clip(engagement * 0.4, 0, 1)
        clicks_7d = rng.binomial(opens_7d, click_p)
        clicks_30d = clicks_7d + rng.binomial(opens_30d - opens_7d, click_p)
        clicks_90d = clicks_30d + rng.binomial(opens_90d - opens_30d, click_p)
        with np.errstate(divide="ignore", invalid="ignore"):
            open_rate_30d = np.where(sends_30d > 0, opens_30d / sends_30d, np.nan)
            click_rate_30d = np.where(sends_30d > 0, clicks_30d / sends_30d, np.nan)
            open_rate_90d = np.where(sends_90d > 0, opens_90d / sends_90d, np.nan)
            click_rate_90d = np.where(sends_90d > 0, clicks_90d / sends_90d, np.nan)
        top_category_slot = np.where(orders_total > 0, favourite, "none")
        # Every fifth subscriber without an order is newsletter-only (no CRM record): no
        # customer tenure. Drawn without the generator, so the other columns stay as they were.
        newsletter_only = (np.arange(n) % 5 == 4) & (orders_total == 0)
        frames.append(
            pd.DataFrame(
                {
                    "subscriber_key": keys,
                    "cutoff_at": pd.Timestamp(cutoff),
                    "tenure_days": tenure,
                    "customer_tenure_days": np.where(newsletter_only, np.nan, tenure),
                    "consent_age_days": np.floor(tenure * rng.uniform(0.3, 1.0, size=n)),
                    "orders_total": orders_total.astype("float64"),
                    "monetary_total": monetary_total,
                    "orders_90d": orders_90d.astype("float64"),
                    "monetary_90d": monetary_90d,
                    "days_since_last_order": days_since_last_order,
                    "sends_7d": sends_7d.astype("float64"),
                    "sends_30d": sends_30d.astype("float64"),
                    "sends_90d": sends_90d.astype("float64"),
                    "opens_7d": opens_7d.astype("float64"),
                    "opens_30d": opens_30d.astype("float64"),
                    "opens_90d": opens_90d.astype("float64"),
                    "clicks_7d": clicks_7d.astype("float64"),
                    "clicks_30d": clicks_30d.astype("float64"),
                    "clicks_90d": clicks_90d.astype("float64"),
                    "open_rate_30d": open_rate_30d,
                    "click_rate_30d": click_rate_30d,
                    "open_rate_90d": open_rate_90d,
                    "click_rate_90d": click_rate_90d,
                    "days_since_last_open": np.where(opens_90d > 0, rng.uniform(0, 90, size=n).round(), np.nan),
                    "days_since_last_click": np.where(clicks_90d > 0, rng.uniform(0, 90, size=n).round(), np.nan),
                    "preferred_send_hour": np.where(opens_90d > 0, rng.integers(6, 23, size=n), np.nan),
                    "fatigue_score": sends_7d / (1.0 + opens_7d),
                    "top_category_slot": top_category_slot,
                    "_affinity": affinity,
                    "_engagement": engagement,
                    "_cutoff_index": index,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def make_training_examples(
    n_subscribers: int = 2000,
    n_cutoffs: int = 4,
    *,
    seed: int = 0,
    cutoff_spacing_days: int = 28,
    shuffle_labels: bool = False,
) -> pd.DataFrame:
    """A `training_examples`-shaped frame whose purchase label depends on the features:
    recent orders, click rate, recency and a bump for category slot 3. ``shuffle_labels`` destroys
    the signal (same base rate), for tests that a model does not find signal that is not there.
    """
    cutoffs = list(pd.date_range("2025-01-05", periods=n_cutoffs, freq=f"{cutoff_spacing_days}D"))
    rows = make_feature_rows(n_subscribers, cutoffs, seed=seed)
    rng = np.random.default_rng(seed + 1)
    recency = rows["days_since_last_order"].fillna(365.0)
    logit = (
        -2.6
        + 1.1 * np.log1p(rows["orders_90d"])
        + 4.0 * rows["click_rate_30d"].fillna(0.0)
        - 0.012 * recency
        + 0.8 * (rows["top_category_slot"] == "category_slot_3")
    )
    rows["label_purchase_14d"] = (rng.random(len(rows)) < 1 / (1 + np.exp(-logit))).astype("int64")
    rows["label_click_7d"] = (rng.random(len(rows)) < rows["_engagement"] * 0.5).astype("int64")
    churn = (rng.random(len(rows)) < 0.2).astype("float64")
    # The last cutoff's 28-day churn window is not observed yet.
    rows["label_churn_28d"] = np.where(rows["_cutoff_index"] == n_cutoffs - 1, np.nan, churn)
    if shuffle_labels:
        rows["label_purchase_14d"] = rng.permutation(rows["label_purchase_14d"].to_numpy())
    # Segments (in the warehouse: macros/segments.sql); here a plausible spread over the values.
    rows["lifecycle_stage"] = np.where(
        rows["days_since_last_order"].fillna(999) <= 30, "active",
        np.where(rows["days_since_last_order"].fillna(999) <= 90, "at_risk", "never_engaged"),
    )
    rows["tenure_band"] = np.where(rows["tenure_days"] < 365, "90-364d", "730d+")
    rows["source_systems"] = np.where(np.arange(len(rows)) % 3 == 0, "crm", "crm+esp")
    return rows[[*ID_COLUMNS, *FEATURE_COLUMNS, *SEGMENT_COLUMNS, *LABEL_COLUMNS]]


def make_scoring_features(n_subscribers: int = 500, *, seed: int = 7) -> pd.DataFrame:
    """A `scoring_features`-shaped frame: one row per subscriber at a single as-of cutoff."""
    rows = make_feature_rows(n_subscribers, [pd.Timestamp("2025-06-01")], seed=seed)
    return rows[[*ID_COLUMNS, *FEATURE_COLUMNS]]


@pytest.fixture
def mlflow_target(tmp_path: Path):
    """A throwaway MLflow store (sqlite) and artifact folder for one test."""
    from mlflow import MlflowClient

    from ml.tracking import MlflowTarget

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return MlflowTarget(
        client=MlflowClient(tracking_uri=uri, registry_uri=uri),
        artifact_location=tmp_path / "artifacts",
        experiment_name="propensity-tests",
    )


@pytest.fixture
def training_examples_factory():
    """`make_training_examples`, for tests that need several variants."""
    return make_training_examples


@pytest.fixture
def scoring_features_factory():
    """`make_scoring_features`, for tests that need several variants."""
    return make_scoring_features
