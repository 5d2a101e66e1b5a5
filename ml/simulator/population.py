"""The world: people with hidden traits, the product catalogue and the campaign calendar.

People are drawn with counter-based randomness keyed by person id (see randomness.py), so
person 17 is the same person whichever chunk generates her and however many people exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa

from ml.vocabulary import SIMULATOR_CATEGORIES
from ml.simulator import behaviour, formatting, names
from ml.simulator import randomness as rnd
from ml.simulator.config import MAX_PEOPLE, AudienceConfig
from ml.vocabulary import GENDERS

DAY = 86_400
HOUR = 3_600
NEVER = np.int64(2**62)  # "no such moment": later than any real timestamp
CRM, ESP = 0, 1  # source system codes

# Ids are a letter and 8 digits from an affine bijection of the person id, so ids look
# arbitrary, never collide, and ids of persons >= MAX_PEOPLE are free for unknown subscribers.
_ID_MODULUS = 10**8
_ID_AFFINE = {CRM: (48_271_093, 12_345_679, "C"), ESP: (69_621_017, 31_415_927, "E")}
_EMAIL_SUFFIX = (7_919, 4_321, 10**7)

_TZ_NAMES = np.array([t[0] for t in names.TIMEZONES])
_TZ_COUNTRIES = np.array([t[1] for t in names.TIMEZONES])
_TZ_OFFSETS = np.array([t[2] for t in names.TIMEZONES])
_TZ_CUMULATIVE = np.cumsum([t[3] for t in names.TIMEZONES]) / sum(t[3] for t in names.TIMEZONES)


def subscriber_numbers(person_ids: np.ndarray, system: int) -> np.ndarray:
    multiplier, offset, _ = _ID_AFFINE[system]
    return (np.asarray(person_ids, dtype=np.int64) * multiplier + offset) % _ID_MODULUS


def subscriber_ids(person_ids: np.ndarray, system: int) -> pa.StringArray:
    """The CRM (``C…``) or ESP (``E…``) id of each person."""
    return formatting.decimal_ids(_ID_AFFINE[system][2], subscriber_numbers(person_ids, system), 8)


def subscriber_ids_by_system(person_ids: np.ndarray, systems: np.ndarray) -> pa.StringArray:
    """Per row, the id of the person in the row's system."""
    systems = np.asarray(systems)
    numbers = np.where(systems == CRM, subscriber_numbers(person_ids, CRM), subscriber_numbers(person_ids, ESP))
    letters = np.where(systems == CRM, _ID_AFFINE[CRM][2], _ID_AFFINE[ESP][2])
    return formatting.decimal_ids_with_letters(letters, numbers, 8)


def unknown_subscriber_ids(seed: int, stream: str, row_uids: np.ndarray, systems: np.ndarray) -> list[str]:
    """Well-formed ids of the row's system that belong to nobody."""
    phantom = MAX_PEOPLE + rnd.integers(seed, stream, _ID_MODULUS - MAX_PEOPLE, row_uids)
    return subscriber_ids_by_system(phantom, np.asarray(systems)).to_pylist()


