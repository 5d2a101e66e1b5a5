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

    @property
    def share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    def message(self) -> str:
        return (
            f"{self.source_file}: {self.rows_quarantined:,} of {self.rows_in:,} rows "
            f"({self.share:.1%}) were quarantined, mostly as {self.dominant_reason} "
            f"({self.dominant_reason_rows:,} rows); an offending row looks like {self.example_shape}. "
            "This looks like a format change in the export, not a few bad rows: fix the export "
            "(docs/data_contract.md) or raise max_quarantine_share if it is expected."
        )


def systemic_breakages(quarantine: pd.DataFrame, max_share: float) -> list[SystemicBreakage]:
    """Files whose quarantined share exceeds `max_share`.

    `quarantine` has one row per (source_file, reason_code) with columns source_file,
    rows_in (rows in that file), reason_code (null = kept), rows, example_raw_values.
    """
    found = []
    for source_file, rows in quarantine.groupby("source_file", sort=True):
        rows_in = int(rows["rows_in"].iloc[0])
        bad = rows[rows["reason_code"].notna()].sort_values(["rows", "reason_code"], ascending=[False, True])
        quarantined = int(bad["rows"].sum())
        if rows_in == 0 or quarantined / rows_in <= max_share:
            continue
        top = bad.iloc[0]
        found.append(
            SystemicBreakage(
                source_file=str(source_file),
                rows_in=rows_in,
                rows_quarantined=quarantined,
                dominant_reason=str(top["reason_code"]),
                dominant_reason_rows=int(top["rows"]),
                example_shape=row_shape(top["example_raw_values"]),
            )
        )
    return found
