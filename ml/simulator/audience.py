"""Generate the landing folder (docs/data_contract.md) and the simulator's oracle.

People are generated in chunks and appended to Parquet files, so memory stays flat however
large the audience is; the catalogue and the campaign calendar are global. Within a chunk
everything is vectorised over people; the only Python loops run over campaigns and days.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from time import perf_counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ml.vocabulary import SIMULATOR_CATEGORIES
from ml.simulator import behaviour, engine, formatting, names, state
from ml.simulator import randomness as rnd
from ml.simulator.config import AudienceConfig
from ml.simulator.contract import CORRUPTIBLE_FILES, DROPS_DIR, LANDING_SCHEMAS, MANIFEST_FILE
from ml.simulator.dirty import NO_LOWER_BOUND, Corrupted, RowMeta, corrupt_table
from ml.simulator.population import (
    CRM,
    DAY,
    ESP,
    GENDER_VALUES,
    HOUR,
    NEVER,
    Calendar,
    Catalogue,
    People,
    canonical_emails,
    draw_calendar,
    draw_catalogue,
    draw_people,
    first_names,
    subscriber_ids,
    subscriber_ids_by_system,
    vary_emails,
)
from ml.vocabulary import EMAIL_EVENT_TYPES, REVOKING_EMAIL_EVENT_TYPES

GENERATOR_NAME = "ml.simulator"
# Files with one row group per chunk, in the order they are written.
CHUNKED_FILES = (
    "crm_subscribers.parquet", "esp_subscribers.parquet", "consent_events.parquet", "suppressions.parquet",
    "sends.parquet", "email_events.parquet", "orders.parquet",
)
SUBSCRIBER_FILES = ("crm_subscribers.parquet", "esp_subscribers.parquet")

_EVENT_CODE = engine.EVENT_CODE
_DERIVED = engine.DERIVED_UID

PEOPLE_SCHEMA = pa.schema(
    [
        ("person_id", pa.int64()), ("crm_id", pa.string()), ("esp_id", pa.string()),
        ("in_crm", pa.bool_()), ("in_esp", pa.bool_()),
        ("crm_signup_at", pa.timestamp("s")), ("esp_created_at", pa.timestamp("s")),
        ("timezone", pa.string()), ("country", pa.string()),
        ("engagement", pa.float64()), ("price_sensitivity", pa.float64()),
        *[(f"affinity_{c}", pa.float64()) for c in SIMULATOR_CATEGORIES],
        ("top_category", pa.string()), ("preferred_local_hour", pa.int64()),
        ("churn_hazard", pa.float64()), ("churned_at", pa.timestamp("s")),
        ("base_daily_purchase_hazard", pa.float64()), ("persuadability", pa.float64()),
        ("email_averse", pa.bool_()), ("bad_mailbox", pa.bool_()),
        ("preference_unsubscribe_at", pa.timestamp("s")), ("erased_at", pa.timestamp("s")),
    ]
)
SEND_PROBABILITY_SCHEMA = pa.schema(
    [
        ("send_id", pa.string()),
        ("p_open", pa.float64()),
        ("p_click", pa.float64()),
        ("p_click_given_open", pa.float64()),
    ]
)
CORRUPTION_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("source_row_key", pa.int64()), ("kind", pa.string()), ("column", pa.string())]
)


@dataclass
class GenerationSummary:
    """What `generate_landing` wrote."""

    n_people: int
    rows: dict[str, int]
    corrupted_rows: dict[str, dict[str, int]]
    expected_canonical_subscribers: int
    seconds: float
    landing_dir: Path
    oracle_dir: Path

    @property
    def total_corrupted_rows(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.corrupted_rows.values())


# -- e-mail history ------------------------------------------------------------------------


@dataclass
class _EmailHistory:
    send_person: np.ndarray  # local person index
    send_campaign: np.ndarray
    sent_at: np.ndarray
    p_open: np.ndarray
    p_click_given_open: np.ndarray
    event_send: np.ndarray  # index into the sends
    event_type: np.ndarray  # code in EMAIL_EVENT_TYPES
    event_at: np.ndarray
    consent_event: np.ndarray  # index into the events: unsubscribes also recorded as consent
    consent_at: np.ndarray
    suppression_event: np.ndarray  # index into the events: bounces and complaints
    suppression_at: np.ndarray
    opted_out_at: np.ndarray  # per person: when the ESP stops mailing them (NEVER if not)

    def send_uid(self, people: People) -> np.ndarray:
        return engine.send_uids(people.person_id[self.send_person], self.send_campaign)

    def event_uid(self, people: People) -> np.ndarray:
        send_uid = self.send_uid(people)[self.event_send]
        return engine.event_uids(send_uid, self.event_type)


def _simulate_email(config: AudienceConfig, calendar: Calendar, people: People, end: int) -> _EmailHistory:
    """Send every campaign to a share of the eligible ESP contacts and draw their reactions.

    The loop runs over campaigns because eligibility depends on earlier reactions
    (unsubscribes, complaints, bounces); each iteration is vectorised over people.
    """
    seed = config.seed
    pid = people.person_id
    n = len(people)
    n_campaigns = len(calendar)
    launched = calendar.launched_at
    week_start = np.searchsorted(launched, launched - 7 * DAY, side="left")
    sends_so_far = np.zeros((n_campaigns + 1, n), dtype=np.int32)
    opted_out_at = np.minimum(people.preference_unsubscribe_at, people.erased_at)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "send_person", "send_campaign", "sent_at", "p_open", "p_click_given_open",
        "event_send", "event_type", "event_at", "consent_event", "consent_at", "suppression_event", "suppression_at",
    )}
    n_sends = n_events = 0
    for c in range(n_campaigns):
        t = launched[c]
        sends_so_far[c + 1] = sends_so_far[c]
        # The shop's business-as-usual policy: a random share of its current ESP contacts.
        candidates = np.flatnonzero(people.in_esp & (people.esp_created_at < t) & (opted_out_at > t))
        chosen = rnd.uniform(seed, "send/select", pid[candidates], c) < calendar.audience_share[c]
        idx = candidates[chosen]
        if len(idx) == 0:
            continue
        sends_so_far[c + 1, idx] += 1
        recent = sends_so_far[c, idx] - sends_so_far[week_start[c], idx]
        reaction = engine.react_to_sends(
            seed, people, idx, c, int(t), calendar.category_code[c], [calendar.subject_line[c]] * len(idx), recent
        )
        # Only what happened before the export is in it.
        reaction.opened &= reaction.opened_at < end
        reaction.clicked &= reaction.opened & (reaction.clicked_at < end)
        reaction.unsubscribed &= reaction.unsubscribed_at < end
        reaction.complained &= reaction.complained_at < end
        sent_at, p_open, p_click = reaction.sent_at, reaction.p_open, reaction.p_click_given_open
        bounced, delivered = reaction.bounced, reaction.delivered
        opt_out = np.full(len(idx), NEVER)
        for happened, moment in (
            (bounced, reaction.bounced_at), (reaction.unsubscribed, reaction.unsubscribed_at),
            (reaction.complained, reaction.complained_at),
        ):
            opt_out = np.where(happened, np.minimum(opt_out, moment), opt_out)
        opted_out_at[idx] = np.minimum(opted_out_at[idx], opt_out)

        parts["send_person"].append(idx)
        parts["send_campaign"].append(np.full(len(idx), c, dtype=np.int64))
        parts["sent_at"].append(sent_at)
        parts["p_open"].append(p_open)
        parts["p_click_given_open"].append(p_click)
        send_rows = n_sends + np.arange(len(idx))
        first_event = n_events
        for code, happened, moment in reaction.events():
            parts["event_send"].append(send_rows[happened])
            parts["event_type"].append(np.full(int(happened.sum()), code, dtype=np.int64))
            parts["event_at"].append(moment[happened])
            n_events += int(happened.sum())
        n_sends += len(idx)
        # This campaign's events, to derive consent and suppression rows from them.
        types_here = np.concatenate(parts["event_type"][-6:])
        times_here = np.concatenate(parts["event_at"][-6:])
        person_here = pid[idx[np.concatenate(parts["event_send"][-6:]) - send_rows[0]]]
        event_index = first_event + np.arange(len(types_here))
        derived = engine.records_from_events(seed, types_here, times_here, person_here, c, end)
        parts["consent_event"].append(event_index[derived.consent_rows])
        parts["consent_at"].append(derived.consent_at)
        parts["suppression_event"].append(event_index[derived.suppression_rows])
        parts["suppression_at"].append(derived.suppression_at)

    def cat(key: str, dtype) -> np.ndarray:
        return np.concatenate(parts[key]).astype(dtype) if parts[key] else np.zeros(0, dtype=dtype)

    return _EmailHistory(
        send_person=cat("send_person", np.int64),
        send_campaign=cat("send_campaign", np.int64),
        sent_at=cat("sent_at", np.int64),
        p_open=cat("p_open", np.float64),
        p_click_given_open=cat("p_click_given_open", np.float64),
        event_send=cat("event_send", np.int64),
        event_type=cat("event_type", np.int64),
        event_at=cat("event_at", np.int64),
        consent_event=cat("consent_event", np.int64),
        consent_at=cat("consent_at", np.int64),
        suppression_event=cat("suppression_event", np.int64),
        suppression_at=cat("suppression_at", np.int64),
        opted_out_at=opted_out_at,
    )


# -- orders --------------------------------------------------------------------------------


def _simulate_orders(
    config: AudienceConfig, catalogue: Catalogue, people: People, email: _EmailHistory, start: int, end: int
) -> tuple[engine.Purchases, np.ndarray]:
    """Daily purchase draws for CRM customers: base hazard, moved by earlier e-mail events.

    Returns the purchases, every person's boost level carried into the first day after
    the history (the world's state for the first live day), and the (people, days) daily
    purchase hazard each person actually lived with (exposure and email boosts included):
    the oracle's true purchase probability of any window of the history.
    """
    days = config.days
    buyers = np.flatnonzero(people.in_crm)
    row_of = np.full(len(people), -1, dtype=np.int64)
    row_of[buyers] = np.arange(len(buyers))
    # E-mail events per (buyer, day), weighted by how much they move purchases.
    event_person = email.send_person[email.event_send]
    weights = behaviour.boost_weights(
        email.event_type, people.persuadability[event_person], people.email_averse[event_person], _EVENT_CODE
    )
    useful = (weights != 0) & (row_of[event_person] >= 0)
    cells = row_of[event_person[useful]] * days + (email.event_at[useful] - start) // DAY
    engagement = np.bincount(cells, weights=weights[useful], minlength=len(buyers) * days).reshape(len(buyers), days)
    boost = np.empty_like(engagement)
    level = np.zeros(len(buyers))
    decay = behaviour.boost_decay()
    for d in range(days):  # a recursive filter over days, vectorised over people
        boost[:, d] = level
        level = level * decay + engagement[:, d]
    carried = np.zeros(len(people))
    carried[buyers] = level

    day_index = np.arange(days, dtype=np.int64)[None, :]
    hazard = people.base_purchase_hazard[buyers, None] * behaviour.hazard_factor(boost)
    purchases = engine.draw_purchases(
        config.seed, people, catalogue, buyers, day_index, start + day_index * DAY, hazard, end
    )
    exposure, _, _ = engine.daily_exposure(people, buyers, start + day_index * DAY, end)
    realised = np.zeros((len(people), days), dtype=np.float32)
    realised[buyers] = hazard * exposure
    return purchases, carried, realised


# -- landing tables ------------------------------------------------------------------------


def _ordered(seconds: np.ndarray) -> np.ndarray:
    return np.argsort(seconds, kind="stable")


def _strings(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), type=pa.string())


def _subscriber_tables(people: People) -> dict[str, tuple[pa.Table, RowMeta]]:
    emails = canonical_emails(people)
    given = first_names(people)
    tables = {}
    for name, system, member, signed_up, variant in (
        ("crm_subscribers.parquet", CRM, people.in_crm, people.crm_signup_at, people.crm_email_variant),
        ("esp_subscribers.parquet", ESP, people.in_esp, people.esp_created_at, people.esp_email_variant),
    ):
        rows = np.flatnonzero(member)
        columns = {
            "crm_id" if system == CRM else "esp_id": subscriber_ids(people.person_id[rows], system),
            "email": _strings(vary_emails(emails[rows], variant[rows])),
            "first_name": _strings(given[rows]),
            "signup_at" if system == CRM else "created_at": formatting.timestamps(signed_up[rows]),
            "timezone": _strings(people.timezone[rows]),
        }
        if system == CRM:
            columns["country"] = _strings(people.country[rows])
            known = people.birth_year[rows] > 0
            columns["birth_year"] = _strings(np.where(known, people.birth_year[rows].astype(str), ""))
            gender = people.gender[rows]
            columns["gender"] = _strings(np.where(gender >= 0, np.array(GENDER_VALUES)[gender.clip(0)], ""))
        meta = RowMeta(
            uid=people.person_id[rows].astype(np.uint64),
            timestamp=signed_up[rows],
            lower_bound=np.full(len(rows), NO_LOWER_BOUND),
            subscriber_ok=np.ones(len(rows), dtype=bool),
            system=np.full(len(rows), system),
        )
        tables[name] = (pa.table(columns, schema=LANDING_SCHEMAS[name]), meta)
    return tables


def _consent_table(config: AudienceConfig, people: People, email: _EmailHistory, ok: dict[int, np.ndarray]):
    seed = config.seed
    pid = people.person_id
    person, system, status, source, at, uid, proof_kind = [], [], [], [], [], [], []

    def add(rows, sys, stat, src, moment, row_uid, proofs):
        person.append(rows)
        system.append(np.broadcast_to(sys, rows.shape))
        status.append(np.broadcast_to(stat, rows.shape))
        source.append(np.broadcast_to(src, rows.shape))
        at.append(moment)
        uid.append(row_uid)
        proof_kind.append(np.broadcast_to(proofs, rows.shape))

    for sys, member, signed_up, doi_share in (
        (CRM, people.in_crm, people.crm_signup_at, 0.2),
        (ESP, people.in_esp, people.esp_created_at, 0.7),
    ):
        rows = np.flatnonzero(member)
        doi = rnd.uniform(seed, f"consent/doi/{sys}", pid[rows]) < doi_share
        confirm = np.floor(rnd.uniform(seed, f"consent/confirm/{sys}", pid[rows]) * 600).astype(np.int64)
        add(rows, sys, "subscribed", np.where(doi, "double_opt_in", "signup_form"),
            signed_up[rows] + np.where(doi, confirm, 0), pid[rows].astype(np.uint64) * 16 + sys,
            np.where(doi, "doi", "form"))
    rows = np.flatnonzero(people.preference_unsubscribe_at < NEVER)
    support = rnd.uniform(seed, "consent/support_request", pid[rows]) < 0.15
    add(rows, people.preference_unsubscribe_system[rows], "unsubscribed",
        np.where(support, "support_request", "preference_center"), people.preference_unsubscribe_at[rows],
        pid[rows].astype(np.uint64) * 16 + 2, "")
    rows = np.flatnonzero(people.erased_at < NEVER)
    add(rows, people.erasure_system[rows], "erased", "legal_request", people.erased_at[rows],
        pid[rows].astype(np.uint64) * 16 + 3, "ticket")
    event_uid = email.event_uid(people)
    rows = email.send_person[email.event_send[email.consent_event]]
    add(rows, ESP, "unsubscribed", "preference_center", email.consent_at,
        _DERIVED | event_uid[email.consent_event], "")

    person = np.concatenate(person).astype(np.int64)
    system = np.concatenate(system).astype(np.int64)
    at = np.concatenate(at).astype(np.int64)
    uid = np.concatenate(uid).astype(np.uint64)
    order = _ordered(at)
    person, system, at, uid = person[order], system[order], at[order], uid[order]
    status = np.concatenate(status)[order]
    source = np.concatenate(source)[order]
    proof_kind = np.concatenate(proof_kind)[order]
    token = formatting.hex_ids("", rnd.unique_ids(seed, "consent/proof", uid)).to_numpy(zero_copy_only=False)
    proof = np.where(proof_kind == "", None, np.char.add(np.char.add(proof_kind.astype(str), "_"), token.astype(str)))
    table = pa.table(
        {
            "consent_event_id": formatting.hex_ids("cns_", rnd.unique_ids(seed, "consent_event_id", uid)),
            "source_system": _strings(np.where(system == CRM, "crm", "esp")),
            "source_subscriber_id": subscriber_ids_by_system(pid[person], system),
            "status": _strings(status),
            "recorded_at": formatting.timestamps(at),
            "consent_source": _strings(source),
            "proof": _strings(proof),
        },
        schema=LANDING_SCHEMAS["consent_events.parquet"],
    )
    return table, _event_meta(uid, at, person, system, ok)


def _event_meta(uid, at, person, system, ok: dict[int, np.ndarray], lower_bound=None) -> RowMeta:
    """Row metadata of an event file; the subscriber is fine if its row in `system` is clean."""
    system = np.broadcast_to(system, np.shape(at)).astype(np.int64)
    subscriber_ok = np.where(system == CRM, ok[CRM][person], ok[ESP][person])
    if lower_bound is None:
        lower_bound = np.full(len(at), NO_LOWER_BOUND)
    return RowMeta(uid, at, lower_bound, subscriber_ok, system)


def _suppression_table(
    config: AudienceConfig, people: People, email: _EmailHistory, end: int, ok: dict[int, np.ndarray]
):
    seed = config.seed
    pid = people.person_id
    event_uid = email.event_uid(people)
    from_email = email.suppression_event
    erased = np.flatnonzero(people.erased_at < NEVER)
    legal_at = np.minimum(
        people.erased_at[erased] + np.floor(rnd.uniform(seed, "suppression/legal_delay", pid[erased]) * HOUR),
        end - 1,
    )
    person = np.concatenate([email.send_person[email.event_send[from_email]], erased])
    system = np.concatenate([np.full(len(from_email), ESP), people.erasure_system[erased]]).astype(np.int64)
    reason = np.concatenate([
        np.where(email.event_type[from_email] == _EVENT_CODE["bounce"], "hard_bounce", "complaint"),
        np.full(len(erased), "legal_request"),
    ])
    at = np.concatenate([email.suppression_at, legal_at]).astype(np.int64)
    uid = np.concatenate([_DERIVED | event_uid[from_email], pid[erased].astype(np.uint64) * 16 + 3]).astype(np.uint64)
    order = _ordered(at)
    person, system, reason, at, uid = person[order], system[order], reason[order], at[order], uid[order]
    table = pa.table(
        {
            "suppression_id": formatting.hex_ids("sup_", rnd.unique_ids(seed, "suppression_id", uid)),
            "source_system": _strings(np.where(system == CRM, "crm", "esp")),
            "source_subscriber_id": subscriber_ids_by_system(pid[person], system),
            "reason": _strings(reason),
            "suppressed_at": formatting.timestamps(at),
        },
        schema=LANDING_SCHEMAS["suppressions.parquet"],
    )
    return table, _event_meta(uid, at, person, system, ok)


def _send_tables(
    config: AudienceConfig, calendar: Calendar, people: People, email: _EmailHistory, ok: dict[int, np.ndarray]
):
    seed = config.seed
    send_uid = email.send_uid(people)
    send_id = rnd.unique_ids(seed, "send_id", send_uid)
    esp_ids = subscriber_ids(people.person_id, ESP)

    order = _ordered(email.sent_at)
    person = email.send_person[order]
    sends = pa.table(
        {
            "send_id": formatting.hex_ids("snd_", send_id[order]),
            "campaign_id": pa.array(calendar.campaign_id, pa.string()).take(pa.array(email.send_campaign[order])),
            "esp_id": esp_ids.take(pa.array(person)),
            "sent_at": formatting.timestamps(email.sent_at[order]),
        },
        schema=LANDING_SCHEMAS["sends.parquet"],
    )
    send_meta = _event_meta(send_uid[order], email.sent_at[order], person, ESP, ok)
    probabilities = pa.table(
        {
            "send_id": formatting.hex_ids("snd_", send_id[order]),
            "p_open": email.p_open[order],
            "p_click": email.p_open[order] * email.p_click_given_open[order],
            "p_click_given_open": email.p_click_given_open[order],
        },
        schema=SEND_PROBABILITY_SCHEMA,
    )

    event_uid = email.event_uid(people)
    order = _ordered(email.event_at)
    send_row = email.event_send[order]
    person = email.send_person[send_row]
    events = pa.table(
        {
            "event_id": formatting.hex_ids("evt_", rnd.unique_ids(seed, "event_id", event_uid[order])),
            "send_id": formatting.hex_ids("snd_", send_id[send_row]),
            "esp_id": esp_ids.take(pa.array(person)),
            "event_type": pa.array(EMAIL_EVENT_TYPES, pa.string()).take(pa.array(email.event_type[order])),
            "occurred_at": formatting.timestamps(email.event_at[order]),
        },
        schema=LANDING_SCHEMAS["email_events.parquet"],
    )
    event_meta = _event_meta(
        event_uid[order], email.event_at[order], person, ESP, ok, lower_bound=people.esp_created_at[person]
    )
    revoking = [EMAIL_EVENT_TYPES.index(t) for t in REVOKING_EMAIL_EVENT_TYPES]
    event_meta = replace(event_meta, keeps_subscriber=np.isin(email.event_type[order], revoking))
    return (sends, send_meta), (events, event_meta), probabilities


def _orders_table(
    config: AudienceConfig, catalogue: Catalogue, people: People, orders: engine.Purchases, ok: dict[int, np.ndarray]
):
    order = _ordered(orders.ordered_at)
    person = orders.person[order]
    uid = (people.person_id[person].astype(np.uint64) << np.uint64(12)) | orders.day[order].astype(np.uint64)
    table = pa.table(
        {
            "order_id": formatting.hex_ids("ord_", rnd.unique_ids(config.seed, "order_id", uid)),
            "crm_id": subscriber_ids(people.person_id[person], CRM),
            "product_id": pa.array(catalogue.product_id, pa.string()).take(pa.array(orders.product[order])),
            "ordered_at": formatting.timestamps(orders.ordered_at[order]),
            "amount": formatting.amounts(orders.amount[order]),
            "currency": _strings(orders.currency[order]),
        },
        schema=LANDING_SCHEMAS["orders.parquet"],
    )
    return table, _event_meta(uid, orders.ordered_at[order], person, CRM, ok, lower_bound=people.crm_signup_at[person])


def _timestamp_array(seconds: np.ndarray, present: np.ndarray) -> pa.Array:
    return pa.array(np.where(present, seconds, 0), type=pa.timestamp("s"), mask=~present)


def _people_table(people: People) -> pa.Table:
    pid = people.person_id
    crm = subscriber_ids(pid, CRM).to_numpy(zero_copy_only=False)
    esp = subscriber_ids(pid, ESP).to_numpy(zero_copy_only=False)
    columns = {
        "person_id": pid,
        "crm_id": pa.array(np.where(people.in_crm, crm, None), pa.string()),
        "esp_id": pa.array(np.where(people.in_esp, esp, None), pa.string()),
        "in_crm": people.in_crm,
        "in_esp": people.in_esp,
        "crm_signup_at": _timestamp_array(people.crm_signup_at, people.in_crm),
        "esp_created_at": _timestamp_array(people.esp_created_at, people.in_esp),
        "timezone": _strings(people.timezone),
        "country": _strings(people.country),
        "engagement": people.engagement,
        "price_sensitivity": people.price_sensitivity,
        **{f"affinity_{c}": people.affinity[:, i] for i, c in enumerate(SIMULATOR_CATEGORIES)},
        "top_category": _strings(people.top_category),
        "preferred_local_hour": people.preferred_local_hour,
        "churn_hazard": people.churn_hazard,
        "churned_at": _timestamp_array(people.churned_at, np.ones(len(pid), dtype=bool)),
        "base_daily_purchase_hazard": people.base_purchase_hazard,
        "persuadability": people.persuadability,
        "email_averse": people.email_averse,
        "bad_mailbox": people.bad_mailbox,
        "preference_unsubscribe_at": _timestamp_array(
            people.preference_unsubscribe_at, people.preference_unsubscribe_at < NEVER
        ),
        "erased_at": _timestamp_array(people.erased_at, people.erased_at < NEVER),
    }
    return pa.table(columns, schema=PEOPLE_SCHEMA)


@dataclass
class _ChunkResult:
    files: dict[str, Corrupted]
    people: pa.Table
    world_state: pa.Table
    send_probabilities: pa.Table
    canonical_people: int
    quarantined_ids: dict[str, list[str]]
    # Per person, the daily purchase hazard of each history day (oracle only).
    purchase_hazard: pa.Table


def _simulate_chunk(
    config: AudienceConfig, calendar: Calendar, catalogue: Catalogue, person_ids: np.ndarray
) -> _ChunkResult:
    end = formatting.epoch_seconds(config.end)
    start = end - config.days * DAY
    people = draw_people(config, person_ids)
    files: dict[str, Corrupted] = {}
    ok: dict[int, np.ndarray] = {}
    quarantined: dict[str, list[str]] = {}
    subscriber = _subscriber_tables(people)
    for name, system, member in (
        ("crm_subscribers.parquet", CRM, people.in_crm),
        ("esp_subscribers.parquet", ESP, people.in_esp),
    ):
        table, meta = subscriber[name]
        result = corrupt_table(table, CORRUPTIBLE_FILES[name], meta, config.dirty, config.seed, end)
        files[name] = result
        rows = np.flatnonzero(member)
        ok[system] = np.zeros(len(people), dtype=bool)
        ok[system][rows] = ~result.corrupted_originals
        quarantined[name] = subscriber_ids(people.person_id[rows[result.corrupted_originals]], system).to_pylist()
    canonical = int(np.count_nonzero(ok[CRM] | ok[ESP]))

    email = _simulate_email(config, calendar, people, end)
    orders, boost_level, realised_hazard = _simulate_orders(config, catalogue, people, email, start, end)
    world_state = state.WorldState.after_history(people, email.send_person, email.sent_at, boost_level,
                                                 email.opted_out_at, end)
    sends, events, probabilities = _send_tables(config, calendar, people, email, ok)
    built = {
        "consent_events.parquet": _consent_table(config, people, email, ok),
        "suppressions.parquet": _suppression_table(config, people, email, end, ok),
        "sends.parquet": sends,
        "email_events.parquet": events,
        "orders.parquet": _orders_table(config, catalogue, people, orders, ok),
    }
    for name, (table, meta) in built.items():
        files[name] = corrupt_table(table, CORRUPTIBLE_FILES[name], meta, config.dirty, config.seed, end)
    hazard_table = pa.table({
        "person_id": people.person_id,
        "daily_purchase_hazard": pa.FixedSizeListArray.from_arrays(pa.array(realised_hazard.ravel()), config.days),
    })
    return _ChunkResult(files, _people_table(people), world_state.table(), probabilities, canonical, quarantined,
                        hazard_table)


# -- writing -------------------------------------------------------------------------------


# The oracle's record of every person's daily purchase hazard over the history.
HISTORY_HAZARD_FILE = "history_purchase_hazard.parquet"


def _check_folders(landing_dir: Path, oracle_dir: Path) -> None:
    if landing_dir == oracle_dir or landing_dir in oracle_dir.parents or oracle_dir in landing_dir.parents:
        raise ValueError(
            f"the oracle folder {oracle_dir} must be separate from the landing folder {landing_dir}: "
            "the pipeline must never see the simulator's truth"
        )


class _Writers:
    """Parquet writers that write to hidden partial files and publish them at the end."""

    def __init__(self) -> None:
        self._writers: dict[Path, pq.ParquetWriter] = {}
        self.rows: Counter[Path] = Counter()

    @staticmethod
    def partial(path: Path) -> Path:
        return path.with_name(f".{path.name}.partial")

    def write(self, path: Path, table: pa.Table) -> int:
        """Append a table; returns the row number of its first row in the file."""
        if path not in self._writers:
            self._writers[path] = pq.ParquetWriter(self.partial(path), table.schema, compression="zstd")
        first_row = self.rows[path]
        if table.num_rows:
            self._writers[path].write_table(table)
        self.rows[path] += table.num_rows
        return first_row

    def publish(self) -> None:
        for path, writer in self._writers.items():
            writer.close()
            os.replace(self.partial(path), path)
        self._writers.clear()

    def abort(self) -> None:
        for path, writer in self._writers.items():
            writer.close()
            self.partial(path).unlink(missing_ok=True)
        self._writers.clear()


def _write_json(path: Path, payload: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def generate_landing(
    config: AudienceConfig, landing_dir: Path, oracle_dir: Path, progress: bool = False
) -> GenerationSummary:
    """Write the landing folder of docs/data_contract.md and the simulator's oracle.

    Landing files are replaced as a whole (other files in the folder are left alone).
    The oracle folder gets people.parquet, send_probabilities.parquet, corruptions.parquet,
    products.parquet and truth.json; it holds no e-mail addresses or names.
    """
    began = perf_counter()
    landing_dir, oracle_dir = Path(landing_dir).resolve(), Path(oracle_dir).resolve()
    _check_folders(landing_dir, oracle_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)
    oracle_dir.mkdir(parents=True, exist_ok=True)
    # A new history starts a new world: live days stepped on the old one no longer apply.
    shutil.rmtree(oracle_dir / state.WORLD_DIR, ignore_errors=True)
    shutil.rmtree(landing_dir / DROPS_DIR, ignore_errors=True)

    calendar = draw_calendar(config)
    catalogue = draw_catalogue(config.seed)
    history_last_day = state.history_last_day(config)
    state.state_path(oracle_dir, history_last_day).parent.mkdir(parents=True, exist_ok=True)
    writers = _Writers()
    corrupted: dict[str, Counter[str]] = {name: Counter() for name in CORRUPTIBLE_FILES}
    quarantined: dict[str, list[str]] = {name: [] for name in SUBSCRIBER_FILES}
    canonical = 0
    try:
        writers.write(landing_dir / "products.parquet", catalogue.table())
        writers.write(oracle_dir / "products.parquet", catalogue.table())
        writers.write(landing_dir / "campaigns.parquet", calendar.table())
        for name in CHUNKED_FILES:  # every file exists, even if a tiny audience leaves it empty
            writers.write(landing_dir / name, LANDING_SCHEMAS[name].empty_table())
        writers.write(oracle_dir / "corruptions.parquet", CORRUPTION_SCHEMA.empty_table())
        starts = range(0, config.n_people, config.chunk_size)
        for first in tqdm(starts, desc="audience chunks", unit="chunk", disable=not progress):
            person_ids = np.arange(first, min(first + config.chunk_size, config.n_people), dtype=np.int64)
            chunk = _simulate_chunk(config, calendar, catalogue, person_ids)
            for name in CHUNKED_FILES:
                result = chunk.files[name]
                offset = writers.write(landing_dir / name, result.table)
                corrupted[name].update(result.log_kinds.tolist())
                if len(result.log_rows):
                    writers.write(oracle_dir / "corruptions.parquet", pa.table(
                        {
                            "source_file": pa.array(np.full(len(result.log_rows), name, dtype=object), pa.string()),
                            "source_row_key": offset + result.log_rows,
                            "kind": pa.array(result.log_kinds, pa.string()),
                            "column": pa.array(result.log_columns, pa.string()),
                        },
                        schema=CORRUPTION_SCHEMA,
                    ))
            writers.write(oracle_dir / "people.parquet", chunk.people)
            writers.write(state.state_path(oracle_dir, history_last_day), chunk.world_state)
            writers.write(oracle_dir / "send_probabilities.parquet", chunk.send_probabilities)
            writers.write(oracle_dir / HISTORY_HAZARD_FILE, chunk.purchase_hazard)
            canonical += chunk.canonical_people
            for name in SUBSCRIBER_FILES:
                quarantined[name] += chunk.quarantined_ids[name]
        rows = {name: writers.rows[landing_dir / name] for name in LANDING_SCHEMAS}
        writers.publish()
    except BaseException:
        writers.abort()
        raise

    extracted_at = config.end.strftime("%Y-%m-%d %H:%M:%S")
    corrupted_rows = {name: dict(sorted(kinds.items())) for name, kinds in corrupted.items()}
    _write_json(
        landing_dir / MANIFEST_FILE,
        {"extracted_at": extracted_at, "generator": {"name": GENERATOR_NAME, **config.as_manifest()}},
    )
    seconds = perf_counter() - began
    _write_json(oracle_dir / "truth.json", {
        "n_people": config.n_people,
        "extracted_at": extracted_at,
        "expected_canonical_subscribers": canonical,
        "rows": rows,
        "corrupted_rows": corrupted_rows,
        "quarantined_subscriber_ids": quarantined,
        "generator": config.as_manifest(),
    })
    return GenerationSummary(
        n_people=config.n_people,
        rows=rows,
        corrupted_rows=corrupted_rows,
        expected_canonical_subscribers=canonical,
        seconds=seconds,
        landing_dir=landing_dir,
        oracle_dir=oracle_dir,
    )
