"""Dirty-data mode: corrupt generated rows with exactly one reason code each.

Every corruption is of one kind only, so the oracle's log is the unambiguous truth of what
the pipeline should quarantine and why:

- rows are chosen only among rows whose subscriber row is itself clean (otherwise the
  pipeline would rightly report ``unknown_subscriber`` first);
- the replacement value breaks exactly one rule (a future timestamp is well-formed, an
  unknown subscriber id is well-formed, a duplicate-id row is otherwise valid, ...);
- copies (``duplicate_event_id``, ``exact_duplicate``) are inserted after their original, and
  originals are never corrupted themselves.

Which rows are hit is a pure function of (seed, file, row uid), so it does not depend on
chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.simulator import formatting
from ml.simulator import randomness as rnd
from ml.simulator.config import DirtyDataConfig
from ml.simulator.contract import CorruptibleFile
from ml.simulator.population import DAY, HOUR, unknown_subscriber_ids

UNPARSEABLE_TIMESTAMPS = (
    "not-a-date", "2026-13-45 25:61:00", "2026-02-30 12:00:00", "31/02/2026 10:00", "yesterday",
    "0000-00-00 00:00:00", "2026-06-31T24:00:00",
)
INVALID_TIMEZONES = ("Mars/Olympus", "GMT+25", "Europe/Atlantis", "America/New York", "UTC+14:30", "Pacific/Nowhere")
UNKNOWN_CONSENT_STATUSES = ("maybe", "pending", "unknown", "resubscribe_requested")
UNKNOWN_EVENT_TYPES = ("forward", "soft_bounce", "spam_report", "view_in_browser", "print")
NON_NUMERIC_AMOUNTS = ("free", "abc", "12.3.4", "ten dollars", "$$")
UNKNOWN_CURRENCIES = ("JPY", "BTC", "XYZ", "CHF", "AUD")

NO_LOWER_BOUND = np.int64(-(2**62))
# A duplicate-id copy is the original moved 1 s to 1 h later; rows this close to the export
# moment are not used, so the copy never becomes a future timestamp.
_DUPLICATE_SHIFT = HOUR


@dataclass
class RowMeta:
    """What the corruptor needs to know about each generated row (never written)."""

    uid: np.ndarray  # stable, unique row identity (uint64)
    timestamp: np.ndarray  # the row's true timestamp column value, epoch seconds
    lower_bound: np.ndarray  # signup of the row's subscriber (before_signup), else NO_LOWER_BOUND
    subscriber_ok: np.ndarray  # the referenced subscriber row is clean
    system: np.ndarray  # 0 crm / 1 esp: id space of the subscriber column
    # Rows whose subscriber id must stay tieable to its person: revocations. A phantom or
    # blank id on one, with its send's id broken too, ties it to nobody, and the pipeline stops
    # by design (a 300,000-person world held one). Their unknown_subscriber is "case" style and
    # missing_required_field never blanks their subscriber column. None = no such rows.
    keeps_subscriber: np.ndarray | None = None


@dataclass
class Corrupted:
    table: pa.Table
    log_rows: np.ndarray  # row numbers in ``table`` (0-based, within this chunk)
    log_kinds: np.ndarray  # reason codes
    log_columns: np.ndarray  # column changed, None for copies
    corrupted_originals: np.ndarray  # bool per input row: changed in place


def _pick(pool: tuple[str, ...], u: np.ndarray) -> list[str]:
    return [pool[i] for i in np.minimum((u * len(pool)).astype(np.int64), len(pool) - 1)]


def _break_email(emails: list[str], u: np.ndarray) -> list[str]:
    """Turn valid addresses into ones that do not look like local@domain.tld."""
    out = []
    for email, draw in zip(emails, u):  # only the few corrupted rows
        local, _, domain = email.partition("@")
        style = int(draw * 4)
        out.append(
            f"{local}{domain}" if style == 0
            else f"{local}@" if style == 1
            else f"@{domain}" if style == 2
            else f"{local}@{domain.split('.')[0]}"
        )
    return out


def assign_kinds(
    spec: CorruptibleFile, meta: RowMeta, dirty: DirtyDataConfig, seed: int, extracted_at: int
) -> np.ndarray:
    """Kind index per row into ``spec.kinds``; ``len(spec.kinds)`` means untouched."""
    rates = np.array([dirty.rate(kind) for kind in spec.kinds])
    clean = len(spec.kinds)
    if rates.sum() == 0 or len(meta.uid) == 0:
        return np.full(len(meta.uid), clean, dtype=np.int64)
    u = rnd.uniform(seed, f"dirty/{spec.name}", meta.uid)
    choice = np.searchsorted(np.cumsum(rates), u, side="right")
    choice[~meta.subscriber_ok] = clean
    if "duplicate_event_id" in spec.kinds:
        too_late = meta.timestamp >= extracted_at - _DUPLICATE_SHIFT - 1
        choice[(choice == spec.kinds.index("duplicate_event_id")) & too_late] = clean
    return choice


def corrupt_table(
    table: pa.Table, spec: CorruptibleFile, meta: RowMeta, dirty: DirtyDataConfig, seed: int, extracted_at: int
) -> Corrupted:
    """Apply the configured corruptions to one chunk of one landing file."""
    n = table.num_rows
    choice = assign_kinds(spec, meta, dirty, seed, extracted_at)
    draw = lambda what, rows: rnd.uniform(seed, f"dirty/{spec.name}/{what}", meta.uid[rows])  # noqa: E731
    replacements: dict[str, list[tuple[np.ndarray, list]]] = {}
    log_rows, log_kinds, log_columns = [], [], []

    def replace(kind: str, column: str | np.ndarray, rows: np.ndarray, values: list) -> None:
        columns = np.broadcast_to(np.asarray(column, dtype=object), rows.shape)
        for name in np.unique(columns) if len(rows) else []:
            pick = columns == name
            replacements.setdefault(name, []).append((rows[pick], [v for v, p in zip(values, pick) if p]))
        log_rows.append(rows)
        log_kinds.append(np.full(len(rows), kind, dtype=object))
        log_columns.append(columns.astype(object))

    copies: list[tuple[str, np.ndarray]] = []
    for index, kind in enumerate(spec.kinds):
        rows = np.flatnonzero(choice == index)
        if len(rows) == 0:
            continue
        u = draw(kind, rows)
        ts = spec.timestamp
        keep = np.zeros(len(rows), dtype=bool) if meta.keeps_subscriber is None else meta.keeps_subscriber[rows]
        if kind == "missing_required_field":
            which = rnd.integers(seed, f"dirty/{spec.name}/column", len(spec.blankable), meta.uid[rows])
            column = np.array(spec.blankable, dtype=object)[which]
            if keep.any():
                others = [c for c in spec.blankable if c != spec.subscriber]
                kept_which = rnd.integers(seed, f"dirty/{spec.name}/column_kept", len(others), meta.uid[rows[keep]])
                column[keep] = np.array(others, dtype=object)[kept_which]
            replace(kind, column, rows, [None if x >= 0.25 else "" for x in u])
        elif kind == "invalid_email":
            replace(kind, "email", rows, _break_email(table["email"].take(rows).to_pylist(), u))
        elif kind == "unparseable_timestamp":
            replace(kind, ts, rows, _pick(UNPARSEABLE_TIMESTAMPS, u))
        elif kind == "future_timestamp":
            future = extracted_at + HOUR + np.floor(u * 400 * DAY).astype(np.int64)
            replace(kind, ts, rows, formatting.timestamps(future).to_pylist())
        elif kind == "invalid_timezone":
            replace(kind, "timezone", rows, _pick(INVALID_TIMEZONES, u))
        elif kind == "unknown_consent_status":
            replace(kind, "status", rows, _pick(UNKNOWN_CONSENT_STATUSES, u))
        elif kind == "unknown_event_type":
            replace(kind, "event_type", rows, _pick(UNKNOWN_EVENT_TYPES, u))
        elif kind == "invalid_amount":
            original = table["amount"].take(rows).to_pylist()
            pool = _pick(NON_NUMERIC_AMOUNTS, draw("amount_text", rows))
            # A negative amount is a return in contract v2, not a broken value: zeros and text.
            broken = ["0.00" if x < 0.3 else "-0" if x < 0.6 else p for a, x, p in zip(original, u, pool)]
            replace(kind, "amount", rows, broken)
        elif kind == "unknown_currency":
            replace(kind, "currency", rows, _pick(UNKNOWN_CURRENCIES, u))
        elif kind == "unknown_subscriber":
            case = keep | (spec.unknown_subscriber_style == "case")
            if case.any():
                lowered = [i.lower() for i in table[spec.subscriber].take(rows[case]).to_pylist()]
                replace(kind, spec.subscriber, rows[case], lowered)
            if (~case).any():
                ids = unknown_subscriber_ids(seed, f"dirty/{spec.name}/unknown", meta.uid[rows[~case]], meta.system[rows[~case]])
                replace(kind, spec.subscriber, rows[~case], ids)
        elif kind == "before_signup":
            earlier = meta.lower_bound[rows] - HOUR - np.floor(u * 30 * DAY).astype(np.int64)
            replace(kind, ts, rows, formatting.timestamps(earlier).to_pylist())
        elif kind in ("duplicate_event_id", "exact_duplicate"):
            copies.append((kind, rows))
        else:  # pragma: no cover - guarded by the contract module
            raise ValueError(f"unknown corruption kind {kind}")

    corrupted_originals = np.zeros(n, dtype=bool)
    for rows in log_rows:
        corrupted_originals[rows] = True
    for column, parts in replacements.items():
        rows = np.concatenate([r for r, _ in parts])
        values = [v for _, vals in parts for v in vals]
        order = np.argsort(rows, kind="stable")
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        position = table.schema.get_field_index(column)
        new_values = pa.array([values[i] for i in order], type=pa.string())
        replaced = pc.replace_with_mask(table[column].combine_chunks(), pa.array(mask), new_values)
        table = table.set_column(position, column, replaced)

    if copies:
        table, new_position, copy_rows, copy_kinds = _insert_copies(table, spec, meta, copies, seed, draw)
        log_rows = [new_position[r] for r in log_rows] + [copy_rows]
        log_kinds.append(copy_kinds)
        log_columns.append(np.full(len(copy_rows), None, dtype=object))
    elif not log_rows:
        return Corrupted(table, np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, object), corrupted_originals)
    return Corrupted(
        table,
        np.concatenate(log_rows).astype(np.int64),
        np.concatenate(log_kinds),
        np.concatenate(log_columns),
        corrupted_originals,
    )


def _insert_copies(table, spec, meta, copies, seed, draw):
    """Append copies of clean rows at random positions after their originals."""
    n = table.num_rows
    sources = np.concatenate([rows for _, rows in copies])
    kinds = np.concatenate([np.full(len(rows), kind, dtype=object) for kind, rows in copies])
    duplicated = table.take(pa.array(sources))
    is_new_id = kinds == "duplicate_event_id"
    if is_new_id.any():
        # Same key, different content: the timestamp moves a little (staying valid).
        shift = 1 + np.floor(draw("shift", sources[is_new_id]) * (_DUPLICATE_SHIFT - 1)).astype(np.int64)
        mask = pa.array(is_new_id)
        column = spec.timestamp
        shifted = formatting.timestamps(meta.timestamp[sources[is_new_id]] + shift)
        duplicated = duplicated.set_column(
            duplicated.schema.get_field_index(column), column,
            pc.replace_with_mask(duplicated[column].combine_chunks(), mask, shifted),
        )
    u_position = rnd.uniform(seed, f"dirty/{spec.name}/position", meta.uid[sources], kinds == "exact_duplicate")
    after = np.floor(u_position * (n - sources))
    sort_key = np.concatenate([np.arange(n, dtype=np.float64), sources + 0.5 + after])
    order = np.argsort(sort_key, kind="stable")
    combined = pa.concat_tables([table, duplicated]).take(pa.array(order))
    new_position = np.empty(len(order), dtype=np.int64)
    new_position[order] = np.arange(len(order))
    return combined, new_position, new_position[n:], kinds
