"""How a simulated person responds to e-mail and buys: one model for generator and responder.

The landing generator uses these functions for every send and every day; the campaign
responder (`responder.py`) uses the same ones, so outcomes of a planned campaign follow the
same rules as the history the model was trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ml.propensity.features import PRODUCT_CATEGORIES

N_CATEGORIES = len(PRODUCT_CATEGORIES)
GENERAL = -1  # category code of campaigns that promote no single category

MAX_OPEN_PROBABILITY = 0.9
MAX_CLICK_GIVEN_OPEN = 0.8
FATIGUE_FREE_SENDS = 2  # sends in the previous 7 days a person tolerates without fatigue
FATIGUE_DECAY = 0.15  # open probability falls by this log-factor per extra recent send
RANDOM_HARD_BOUNCE = 0.0005  # per send, on top of the people whose mailbox is dead
COMPLAINT_PROBABILITY = 0.0003
BASE_UNSUBSCRIBE = 0.0012
# A click multiplies the daily purchase hazard by (1 + CLICK_PURCHASE_BOOST) the next day,
# decaying with BOOST_DECAY_DAYS; an open does the same, far more weakly.
CLICK_PURCHASE_BOOST = 8.0
OPEN_PURCHASE_BOOST = 0.5
BOOST_DECAY_DAYS = 3.0
EXPLORE_CATEGORY = 0.2  # share of purchases outside the person's own affinity


def category_codes(categories: Sequence[str] | np.ndarray) -> np.ndarray:
    """Index in PRODUCT_CATEGORIES, GENERAL for anything else (e.g. 'general')."""
    lookup = {c: i for i, c in enumerate(PRODUCT_CATEGORIES)}
    return np.array([lookup.get(c, GENERAL) for c in categories], dtype=np.int64)


def category_match(affinity: np.ndarray, category_code: np.ndarray | int) -> np.ndarray:
    """The person's affinity weight for the promoted category (1/6 for a general campaign)."""
    codes = np.broadcast_to(np.asarray(category_code, dtype=np.int64), (affinity.shape[0],))
    weight = affinity[np.arange(affinity.shape[0]), np.clip(codes, 0, N_CATEGORIES - 1)]
    return np.where(codes == GENERAL, 1.0 / N_CATEGORIES, weight)


def fatigue_factor(recent_sends: np.ndarray) -> np.ndarray:
    return np.exp(-FATIGUE_DECAY * np.maximum(0, np.asarray(recent_sends) - FATIGUE_FREE_SENDS))


def open_probability(
    engagement: np.ndarray,
    match: np.ndarray,
    recent_sends: np.ndarray,
    churned: np.ndarray,
    appeal: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Probability that a delivered e-mail is opened. Churned people open nothing."""
    p = engagement * (0.7 + 1.8 * match) * fatigue_factor(recent_sends) * appeal
    return np.where(churned, 0.0, np.clip(p, 0.0, MAX_OPEN_PROBABILITY))


def click_given_open_probability(engagement: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Probability of a click once opened: mostly driven by the category match."""
    return np.clip((0.04 + 0.5 * match) * (0.5 + engagement), 0.0, MAX_CLICK_GIVEN_OPEN)


def unsubscribe_probability(recent_sends: np.ndarray, churned: np.ndarray) -> np.ndarray:
    """Probability of an unsubscribe per delivered e-mail; fatigue and churn raise it."""
    extra = np.maximum(0, np.asarray(recent_sends) - FATIGUE_FREE_SENDS)
    return BASE_UNSUBSCRIBE * (1.0 + 0.6 * extra) * np.where(churned, 2.5, 1.0)


def boost_decay() -> float:
    return float(np.exp(-1.0 / BOOST_DECAY_DAYS))


def purchase_probability(
    base_hazard: np.ndarray, days: int, clicked: np.ndarray, opened: np.ndarray, churned: np.ndarray
) -> np.ndarray:
    """Probability of at least one purchase in the `days` after an e-mail on day 0.

    Matches the generator: a click or open on day 0 boosts days 1..`days` with a
    geometrically decaying kernel.
    """
    kernel = float(np.sum(boost_decay() ** np.arange(days)))
    boost = CLICK_PURCHASE_BOOST * np.asarray(clicked, float) + OPEN_PURCHASE_BOOST * np.asarray(opened, float)
    cumulative_hazard = base_hazard * (days + boost * kernel)
    return np.where(churned, 0.0, 1.0 - np.exp(-cumulative_hazard))


def subject_appeal(subject_lines: Sequence[str | None]) -> np.ndarray:
    """A fixed, hidden appeal multiplier in [0.85, 1.15] per subject line text.

    Different copy therefore performs genuinely differently, and nobody can read it off.
    """
    cache: dict[str | None, float] = {}
    out = np.empty(len(subject_lines), dtype=np.float64)
    for i, line in enumerate(subject_lines):  # loops over distinct copy, which is short
        if line not in cache:
            text = (line or "").strip().lower().encode("utf-8")
            bits = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
            cache[line] = 0.85 + 0.3 * (bits / 2**64)
        out[i] = cache[line]
    return out


def choose_products(
    affinity: np.ndarray,
    price_sensitivity: np.ndarray,
    u_explore: np.ndarray,
    u_category: np.ndarray,
    u_product: np.ndarray,
    products_by_category: np.ndarray,
) -> np.ndarray:
    """Index of the product each buyer picks.

    The category follows the person's affinity (sometimes a random one); within it,
    price-sensitive people lean to the cheap end. ``products_by_category`` is a
    (categories, k) matrix of product indices sorted by price.
    """
    cumulative = np.cumsum(affinity, axis=1)
    by_affinity = np.minimum((u_category[:, None] > cumulative).sum(axis=1), N_CATEGORIES - 1)
    random_category = np.minimum((u_category * N_CATEGORIES).astype(np.int64), N_CATEGORIES - 1)
    category = np.where(u_explore < EXPLORE_CATEGORY, random_category, by_affinity)
    per_category = products_by_category.shape[1]
    rank = np.floor(u_product ** (0.5 + 2.0 * price_sensitivity) * per_category).astype(np.int64)
    return products_by_category[category, np.minimum(rank, per_category - 1)]
