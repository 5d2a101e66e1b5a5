"""Small landing folders built from row dicts, for tests that edit one row at a time.

`base_landing()` is a clean world of two people who are both eligible on the export day:
- pat: a CRM record (c1) and an ESP record (e1) with the same email in other case;
- quinn: an ESP record only (e2).
Tests copy it, change a row or add one, and write it with `write_landing`, optionally with
daily drops (`{"2024-06-01": {"sends": [...]}}`, docs/data_contract.md).
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.landing.contract import DROPS_DIR, LANDING_COLUMNS, OPTIONAL_COLUMNS
from tests.fixtures.tiny_landing import HILLSTROM_HEADER, HILLSTROM_ROWS

EXTRACTED_AT = "2024-06-30 00:00:00"
PEOPLE = {"pat": "pat.example@example.com", "quinn": "quinn.example@example.com"}
NUMERIC_COLUMNS = {("products", "price"): pa.float64()}

Landing = dict[str, list[dict]]


def base_landing() -> Landing:
    return copy.deepcopy(
        {
            "crm_subscribers": [
                {"crm_id": "C00000001", "email": "Pat.Example@example.com", "first_name": "Pat",
                 "signup_at": "2024-01-10 09:00:00", "timezone": "Europe/Berlin", "country": "DE"},
            ],
            "esp_subscribers": [
                {"esp_id": "E00000001", "email": "pat.example@EXAMPLE.com", "first_name": "Pat",
                 "created_at": "2024-01-11 09:00:00", "timezone": "Europe/Berlin"},
                {"esp_id": "E00000002", "email": "quinn.example@example.com", "first_name": "Quinn",
                 "created_at": "2024-01-12 09:00:00", "timezone": "Europe/London"},
            ],
            "consent_events": [
                {"consent_event_id": "CE1", "source_system": "crm", "source_subscriber_id": "C00000001",
                 "status": "subscribed", "recorded_at": "2024-01-10 09:00:00", "consent_source": "signup_form",
                 "proof": "form-1"},
                {"consent_event_id": "CE2", "source_system": "esp", "source_subscriber_id": "E00000001",
                 "status": "subscribed", "recorded_at": "2024-01-11 09:00:00", "consent_source": "double_opt_in",
                 "proof": "doi-1"},
                {"consent_event_id": "CE3", "source_system": "esp", "source_subscriber_id": "E00000002",
                 "status": "subscribed", "recorded_at": "2024-01-12 09:00:00", "consent_source": "double_opt_in",
                 "proof": "doi-2"},
            ],
            "suppressions": [],
            "products": [{"product_id": "P1", "category": "apparel", "price": 30.0, "currency": "USD"}],
            "campaigns": [
                {"campaign_id": "K1", "campaign_name": "Spring", "category": "apparel",
                 "subject_line": "New styles", "launched_at": "2024-03-01 08:00:00"},
            ],
            "sends": [
                {"send_id": "S1", "campaign_id": "K1", "esp_id": "E00000001", "sent_at": "2024-03-01 10:00:00"},
                {"send_id": "S2", "campaign_id": "K1", "esp_id": "E00000002", "sent_at": "2024-03-01 10:00:00"},
            ],
            "email_events": [
                {"event_id": "V1", "send_id": "S1", "esp_id": "E00000001", "event_type": "delivered",
                 "occurred_at": "2024-03-01 10:01:00"},
            ],
            "orders": [
                {"order_id": "O1", "crm_id": "C00000001", "product_id": "P1", "ordered_at": "2024-03-05 12:00:00",
                 "amount": "30.00", "currency": "USD"},
            ],
        }
    )


def _write_table(path: Path, table: str, rows: list[dict]) -> None:
    # The contract's columns, and each optional one that a row carries (timezone, say).
    optional = [c for c in OPTIONAL_COLUMNS.get(table, ()) if any(c in row for row in rows)]
    columns = [*LANDING_COLUMNS[table], *optional]
    schema = pa.schema([(c, NUMERIC_COLUMNS.get((table, c), pa.string())) for c in columns])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_landing(
    landing_dir: Path, landing: Landing, extracted_at: str = EXTRACTED_AT, drops: dict[str, Landing] | None = None
) -> None:
    """Write every contract file (string columns unless the contract says otherwise), a small
    hillstrom.csv, and the drops: {day: {table: rows}}, each with its manifest. Drops of an
    earlier call are removed first."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    for table in LANDING_COLUMNS:
        _write_table(landing_dir / f"{table}.parquet", table, landing.get(table, []))
    (landing_dir / "_manifest.json").write_text(json.dumps({"extracted_at": extracted_at}))
    with open(landing_dir / "hillstrom.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([HILLSTROM_HEADER, *HILLSTROM_ROWS])
    shutil.rmtree(landing_dir / DROPS_DIR, ignore_errors=True)
    for day, tables in (drops or {}).items():
        folder = landing_dir / DROPS_DIR / day
        folder.mkdir(parents=True)
        for table, rows in tables.items():
            _write_table(folder / f"{table}.parquet", table, rows)
        (folder / "_manifest.json").write_text(json.dumps({"extracted_at": f"{day} 23:59:59"}))
