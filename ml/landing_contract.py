"""The raw landing contract (docs/data_contract.md) as data, so it can be checked."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

LANDING_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_subscribers": ("crm_id", "email", "first_name", "signup_at", "timezone", "country"),
    "esp_subscribers": ("esp_id", "email", "first_name", "created_at", "timezone"),
    "consent_events": (
        "consent_event_id",
        "source_system",
        "source_subscriber_id",
        "status",
        "recorded_at",
        "consent_source",
        "proof",
    ),
    "suppressions": ("suppression_id", "source_system", "source_subscriber_id", "reason", "suppressed_at"),
    "products": ("product_id", "category", "price", "currency"),
    "campaigns": ("campaign_id", "campaign_name", "category", "subject_line", "launched_at"),
    "sends": ("send_id", "campaign_id", "esp_id", "sent_at"),
    "email_events": ("event_id", "send_id", "esp_id", "event_type", "occurred_at"),
    "orders": ("order_id", "crm_id", "product_id", "ordered_at", "amount", "currency"),
}

LANDING_TABLES = tuple(LANDING_COLUMNS)

# Files whose rows carry raw PII; they are read only into the PII vault.
PII_LANDING_TABLES = ("crm_subscribers", "esp_subscribers")


class LandingContractError(ValueError):
    """A landing folder does not follow docs/data_contract.md."""


def check_landing_folder(landing_dir: Path) -> dict[str, int]:
    """Verify every contract file exists with its columns; return row counts per table.

    Reads only Parquet footers, so it is cheap even for large exports.
    """
    problems: list[str] = []
    row_counts: dict[str, int] = {}
    for table, columns in LANDING_COLUMNS.items():
        path = landing_dir / f"{table}.parquet"
        if not path.exists():
            problems.append(f"{path.name}: file is missing")
            continue
        parquet = pq.ParquetFile(path)
        present = set(parquet.schema_arrow.names)
        missing = [column for column in columns if column not in present]
        if missing:
            problems.append(f"{path.name}: missing columns {missing}")
        row_counts[table] = parquet.metadata.num_rows
    if problems:
        raise LandingContractError(
            f"Landing folder {landing_dir} does not follow docs/data_contract.md: " + "; ".join(problems)
        )
    return row_counts
