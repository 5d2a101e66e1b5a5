"""The raw landing contract (docs/data_contract.md) as data, so it can be checked."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
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

# Columns that are numbers; every other contract column is text (docs/data_contract.md).
# dbt reads the same list as the var `landing_numeric_columns`.
NUMERIC_COLUMNS = ("price",)

# Longest accepted text value per column (characters); longer values are quarantined as
# `value_too_long` in staging. dbt's var `max_text_length` is a copy, proven equal by a test.
MAX_TEXT_LENGTH: dict[str, int] = {
    "default": 256,
    "email": 320,
    "proof": 2048,
    "campaign_name": 512,
    "subject_line": 998,
}


def max_text_length(column: str) -> int:
    return MAX_TEXT_LENGTH.get(column, MAX_TEXT_LENGTH["default"])

# Files whose rows carry raw PII; they are read only into the PII vault.
PII_LANDING_TABLES = ("crm_subscribers", "esp_subscribers")


class LandingContractError(ValueError):
    """A landing folder does not follow docs/data_contract.md."""


def _type_problem(path: Path, column: str, arrow_type: pa.DataType) -> str | None:
    """Why a column's Parquet type breaks the contract, with the fix; None when it fits."""
    if pa.types.is_null(arrow_type):
        return None  # an all-null column: every row is judged in staging
    if column in NUMERIC_COLUMNS:
        if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
            return None
        return f"{path.name}: column {column} has type {arrow_type}; the contract expects a number. Fix: write it as double."
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return None
    hint = ""
    if pa.types.is_integer(arrow_type) or pa.types.is_timestamp(arrow_type):
        hint = (
            " Timestamps are text 'YYYY-MM-DD HH:MM:SS' in UTC; epoch numbers or typed timestamps are "
            "refused rather than guessed at."
        )
    return (
        f"{path.name}: column {column} has type {arrow_type}; the contract expects text.{hint} "
        f"Fix: export {column} as a string column (docs/data_contract.md)."
    )


def _encoding_problem(path: Path, column: str, parquet: pq.ParquetFile) -> str | None:
    """The first row whose text is not valid UTF-8, by file, column and row number only."""
    offset = 0
    for batch in parquet.iter_batches(columns=[column], batch_size=65_536):
        array = batch.column(0)
        try:
            array.validate(full=True)
        except pa.ArrowInvalid:
            # Find the row without ever printing the value.
            for index in range(len(array)):
                try:
                    array.slice(index, 1).validate(full=True)
                except pa.ArrowInvalid:
                    return (
                        f"{path.name}: column {column}, row {offset + index} (0-based) is not valid UTF-8 text. "
                        "Fix: re-export the file as UTF-8."
                    )
        offset += len(array)
    return None


def check_landing_folder(landing_dir: Path) -> dict[str, int]:
    """Verify every contract file exists with its columns, their types and valid UTF-8 text;
    return row counts per table.

    Errors name the file, the column and the row number, never a value: landing files may
    hold PII, and error messages end up in logs and run databases.
    """
    problems: list[str] = []
    row_counts: dict[str, int] = {}
    for table, columns in LANDING_COLUMNS.items():
        path = landing_dir / f"{table}.parquet"
        if not path.exists():
            problems.append(f"{path.name}: file is missing")
            continue
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            problems.append(f"{path.name}: not a readable Parquet file ({type(error).__name__})")
            continue
        schema = parquet.schema_arrow
        missing = [column for column in columns if column not in schema.names]
        if missing:
            problems.append(f"{path.name}: missing columns {missing}")
        for column in columns:
            if column in missing:
                continue
            arrow_type = schema.field(column).type
            problem = _type_problem(path, column, arrow_type)
            if problem is None and (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
                problem = _encoding_problem(path, column, parquet)
            if problem:
                problems.append(problem)
        row_counts[table] = parquet.metadata.num_rows
    if problems:
        raise LandingContractError(
            f"Landing folder {landing_dir} does not follow docs/data_contract.md: " + "; ".join(problems)
        )
    return row_counts


def clip_long_text(frame, table: str):
    """A copy of a landing frame with every text value cut to one character over its limit.

    Expectations (regexes above all) then run on bounded strings, so one hostile megabyte
    cannot stall a check; an over-long value still reads as over-long. Staging quarantines
    it as `value_too_long`.
    """
    clipped = frame.copy()
    for column in LANDING_COLUMNS.get(table, ()):
        if column in NUMERIC_COLUMNS or column not in clipped or clipped[column].dtype != object:
            continue
        limit = max_text_length(column) + 1
        values = clipped[column]
        too_long = values.map(lambda v: isinstance(v, str) and len(v) > limit)
        if too_long.any():
            clipped.loc[too_long, column] = values[too_long].str.slice(0, limit)
    return clipped
