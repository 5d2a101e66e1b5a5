"""Systemic breakage of a landing file: when so many rows are quarantined that it is a format
change, not "a few bad rows", the run must stop before the marts are built.

Messages name the file, the dominant reason and the *shape* of an offending row (digits as
9, letters as a or A), never a raw value: landing rows may hold PII, and the message ends up
in logs and the run database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pandas as pd

from ml.landing.contract import DROPS_DIR, INITIAL_BATCH

_LOWER = re.compile(r"[^\W\d_]", re.UNICODE)


def value_shape(value: object, limit: int = 40) -> str:
    """`2024-05-01T12:00+02:00` -> `9999-99-99A99:99+99:99`; letters a/A, digits 9, rest kept."""
    if value is None:
        return "null"
    text = str(value)
    shaped = "".join(
        "9" if ch.isdigit() else ("A" if ch.isupper() else "a") if _LOWER.match(ch) else ch
        for ch in text[:limit]
    )
    return shaped + (f"... ({len(text)} characters)" if len(text) > limit else "")


def row_shape(raw_values_json: str | None) -> str:
    """The shape of every field of a quarantined row's raw values."""
    if not raw_values_json:
        return "{}"
    values = json.loads(raw_values_json)
    return "{" + ", ".join(f"{key}: {value_shape(value)}" for key, value in values.items()) + "}"


@dataclass(frozen=True)
class SystemicBreakage:
    source_file: str
    rows_in: int
    rows_quarantined: int
    dominant_reason: str
    dominant_reason_rows: int
    example_shape: str
    # None: the file over all its landing batches; else 'initial' or a drop's day.
    landing_batch: str | None = None

    @property
    def share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    @property
    def file_name(self) -> str:
        """The file as the landing folder holds it (docs/data_contract.md)."""
        if self.landing_batch is None:
            return self.source_file
        if self.landing_batch == INITIAL_BATCH:
            return f"{self.source_file}.parquet"
        return f"{DROPS_DIR}/{self.landing_batch}/{self.source_file}.parquet"

    def message(self) -> str:
        return (
            f"{self.file_name}: {self.rows_quarantined:,} of {self.rows_in:,} rows "
            f"({self.share:.1%}) were quarantined, mostly as {self.dominant_reason} "
            f"({self.dominant_reason_rows:,} rows); an offending row looks like {self.example_shape}. "
            "This looks like a format change in the export, not a few bad rows: fix the export "
            "(docs/data_contract.md) or raise max_quarantine_share if it is expected."
        )


def _breakage(rows: pd.DataFrame, max_share: float, **names) -> SystemicBreakage | None:
    rows_in = int(rows["rows"].sum())
    bad = rows[rows["reason_code"].notna()]
    bad = bad.groupby("reason_code", as_index=False).agg(
        rows=("rows", "sum"), example_raw_values=("example_raw_values", "first")
    ).sort_values(["rows", "reason_code"], ascending=[False, True])
    quarantined = int(bad["rows"].sum())
    if rows_in == 0 or quarantined / rows_in <= max_share:
        return None
    top = bad.iloc[0]
    return SystemicBreakage(
        rows_in=rows_in,
        rows_quarantined=quarantined,
        dominant_reason=str(top["reason_code"]),
        dominant_reason_rows=int(top["rows"]),
        example_shape=row_shape(top["example_raw_values"]),
        **names,
    )


def systemic_breakages(quarantine: pd.DataFrame, max_share: float, min_batch_rows: int = 100) -> list[SystemicBreakage]:
    """Files whose quarantined share exceeds `max_share`.

    `quarantine` has one row per (source_file, reason_code) with columns source_file,
    reason_code (null = kept), rows, example_raw_values (rows_in, if present, is not read:
    it is the sum of rows). With a `landing_batch` column (one row per (source_file,
    landing_batch, reason_code)), each file is judged over all its batches, and each batch
    of at least `min_batch_rows` rows on its own too, so a format change in today's drop is
    not drowned by the initial export, while a 12-row drop with one bad row is not a
    format change; such a breakage names the batch's file (`drops/<day>/<file>.parquet`).
    """
    found = []
    for source_file, rows in quarantine.groupby("source_file", sort=True):
        pooled = _breakage(rows, max_share, source_file=str(source_file))
        if pooled is not None:
            found.append(pooled)
        if "landing_batch" not in rows or rows["landing_batch"].nunique() < 2:
            continue  # one batch: the judgement above is that batch's
        for batch, batch_rows in rows.groupby("landing_batch", sort=True):
            if int(batch_rows["rows"].sum()) < min_batch_rows:
                continue
            breakage = _breakage(batch_rows, max_share, source_file=str(source_file), landing_batch=str(batch))
            if breakage is not None:
                found.append(breakage)
    return found


BREAKAGE_COLUMNS = {
    "source_file": "string", "landing_batch": "string", "file_name": "string", "rows_in": "int64",
    "rows_quarantined": "int64", "share": "float64", "dominant_reason": "string",
    "dominant_reason_rows": "int64", "example_shape": "string", "message": "string",
}


def breakage_rows(quarantine: pd.DataFrame, max_share: float, min_batch_rows: int = 100) -> pd.DataFrame:
    """`systemic_breakages` as a table, one row per breakage with its message, typed even when
    empty: the rows of dbt's `int_landing_files_judged`, whose test fails on any row."""
    rows = [
        {
            "source_file": b.source_file, "landing_batch": b.landing_batch, "file_name": b.file_name,
            "rows_in": b.rows_in, "rows_quarantined": b.rows_quarantined, "share": b.share,
            "dominant_reason": b.dominant_reason, "dominant_reason_rows": b.dominant_reason_rows,
            "example_shape": b.example_shape, "message": b.message(),
        }
        for b in systemic_breakages(quarantine, max_share, min_batch_rows)
    ]
    return pd.DataFrame(rows, columns=list(BREAKAGE_COLUMNS)).astype(BREAKAGE_COLUMNS)
