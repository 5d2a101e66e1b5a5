"""The world's daily step, shared by the history and the live days.

`react_to_sends` draws what people do with the e-mails sent to them and `draw_purchases`
draws one day's purchases; `audience.py` runs them over the history with the shop's
business-as-usual campaigns, `world.py` runs them one live day at a time with the
pipeline's planned sends. Draws are keyed by (seed, stream, person, campaign or day index),
so the same person sent the same e-mail under the same conditions behaves the same way
in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.simulator import behaviour, names
from ml.simulator import randomness as rnd
from ml.simulator.population import DAY, HOUR, Catalogue, People
from ml.vocabulary import EMAIL_EVENT_TYPES

EVENT_CODE = {name: i for i, name in enumerate(EMAIL_EVENT_TYPES)}
SEND_UID_BITS = 11  # campaign index inside a send uid (history campaigns, then live days)
EVENT_UID_BITS = 3  # event type inside an event uid
DERIVED_UID = np.uint64(1 << 62)  # marks uids of rows derived from an e-mail event


def send_uids(person_id: np.ndarray, campaign_index: np.ndarray | int) -> np.ndarray:
    """The uid of a send (person, campaign), from which its landed ids are drawn."""
    return (np.asarray(person_id).astype(np.uint64) << np.uint64(SEND_UID_BITS)) | np.asarray(
        campaign_index
    ).astype(np.uint64)


def event_uids(send_uid: np.ndarray, event_type: np.ndarray) -> np.ndarray:
    """The uid of an e-mail event (send, event type)."""
    return (np.asarray(send_uid) << np.uint64(EVENT_UID_BITS)) | np.asarray(event_type).astype(np.uint64)


@dataclass
class SendReactions:
    """What each addressed person did with one send (arrays aligned with the sends).

    Times are epoch seconds and may lie after the export moment: the caller decides what
    has happened by then (the history drops later events, a live day carries them over).
    """

    sent_at: np.ndarray
    p_open: np.ndarray
    p_click_given_open: np.ndarray
    delivered: np.ndarray
    delivered_at: np.ndarray
    bounced: np.ndarray
    bounced_at: np.ndarray
    opened: np.ndarray
    opened_at: np.ndarray
    clicked: np.ndarray
    clicked_at: np.ndarray
    unsubscribed: np.ndarray
    unsubscribed_at: np.ndarray
    complained: np.ndarray
    complained_at: np.ndarray

    def events(self) -> tuple[tuple[int, np.ndarray, np.ndarray], ...]:
        """(event type code, happened, moment) per e-mail event type, in contract order."""
        return (
            (EVENT_CODE["delivered"], self.delivered, self.delivered_at),
            (EVENT_CODE["bounce"], self.bounced, self.bounced_at),
            (EVENT_CODE["open"], self.opened, self.opened_at),
            (EVENT_CODE["click"], self.clicked, self.clicked_at),
            (EVENT_CODE["unsubscribe"], self.unsubscribed, self.unsubscribed_at),
            (EVENT_CODE["complaint"], self.complained, self.complained_at),
        )


def send_conditions(
    people: People, idx: np.ndarray, category_code: np.ndarray | int, subject_lines, recent: np.ndarray,
    churned: np.ndarray, responsiveness: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """True open and click-given-open probabilities of a send to ``people[idx]``.

    ``responsiveness`` scales the open probability (the scripted shift uses it).
    """
    match = behaviour.category_match(people.affinity[idx], category_code)
    appeal = behaviour.subject_appeal(subject_lines, people.top_category[idx]) * responsiveness
    p_open = behaviour.open_probability(people.engagement[idx], match, recent, churned, appeal)
    return p_open, behaviour.click_given_open_probability(people.engagement[idx], match)


def purchase_if_sent(
    people: People, rows: np.ndarray, hazard: np.ndarray, boost_level: np.ndarray,
    p_delivered: np.ndarray, p_open: np.ndarray, p_click: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The true chance that each of ``people[rows]`` buys within the window of ``hazard``'s
    days if sent the e-mail (delivered, opened and clicked with the given unconditional
    chances), and if not sent: (if_sent, if_not_sent). ``boost_level`` is carried in."""
    persuade, averse = people.persuadability[rows], people.email_averse[rows]
    penalty = np.where(averse, behaviour.AVERSE_DELIVERY_PENALTY, 0.0)
    open_boost = behaviour.OPEN_PURCHASE_BOOST * persuade
    click_boost = behaviour.CLICK_PURCHASE_BOOST * persuade
    if_not_sent = behaviour.window_purchase_probability(hazard, boost_level, 0.0)
    if_sent = (
        (1 - p_delivered) * if_not_sent
        + (p_delivered - p_open) * behaviour.window_purchase_probability(hazard, boost_level, penalty)
        + (p_open - p_click) * behaviour.window_purchase_probability(hazard, boost_level, penalty + open_boost)
        + p_click * behaviour.window_purchase_probability(hazard, boost_level, penalty + open_boost + click_boost)
    )
    return if_sent, if_not_sent


