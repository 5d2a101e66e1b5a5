"""How a simulated person responds to e-mail and buys: the world's one set of rules.

The history (`audience.py`, the shop's business-as-usual sending) and every live day
(`world.py`, the pipeline's planned sends) call these functions, so a model trained on the
history is judged in the same world it is used in.

The treatment effect of an email is heterogeneous on purpose:
- "sure things" buy anyway: a high base hazard, whatever the email does;
- "persuadables" buy because of the email: an open or click multiplies their hazard for a
  few days, scaled by a hidden `persuadability` unrelated to how much they buy anyway;
- "sleeping dogs" (`email_averse`) are put off: a delivered email lowers their purchase
  hazard for a few days and they unsubscribe and complain far more often.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ml.vocabulary import SIMULATOR_CATEGORIES

N_CATEGORIES = len(SIMULATOR_CATEGORIES)
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
# A delivered email multiplies an email-averse person's hazard by (1 + this) the next day
# (decaying like the boosts); the hazard never falls below MIN_HAZARD_FACTOR of its base.
AVERSE_DELIVERY_PENALTY = -0.6
MIN_HAZARD_FACTOR = 0.1
AVERSE_UNSUBSCRIBE_FACTOR = 6.0
AVERSE_COMPLAINT_FACTOR = 4.0
EXPLORE_CATEGORY = 0.2  # share of purchases outside the person's own affinity


def category_codes(categories: Sequence[str] | np.ndarray) -> np.ndarray:
    """Index in SIMULATOR_CATEGORIES, GENERAL for anything else (e.g. 'general')."""
    lookup = {c: i for i, c in enumerate(SIMULATOR_CATEGORIES)}
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


def unsubscribe_probability(
    recent_sends: np.ndarray, churned: np.ndarray, averse: np.ndarray | bool = False
) -> np.ndarray:
    """Probability of an unsubscribe per delivered e-mail; fatigue, churn and aversion raise it."""
    extra = np.maximum(0, np.asarray(recent_sends) - FATIGUE_FREE_SENDS)
    return (
        BASE_UNSUBSCRIBE * (1.0 + 0.6 * extra) * np.where(churned, 2.5, 1.0)
        * np.where(averse, AVERSE_UNSUBSCRIBE_FACTOR, 1.0)
    )


def complaint_probability(recent_sends: np.ndarray, averse: np.ndarray | bool = False) -> np.ndarray:
    """Probability of a spam complaint per delivered e-mail (when not unsubscribing)."""
    extra = np.maximum(0, np.asarray(recent_sends) - FATIGUE_FREE_SENDS)
    return COMPLAINT_PROBABILITY * (1.0 + 0.3 * extra) * np.where(averse, AVERSE_COMPLAINT_FACTOR, 1.0)


def boost_weights(
    event_type: np.ndarray, persuadability: np.ndarray, averse: np.ndarray, codes: dict[str, int]
) -> np.ndarray:
    """How much each e-mail event adds to the person's purchase boost from the next day on:
    opens and clicks scaled by persuadability, a delivery negative for the email-averse."""
    return np.select(
        [event_type == codes["click"], event_type == codes["open"], event_type == codes["delivered"]],
        [CLICK_PURCHASE_BOOST * persuadability, OPEN_PURCHASE_BOOST * persuadability,
         np.where(averse, AVERSE_DELIVERY_PENALTY, 0.0)],
        0.0,
    )


def hazard_factor(boost_level: np.ndarray) -> np.ndarray:
    """Multiplier of the base purchase hazard for a carried-over boost level."""
    return np.maximum(MIN_HAZARD_FACTOR, 1.0 + np.asarray(boost_level, dtype=float))


def boost_decay() -> float:
    return float(np.exp(-1.0 / BOOST_DECAY_DAYS))


def window_purchase_probability(
    daily_hazard: np.ndarray, boost_level: np.ndarray, added_boost: np.ndarray | float
) -> np.ndarray:
    """Probability of at least one purchase over the window of days in ``daily_hazard``.

    ``daily_hazard`` is (people, days): the base hazard times exposure (0 once churned) and
    any scripted shift, day 0 being the send day. ``boost_level`` is the boost carried into
    day 0; ``added_boost`` is what the e-mail's events add from day 1 on. Both decay daily,
    exactly as the day-by-day recursion of the history and the live days.
    """
    days = daily_hazard.shape[1]
    decay = boost_decay() ** np.arange(days)
    carried = np.asarray(boost_level, float)[:, None] * decay[None, :]
    added = np.asarray(added_boost, float)
    added = np.broadcast_to(added, (daily_hazard.shape[0],))[:, None] * np.concatenate([[0.0], decay[:-1]])[None, :]
    cumulative = (daily_hazard * hazard_factor(carried + added)).sum(axis=1)
    return 1.0 - np.exp(-cumulative)


def subject_appeal(subject_lines: Sequence[str | None], segment: Sequence[str] | np.ndarray | None = None) -> np.ndarray:
    """A fixed, hidden appeal multiplier in [0.8, 1.2] per subject line text and segment
    (the reader's top category).

    Copy therefore performs genuinely differently, one variant is truly best for each
    segment, and nobody can read it off the text.
    """
    lines = np.array([(line or "").strip().lower() for line in subject_lines], dtype=object)
    segments = np.array([""] * len(lines) if segment is None else [str(x) for x in segment], dtype=object)
    keys = np.char.add(np.char.add(lines.astype(str), "\x1f"), segments.astype(str)) if len(lines) else lines
    distinct, position = np.unique(keys, return_inverse=True)
    values = np.empty(len(distinct), dtype=np.float64)
    for i, key in enumerate(distinct):  # distinct (copy, segment) pairs are few
        bits = int.from_bytes(hashlib.blake2b(str(key).encode("utf-8"), digest_size=8).digest(), "little")
        values[i] = 0.8 + 0.4 * (bits / 2**64)
    return values[position].reshape(len(lines)) if len(lines) else np.empty(0)


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


def product_probabilities(
    affinity: np.ndarray, price_sensitivity: np.ndarray, products_by_category: np.ndarray
) -> np.ndarray:
    """(people, products): the probability that a person's next purchase is each product,
    exactly as ``choose_products`` draws it. The oracle's ranking; the pipeline never sees it.

    Category: the affinity with probability 1 - EXPLORE_CATEGORY, else uniform. Rank within
    the category: ``floor(u ** a * k)`` with ``a = 0.5 + 2 * price_sensitivity``, so
    P(rank < r) = (r / k) ** (1 / a).
    """
    n_categories, per_category = products_by_category.shape
    category = (1.0 - EXPLORE_CATEGORY) * affinity + EXPLORE_CATEGORY / n_categories
    exponent = 1.0 / (0.5 + 2.0 * np.asarray(price_sensitivity, dtype=float))
    below = (np.arange(per_category + 1) / per_category)[None, :] ** exponent[:, None]
    rank = np.diff(below, axis=1)  # (people, k)
    out = np.zeros((affinity.shape[0], products_by_category.size))
    out[:, products_by_category.ravel()] = (category[:, :, None] * rank[:, None, :]).reshape(affinity.shape[0], -1)
    return out