@dataclass
class People:
    """Hidden traits of a slice of people (arrays aligned on ``person_id``). Times are epoch s."""

    person_id: np.ndarray
    in_crm: np.ndarray
    in_esp: np.ndarray
    crm_signup_at: np.ndarray
    esp_created_at: np.ndarray
    engagement: np.ndarray
    price_sensitivity: np.ndarray
    affinity: np.ndarray  # (n, categories), rows sum to 1
    preferred_local_hour: np.ndarray
    timezone_index: np.ndarray
    churn_hazard: np.ndarray  # per day
    churned_at: np.ndarray
    base_purchase_hazard: np.ndarray  # per day, before e-mail boosts
    persuadability: np.ndarray  # scales how much an open or click raises the purchase hazard
    email_averse: np.ndarray  # "sleeping dogs": an email lowers their hazard, raises unsubscribes
    bad_mailbox: np.ndarray
    preference_unsubscribe_at: np.ndarray  # NEVER when it does not happen
    preference_unsubscribe_system: np.ndarray
    erased_at: np.ndarray
    erasure_system: np.ndarray
    first_name_index: np.ndarray
    last_name_index: np.ndarray
    email_style: np.ndarray
    email_domain_index: np.ndarray
    crm_email_variant: np.ndarray
    esp_email_variant: np.ndarray
    # Audit attributes (independent of behaviour): what the CRM knows, when the person told it.
    birth_year: np.ndarray  # 0 when the CRM has none
    gender: np.ndarray  # index into GENDER_VALUES; -1 when the CRM has none

    def __len__(self) -> int:
        return len(self.person_id)

    @property
    def timezone(self) -> np.ndarray:
        return _TZ_NAMES[self.timezone_index]

    @property
    def country(self) -> np.ndarray:
        return _TZ_COUNTRIES[self.timezone_index]

    @property
    def utc_offset_hours(self) -> np.ndarray:
        return _TZ_OFFSETS[self.timezone_index]

    @property
    def top_category(self) -> np.ndarray:
        return np.array(SIMULATOR_CATEGORIES)[self.affinity.argmax(axis=1)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_people(config: AudienceConfig, person_ids: np.ndarray) -> People:
    """Draw the hidden traits of the given people (deterministic per seed and person id)."""
    pid = np.asarray(person_ids, dtype=np.int64)
    seed = config.seed
    u = lambda stream: rnd.uniform(seed, f"person/{stream}", pid)  # noqa: E731
    z = lambda stream: rnd.normal(seed, f"person/{stream}", pid)  # noqa: E731
    end = formatting.epoch_seconds(config.end)
    start = end - config.days * DAY
    latest_signup = end - 3 * HOUR

    membership = u("membership")
    in_crm = membership < config.share_in_both + config.share_crm_only
    in_esp = (membership < config.share_in_both) | (membership >= config.share_in_both + config.share_crm_only)

    in_window = u("signup_in_window") < config.signup_in_window_share
    first_signup = np.where(
        in_window,
        start + np.floor(u("signup_time") * (config.days * DAY - 6 * HOUR)),
        start - 1 - np.floor(u("signup_time") ** 1.3 * config.history_days * DAY),
    ).astype(np.int64)
    # The second system learns about the person at the same moment or some days later.
    lag = np.where(
        u("signup_lag_kind") < 0.4,
        np.floor(u("signup_lag") * 600),
        np.floor(-np.log(u("signup_lag")) * 7 * DAY),
    ).astype(np.int64)
    crm_first = u("crm_first") < 0.5
    crm_signup_at = np.minimum(first_signup + np.where(crm_first, 0, lag), latest_signup)
    esp_created_at = np.minimum(first_signup + np.where(crm_first, lag, 0), latest_signup)
    joined = np.minimum(np.where(in_crm, crm_signup_at, NEVER), np.where(in_esp, esp_created_at, NEVER))

    engagement = _sigmoid(-1.1 + 0.9 * z("engagement"))
    price_sensitivity = _sigmoid(0.9 * z("price_sensitivity"))
    scores = np.stack([1.2 * z(f"affinity/{c}") for c in SIMULATOR_CATEGORIES], axis=1)
    affinity = np.exp(scores - scores.max(axis=1, keepdims=True))
    affinity /= affinity.sum(axis=1, keepdims=True)

    hour_kind, hour_pick = u("hour_kind"), u("hour_pick")
    preferred_local_hour = np.select(
        [hour_kind < 0.3, hour_kind < 0.5],
        [7 + np.floor(hour_pick * 3), 12 + np.floor(hour_pick * 2)],
        18 + np.floor(hour_pick * 5),
    ).astype(np.int64)
    timezone_index = np.searchsorted(_TZ_CUMULATIVE, u("timezone"), side="right").clip(0, len(_TZ_NAMES) - 1)

    churn_hazard = np.exp(np.log(1 / 1100) + 0.9 * z("churn_hazard"))
    lifetime = np.minimum(-np.log(u("churn_time")) / churn_hazard, 100 * 365) * DAY
    churned_at = (joined + lifetime).astype(np.int64)

    base_purchase_hazard = np.exp(
        np.log(0.004) + 2.5 * (engagement - 0.27) - 0.6 * (price_sensitivity - 0.5) + 0.4 * z("purchase_noise")
    )

    def revocation(stream: str, share: float, prefer_esp: float) -> tuple[np.ndarray, np.ndarray]:
        happens = u(f"{stream}/happens") < share
        either = np.where(u(f"{stream}/system") < prefer_esp, ESP, CRM)
        system = np.where(in_crm & in_esp, either, np.where(in_esp, ESP, CRM))
        signed_up = np.where(system == CRM, crm_signup_at, esp_created_at)
        in_window = start + np.floor(u(f"{stream}/time") * config.days * DAY)
        moment = np.maximum(signed_up + HOUR, in_window).astype(np.int64)
        moment = np.where(happens & (moment < end - 60), moment, NEVER)
        return moment, system

    preference_unsubscribe_at, preference_unsubscribe_system = revocation("preference_unsubscribe", 0.03, 0.7)
    erased_at, erasure_system = revocation("erasure", 0.004, 0.2)

    def variant(share: float, stream: str) -> np.ndarray:
        return np.where(u(f"{stream}/varies") < share, 1 + rnd.integers(seed, f"person/{stream}/kind", 5, pid), 0)

    return People(
        person_id=pid,
        in_crm=in_crm,
        in_esp=in_esp,
        crm_signup_at=crm_signup_at,
        esp_created_at=esp_created_at,
        engagement=engagement,
        price_sensitivity=price_sensitivity,
        affinity=affinity,
        preferred_local_hour=preferred_local_hour,
        timezone_index=timezone_index,
        churn_hazard=churn_hazard,
        churned_at=churned_at,
        base_purchase_hazard=base_purchase_hazard,
        # Independent of the base hazard, so ranking by propensity is not ranking by uplift.
        persuadability=np.exp(-0.3 + 0.9 * z("persuadability")),
        email_averse=u("email_averse") < 0.08,
        bad_mailbox=u("bad_mailbox") < 0.012,
        preference_unsubscribe_at=preference_unsubscribe_at,
        preference_unsubscribe_system=preference_unsubscribe_system,
        erased_at=erased_at,
        erasure_system=erasure_system,
        first_name_index=rnd.integers(seed, "person/first_name", len(names.FIRST_NAMES), pid),
        last_name_index=rnd.integers(seed, "person/last_name", len(names.LAST_NAMES), pid),
        email_style=rnd.integers(seed, "person/email_style", 5, pid),
        email_domain_index=np.searchsorted([0.6, 0.85], u("email_domain"), side="right"),
        crm_email_variant=variant(config.crm_email_variation, "crm_email"),
        esp_email_variant=variant(config.esp_email_variation, "esp_email"),
        **_audit_attributes(seed, pid, end),
    )


# As the simulated CRM exports them (free text in real systems; blank when the person did
# not say): the genders of ml/vocabulary.py but 'unknown', the warehouse's word for blank.
GENDER_VALUES = tuple(g for g in GENDERS if g != "unknown")
_GENDER_SHARES = {"female": 0.52, "male": 0.43, "non_binary": 0.02, "not_stated": 0.03}
_GENDER_CUMULATIVE = np.cumsum([_GENDER_SHARES[g] for g in GENDER_VALUES])[:-1]


def _audit_attributes(seed: int, pid: np.ndarray, end: int) -> dict[str, np.ndarray]:
    """Birth year and gender, from streams of their own: counter-based draws are pure
    functions of (seed, stream, person), so drawing them changes no other value, and
    nothing else depends on them (they are not in the behaviour model)."""
    u = lambda stream: rnd.uniform(seed, f"person/{stream}", pid)  # noqa: E731
    year = int(formatting.civil_from_epoch_seconds(np.array([end], dtype=np.int64))[0][0])
    # Ages 18-80, skewed young like an online shop's audience (median about 40).
    age = 18 + np.floor(62 * u("age") ** 1.6).astype(np.int64)
    birth_year = np.where(u("birth_year_known") < 0.85, year - age, 0)
    gender = np.searchsorted(_GENDER_CUMULATIVE, u("gender"), side="right")
    return {"birth_year": birth_year, "gender": np.where(u("gender_known") < 0.9, gender, -1)}


_FIRST_LOWER = np.array([n.lower() for n in names.FIRST_NAMES])
_FIRST_INITIAL = np.array([n[0].lower() for n in names.FIRST_NAMES])
_LAST_LOWER = np.array([n.lower() for n in names.LAST_NAMES])
_DOMAINS = np.array(names.EMAIL_DOMAINS)


def canonical_emails(people: People) -> np.ndarray:
    """Each person's unique lower-case address, e.g. ``olivia.smith40213@example.com``.

    The numeric suffix is a bijection of the person id, so addresses never collide.
    """
    multiplier, offset, modulus = _EMAIL_SUFFIX
    suffix = ((people.person_id * multiplier + offset) % modulus).astype(str)
    first = _FIRST_LOWER[people.first_name_index]
    last = _LAST_LOWER[people.last_name_index]
    add = np.char.add
    local = np.select(
        [people.email_style == s for s in range(4)],
        [
            add(add(first, "."), last),
            add(add(first, "_"), last),
            add(first, last),
            add(add(_FIRST_INITIAL[people.first_name_index], "."), last),
        ],
        first,
    )
    return add(add(add(local, suffix), "@"), _DOMAINS[people.email_domain_index])


def vary_emails(emails: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """How a system stored the address: 0 as is, else upper case, Title Case, or padded."""
    title = np.char.title(emails)
    return np.select(
        [variant == 1, variant == 2, variant == 3, variant == 4, variant == 5],
        [np.char.upper(emails), title, np.char.add(" ", emails), np.char.add(emails, " "), np.char.add(title, "  ")],
        emails,
    )


def first_names(people: People) -> np.ndarray:
    return np.array(names.FIRST_NAMES)[people.first_name_index]


@dataclass(frozen=True)
class Catalogue:
    product_id: np.ndarray
    category: np.ndarray
    price: np.ndarray
    by_category: np.ndarray  # (categories, k) product indices sorted by price

    def table(self) -> pa.Table:
        return pa.table({
            "product_id": pa.array(self.product_id, pa.string()),
            "category": pa.array(self.category, pa.string()),
            "price": pa.array(self.price, pa.float64()),
            "currency": pa.array(["USD"] * len(self.product_id), pa.string()),
        })


def draw_catalogue(seed: int, per_category: int = 10) -> Catalogue:
    """`per_category` products per category with list prices in USD, sorted by price."""
    rng = np.random.default_rng([seed, 1])
    categories, prices = [], []
    for category in SIMULATOR_CATEGORIES:
        low, high = names.CATEGORY_PRICE_RANGES[category]
        raw = np.exp(rng.uniform(np.log(low), np.log(high), per_category))
        cents = rng.choice([0.99, 0.90, 0.50, 0.00], per_category)
        prices.append(np.sort(np.maximum(np.floor(raw) + cents, 0.99)))
        categories += [category] * per_category
    price = np.round(np.concatenate(prices), 2)
    n = len(price)
    return Catalogue(
        product_id=np.array([f"P{1001 + i}" for i in range(n)]),
        category=np.array(categories),
        price=price,
        by_category=np.arange(n).reshape(len(SIMULATOR_CATEGORIES), per_category),
    )


MAX_CAMPAIGNS = 2_047  # campaign index must fit the 11 bits reserved in send uids


@dataclass(frozen=True)
class Calendar:
    campaign_id: np.ndarray
    campaign_name: np.ndarray
    category: np.ndarray
    category_code: np.ndarray
    subject_line: np.ndarray
    launched_at: np.ndarray  # epoch seconds, increasing
    audience_share: np.ndarray

    def __len__(self) -> int:
        return len(self.campaign_id)

    def table(self) -> pa.Table:
        return pa.table({
            "campaign_id": pa.array(self.campaign_id, pa.string()),
            "campaign_name": pa.array(self.campaign_name, pa.string()),
            "category": pa.array(self.category, pa.string()),
            "subject_line": pa.array(self.subject_line, pa.string()),
            "launched_at": formatting.timestamps(self.launched_at),
        })


def draw_calendar(config: AudienceConfig) -> Calendar:
    """One campaign every ~`campaign_every_days`, launched in office hours (UTC)."""
    rng = np.random.default_rng([config.seed, 2])
    end = formatting.epoch_seconds(config.end)
    start = end - config.days * DAY
    last_launch = end - 6 * HOUR  # every send of a campaign leaves the ESP before the export
    launches = []
    k = 0
    while True:
        day = start // DAY * DAY + int(np.floor(k * config.campaign_every_days)) * DAY
        moment = day + int(rng.integers(8, 18)) * HOUR + int(rng.integers(0, 60)) * 60
        if day >= end:
            break
        if start <= moment <= last_launch:
            launches.append(moment)
        k += 1
    launched_at = np.sort(np.array(launches, dtype=np.int64))
    n = len(launched_at)
    if n > MAX_CAMPAIGNS:
        raise ValueError(f"{n} campaigns exceed the simulator's limit of {MAX_CAMPAIGNS}")
    category = np.where(
        rng.random(n) < 0.25, "general", np.array(SIMULATOR_CATEGORIES)[rng.integers(0, len(SIMULATOR_CATEGORIES), n)]
    ).astype(object)
    subject = np.array([names.SUBJECT_LINES[c][rng.integers(0, len(names.SUBJECT_LINES[c]))] for c in category])
    theme = np.array(names.CAMPAIGN_THEMES)[rng.integers(0, len(names.CAMPAIGN_THEMES), n)]
    dates = [(config.end - timedelta(seconds=int(end - t))).strftime("%Y-%m-%d") for t in launched_at]
    low, high = config.campaign_audience_share
    return Calendar(
        campaign_id=np.array([f"CMP{i + 1:04d}" for i in range(n)]),
        campaign_name=np.array([f"{d} {c} {t}" for d, c, t in zip(dates, category, theme)]),
        category=category.astype(str),
        category_code=behaviour.category_codes(category),
        subject_line=subject,
        launched_at=launched_at,
        audience_share=rng.uniform(low, high, n),
    )