def react_to_sends(
    seed: int,
    people: People,
    idx: np.ndarray,
    campaign_index: int,
    launched_at: int,
    category_code: np.ndarray | int,
    subject_lines,
    recent: np.ndarray,
    responsiveness: np.ndarray | float = 1.0,
    spread_seconds: np.ndarray | int = 2 * HOUR,
) -> SendReactions:
    """Send campaign ``campaign_index`` to ``people[idx]`` and draw their reactions.

    ``recent`` is each person's number of sends in the 7 days before (fatigue). Each send
    leaves between ``launched_at`` (one moment, or one per send) and ``spread_seconds`` later:
    a campaign blast spreads over two hours, a send scheduled for its own time over minutes.
    """
    pid = people.person_id
    u = lambda stream: rnd.uniform(seed, f"send/{stream}", pid[idx], campaign_index)  # noqa: E731
    sent_at = launched_at + np.floor(u("jitter") * spread_seconds).astype(np.int64)
    churned = people.churned_at[idx] <= sent_at
    p_open, p_click = send_conditions(people, idx, category_code, subject_lines, recent, churned, responsiveness)
    averse = people.email_averse[idx]

    bounced = u("bounce") < np.where(people.bad_mailbox[idx], 1.0, behaviour.RANDOM_HARD_BOUNCE)
    delivered = ~bounced
    delivered_at = sent_at + 1 + np.floor(u("delivery_delay") * 300).astype(np.int64)
    bounced_at = sent_at + 5 + np.floor(u("bounce_delay") * 600).astype(np.int64)
    # Half the opens come soon after delivery, the rest at the person's preferred local hour.
    local_hour = np.mod(sent_at / HOUR + people.utc_offset_hours[idx], 24)
    to_preferred = np.mod(people.preferred_local_hour[idx] - local_hour, 24) * HOUR + u("open_minute") * HOUR
    soon = -np.log(u("open_soon_delay")) * 1.5 * HOUR
    open_delay = 60 + np.where(u("open_soon") < 0.5, soon, to_preferred)
    opened_at = delivered_at + np.floor(open_delay).astype(np.int64)
    opened = delivered & (u("open") < p_open)
    clicked_at = opened_at + 5 + np.floor(u("click_delay") * 1800).astype(np.int64)
    clicked = opened & (u("click") < p_click)
    unsubscribed_at = np.where(
        opened,
        opened_at + 10 + np.floor(u("unsubscribe_delay") * 600),
        delivered_at + 300 + np.floor(u("unsubscribe_delay") * 2 * DAY),
    ).astype(np.int64)
    unsubscribed = delivered & (u("unsubscribe") < behaviour.unsubscribe_probability(recent, churned, averse))
    complained_at = delivered_at + 600 + np.floor(u("complaint_delay") * 3 * DAY).astype(np.int64)
    complained = delivered & ~unsubscribed & (u("complaint") < behaviour.complaint_probability(recent, averse))
    return SendReactions(
        sent_at=sent_at, p_open=p_open, p_click_given_open=p_click,
        delivered=delivered, delivered_at=delivered_at, bounced=bounced, bounced_at=bounced_at,
        opened=opened, opened_at=opened_at, clicked=clicked, clicked_at=clicked_at,
        unsubscribed=unsubscribed, unsubscribed_at=unsubscribed_at,
        complained=complained, complained_at=complained_at,
    )


@dataclass
class DerivedRecords:
    consent_rows: np.ndarray  # indices of the events that the ESP also records as a consent change
    consent_at: np.ndarray
    suppression_rows: np.ndarray  # indices of the events that suppress the address
    suppression_at: np.ndarray


def records_from_events(
    seed: int, event_type: np.ndarray, event_at: np.ndarray, person_id: np.ndarray, campaign_index: int, until: int
) -> DerivedRecords:
    """Consent and suppression records the ESP derives from e-mail events before ``until``:
    half the unsubscribes are also recorded as a consent change; every bounce and complaint
    suppresses the address within the hour."""
    u = lambda stream: rnd.uniform(seed, f"send/{stream}", person_id, campaign_index)  # noqa: E731
    recorded_at = event_at + np.floor(u("unsubscribe_record_delay") * 300).astype(np.int64)
    is_unsubscribe = event_type == EVENT_CODE["unsubscribe"]
    consent = is_unsubscribe & (u("unsubscribe_recorded") < 0.5) & (recorded_at < until)
    suppressing = (event_type == EVENT_CODE["bounce"]) | (event_type == EVENT_CODE["complaint"])
    suppressed_at = event_at + np.floor(u("suppression_delay") * HOUR).astype(np.int64)
    return DerivedRecords(
        consent_rows=np.flatnonzero(consent),
        consent_at=recorded_at[consent],
        suppression_rows=np.flatnonzero(suppressing),
        suppression_at=np.clip(suppressed_at, event_at, until - 1)[suppressing],
    )


@dataclass
class Purchases:
    person: np.ndarray  # index into People
    day: np.ndarray  # day index (history day 0 is the first day of the history window)
    ordered_at: np.ndarray
    product: np.ndarray  # index into the catalogue
    currency: np.ndarray  # str
    amount: np.ndarray


def daily_exposure(people: People, rows: np.ndarray, day_start: np.ndarray, until: int | np.ndarray) -> np.ndarray:
    """Share of each day a customer could buy: after signing up, before churning and ``until``.
    ``day_start`` broadcasts against ``rows[:, None]``."""
    open_from = np.maximum(day_start, people.crm_signup_at[rows, None] + 60)
    open_until = np.minimum(np.minimum(day_start + DAY, until), people.churned_at[rows, None])
    return np.clip((open_until - open_from) / DAY, 0.0, 1.0), open_from, open_until


def draw_purchases(
    seed: int,
    people: People,
    catalogue: Catalogue,
    buyers: np.ndarray,
    day_index: np.ndarray,
    day_start: np.ndarray,
    hazard: np.ndarray,
    until: int,
) -> Purchases:
    """Daily purchase draws for ``people[buyers]`` on the days in ``day_index`` (a row
    vector), with ``hazard`` (buyers, days) the daily hazard before exposure."""
    exposure, open_from, open_until = daily_exposure(people, buyers, day_start, until)
    p_buy = 1.0 - np.exp(-hazard * exposure)
    pid = people.person_id[buyers]
    buys = rnd.uniform(seed, "order/buys", pid[:, None], day_index) < p_buy
    rows, column = np.nonzero(buys)
    person = buyers[rows]
    day = np.broadcast_to(day_index, buys.shape)[rows, column]
    u = lambda stream: rnd.uniform(seed, f"order/{stream}", people.person_id[person], day)  # noqa: E731
    lo, hi = open_from[rows, column], open_until[rows, column]
    ordered_at = np.minimum(lo + np.floor(u("time") * (hi - lo)).astype(np.int64), hi - 1)
    product = behaviour.choose_products(
        people.affinity[person], people.price_sensitivity[person], u("explore"), u("category"), u("product"),
        catalogue.by_category,
    )
    country = people.country[person]
    pay = u("currency")
    home_currency = np.select(
        [np.isin(country, list(names.EURO_COUNTRIES)), np.isin(country, list(names.POUND_COUNTRIES))],
        ["EUR", "GBP"],
        "USD",
    )
    currency = np.where(
        home_currency != "USD",
        np.where(pay < 0.85, home_currency, "USD"),
        np.select([pay < 0.97, pay < 0.99], ["USD", "EUR"], "GBP"),
    )
    fx = np.select([currency == "EUR", currency == "GBP"], [names.FX_FROM_USD["EUR"], names.FX_FROM_USD["GBP"]], 1.0)
    amount = np.maximum(np.round(catalogue.price[product] * fx, 2), 0.01)
    return Purchases(person=person, day=day, ordered_at=ordered_at, product=product, currency=currency, amount=amount)

