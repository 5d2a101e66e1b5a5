"""The raw landing contract (docs/data_contract.md) as data, so it can be checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.duckdb_settings import DuckDBSettings
from ml.quality import ParquetFile

LANDING_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_subscribers": ("crm_id", "email", "first_name", "signup_at", "country"),
    "esp_subscribers": ("esp_id", "email", "first_name", "created_at"),
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
    "orders": ("order_id", "crm_id", "product_id", "ordered_at", "currency"),
}

LANDING_TABLES = tuple(LANDING_COLUMNS)

# Columns a file may carry or leave out (docs/data_contract.md). When present they are text
# and are checked like the others; when absent, dbt reads them as null.
# `timezone` falls back to the country's zone, then a configured default (contract v2).
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_subscribers": ("timezone", "birth_year", "gender"),
    "esp_subscribers": ("timezone",),
    # Contract v2 order lines: a line's value is `amount`, or `quantity` x `unit_price`; a
    # negative one is a return netted against its order (`returns_order_id` names it).
    "orders": ("amount", "line_number", "quantity", "unit_price", "returns_order_id"),
}

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


# Accepted landing timestamps: ISO-8601 in UTC ('YYYY-MM-DD HH:MM:SS', a 'T' separator,
# fractional seconds and a trailing 'Z' allowed), or with an offset from UTC ('+01:00',
# '-0530', '+01'), which staging converts to UTC. dbt's var `timestamp_patterns` is the
# same (tests/test_one_source.py). Full-match regexes.
TIMESTAMP_PATTERNS: dict[str, str] = {
    "utc": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z?",
    "with_offset": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-](0\d|1[0-4])(:?[0-5]\d)?",
}

# The timestamp column of each file (docs/data_contract.md).
TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_subscribers": ("signup_at",),
    "esp_subscribers": ("created_at",),
    "consent_events": ("recorded_at",),
    "suppressions": ("suppressed_at",),
    "campaigns": ("launched_at",),
    "sends": ("sent_at",),
    "email_events": ("occurred_at",),
    "orders": ("ordered_at",),
}


def max_text_length(column: str) -> int:
    return MAX_TEXT_LENGTH.get(column, MAX_TEXT_LENGTH["default"])

# Files whose rows carry raw PII; they are read only into the PII vault.
PII_LANDING_TABLES = ("crm_subscribers", "esp_subscribers")

# Layout (docs/data_contract.md): the initial full export at the top of the landing folder,
# then one drop folder per day, <landing>/drops/<YYYY-MM-DD>/, with that day's new and
# changed rows of any subset of the tables. dbt reads every <table>.parquet below the
# landing folder (one glob that always matches), so no other file of that name may be there.
MANIFEST_FILE = "_manifest.json"
DROPS_DIR = "drops"
INITIAL_BATCH = "initial"


@dataclass(frozen=True)
class LandingFile:
    """One landing file: a table's file in one batch ('initial' or a drop's day)."""

    table: str
    batch: str
    path: Path

    @property
    def name(self) -> str:
        """The file as errors and the quarantine name it: `sends.parquet` or
        `drops/2026-07-03/sends.parquet` (relative to the landing folder)."""
        if self.batch == INITIAL_BATCH:
            return f"{self.table}.parquet"
        return f"{DROPS_DIR}/{self.batch}/{self.table}.parquet"


def _drop_day(name: str) -> date | None:
    """The day a drop folder name stands for, or None when it is not YYYY-MM-DD."""
    if len(name) != 10:
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _layout_problems(landing_dir: Path) -> tuple[list[str], list[date]]:
    """Problems of the drop layout, and the valid drop days in order."""
    problems: list[str] = []
    days: list[date] = []
    drops = landing_dir / DROPS_DIR
    if drops.exists() and not drops.is_dir():
        return [f"{DROPS_DIR}: not a folder. Fix: {DROPS_DIR}/ holds one folder per day, {DROPS_DIR}/YYYY-MM-DD/."], []
    if drops.is_dir():
        for entry in sorted(drops.iterdir()):
            if entry.is_file() and entry.name.startswith("."):
                continue  # .DS_Store and the like; dbt never reads them
            day = _drop_day(entry.name) if entry.is_dir() else None
            if day is None:
                kind = "folder" if entry.is_dir() else "file"
                problems.append(
                    f"{DROPS_DIR}/{entry.name}: a {kind} in {DROPS_DIR}/ that is not a drop folder; drop folders "
                    f"are named by their UTC day, YYYY-MM-DD (e.g. {DROPS_DIR}/2026-07-03/). Fix: rename it, "
                    "or move it out of the landing folder (a leftover of an interrupted write can be deleted)."
                )
                continue
            days.append(day)
            problems.extend(_drop_folder_problems(entry, day))
    for path in sorted(landing_dir.rglob("*.parquet")):
        table = path.name.removesuffix(".parquet")
        if table not in LANDING_COLUMNS:
            continue
        relative = path.relative_to(landing_dir)
        parts = relative.parts
        if len(parts) == 1 or (len(parts) == 3 and parts[0] == DROPS_DIR and _drop_day(parts[1]) is not None):
            continue
        if len(parts) == 3 and parts[0] == DROPS_DIR:
            continue  # its folder is reported above
        problems.append(
            f"{relative}: dbt reads every {path.name} below the landing folder, and this one is neither the "
            f"initial export ({path.name}) nor in a drop folder ({DROPS_DIR}/YYYY-MM-DD/{path.name}). "
            "Fix: move it out of the landing folder."
        )
    return problems, days


def _drop_folder_problems(folder: Path, day: date) -> list[str]:
    problems = []
    for entry in sorted(folder.iterdir()):
        if entry.name == MANIFEST_FILE:
            problems.extend(_drop_manifest_problems(entry, day))
        elif entry.suffix == ".parquet" and entry.stem not in LANDING_COLUMNS:
            problems.append(
                f"{DROPS_DIR}/{day.isoformat()}/{entry.name}: not a landing table, so it would not be read. "
                f"Fix: name it after its table ({', '.join(f'{t}.parquet' for t in LANDING_TABLES)})."
            )
    return problems


def _drop_manifest_problems(path: Path, day: date) -> list[str]:
    name = f"{DROPS_DIR}/{day.isoformat()}/{MANIFEST_FILE}"
    try:
        extracted_at = datetime.fromisoformat(str(json.loads(path.read_text())["extracted_at"]))
    except (ValueError, KeyError, TypeError, OSError):
        return [
            f'{name}: not a manifest. Fix: write {{"extracted_at": "{day.isoformat()} 23:59:59"}} '
            "(UTC) or remove the file (it is optional)."
        ]
    if extracted_at.date() != day:
        return [
            f"{name}: extracted_at {extracted_at} is not on the drop's day {day.isoformat()}. Fix: put the "
            f"drop in {DROPS_DIR}/{extracted_at.date().isoformat()}/, or correct extracted_at."
        ]
    return []


def drop_days(landing_dir: Path) -> list[date]:
    """The days of the drop folders in `landing_dir`, oldest first (checked names only)."""
    return _layout_problems(Path(landing_dir))[1]


def landing_files(landing_dir: Path, as_of: date | None = None) -> list[LandingFile]:
    """Every landing file that exists: the initial export's, then each drop's (oldest
    first), up to the drops of `as_of`'s day when given. Drop folders with bad names are
    skipped here; check_landing_folder reports them."""
    landing_dir = Path(landing_dir)
    files = [
        LandingFile(table, INITIAL_BATCH, landing_dir / f"{table}.parquet")
        for table in LANDING_TABLES
        if (landing_dir / f"{table}.parquet").exists()
    ]
    for day in drop_days(landing_dir):
        if as_of is not None and day > as_of:
            continue
        for table in LANDING_TABLES:
            path = landing_dir / DROPS_DIR / day.isoformat() / f"{table}.parquet"
            if path.exists():
                files.append(LandingFile(table, day.isoformat(), path))
    return files


class LandingContractError(ValueError):
    """A landing folder does not follow docs/data_contract.md."""


def _type_problem(name: str, column: str, arrow_type: pa.DataType) -> str | None:
    """Why a column's Parquet type breaks the contract, with the fix; None when it fits."""
    if pa.types.is_null(arrow_type):
        return None  # an all-null column: every row is judged in staging
    if column in NUMERIC_COLUMNS:
        if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
            return None
        return f"{name}: column {column} has type {arrow_type}; the contract expects a number. Fix: write it as double."
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return None
    hint = ""
    if pa.types.is_integer(arrow_type) or pa.types.is_timestamp(arrow_type):
        hint = (
            " Timestamps are text 'YYYY-MM-DD HH:MM:SS' in UTC; epoch numbers or typed timestamps are "
            "refused rather than guessed at."
        )
    return (
        f"{name}: column {column} has type {arrow_type}; the contract expects text.{hint} "
        f"Fix: export {column} as a string column (docs/data_contract.md)."
    )


def _encoding_problem(name: str, column: str, parquet: pq.ParquetFile) -> str | None:
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
                        f"{name}: column {column}, row {offset + index} (0-based) is not valid UTF-8 text. "
                        "Fix: re-export the file as UTF-8."
                    )
        offset += len(array)
    return None


# What a file that is not Parquet starts with, for the error that names it.
_FILE_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook"),
    (b"SQLite format 3", "a SQLite database"),
)


def _not_parquet_problem(file: LandingFile) -> str | None:
    """Why the file is not Parquet, judged by its first and last bytes; None when it may be."""
    try:
        size = file.path.stat().st_size
        with open(file.path, "rb") as handle:
            head = handle.read(512)
            handle.seek(max(0, size - 4))
            tail = handle.read(4)
    except OSError as error:
        return f"{file.name}: cannot be read ({type(error).__name__}). Fix: check the file's permissions."
    if size == 0:
        return f"{file.name}: the file is empty (0 bytes). Fix: export the table again, or remove the file."
    if head[:4] == b"PAR1" and tail == b"PAR1":
        return None
    looks_like = "not Parquet"
    for signature, kind in _FILE_SIGNATURES:
        if head.startswith(signature):
            looks_like = kind
            break
    else:
        if head[:4] == b"PAR1":
            looks_like = "a Parquet file that is cut short (its footer is missing)"
        else:
            try:
                text = head.decode("utf-8")
            except UnicodeDecodeError:
                text = ""
            if text.lstrip().startswith(("{", "[")):
                looks_like = "JSON text"
            elif text and any(sep in text.splitlines()[0] for sep in (",", ";", "\t", "|")):
                looks_like = "delimited text (a CSV file saved under a .parquet name?)"
            elif text:
                looks_like = "plain text"
    return (
        f"{file.name}: not a Parquet file: it is {looks_like}. Fix: convert it to Parquet with the "
        f"contract's columns (e.g. pandas.read_csv(path, dtype=str).to_parquet('{file.table}.parquet')), "
        "or write it with a connector (docs/data_contract.md)."
    )


def _file_problems(file: LandingFile) -> tuple[list[str], int | None]:
    """Contract problems of one landing file, and its row count when it could be read."""
    columns = LANDING_COLUMNS[file.table]
    not_parquet = _not_parquet_problem(file)
    if not_parquet:
        return [not_parquet], None
    try:
        parquet = pq.ParquetFile(file.path)
    except (pa.ArrowException, OSError) as error:
        return [f"{file.name}: not a readable Parquet file ({type(error).__name__}). Fix: export it again."], None
    problems = []
    schema = parquet.schema_arrow
    missing = [column for column in columns if column not in schema.names]
    if file.table == "orders" and "amount" not in schema.names and not {"quantity", "unit_price"} <= set(schema.names):
        problems.append(
            f"{file.name}: has neither an amount column nor quantity and unit_price columns, so no line has a value. "
            "Fix: add amount (the line's value), or quantity and unit_price (docs/data_contract.md, order lines)."
        )
    if missing:
        problems.append(
            f"{file.name}: missing columns {missing}. Fix: add them (the contract's columns are {list(columns)}; "
            "docs/data_contract.md)."
        )
    present_optional = [c for c in OPTIONAL_COLUMNS.get(file.table, ()) if c in schema.names]
    for column in (*columns, *present_optional):
        if column in missing:
            continue
        arrow_type = schema.field(column).type
        problem = _type_problem(file.name, column, arrow_type)
        if problem is None and (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
            problem = _encoding_problem(file.name, column, parquet)
        if problem:
            problems.append(problem)
    return problems, parquet.metadata.num_rows


def landing_folder_problems(landing_dir: Path, as_of: date | None = None) -> tuple[list[str], dict[str, int]]:
    """Every contract problem of the folder's files and layout (check_landing_folder), and the
    rows per table; nothing is raised."""
    landing_dir = Path(landing_dir)
    problems: list[str] = []
    row_counts: dict[str, int] = {table: 0 for table in LANDING_TABLES}
    for table in LANDING_TABLES:
        if not (landing_dir / f"{table}.parquet").exists():
            problems.append(
                f"{table}.parquet: file is missing from the initial export. Fix: export it with the columns "
                f"{list(LANDING_COLUMNS[table])} (an empty file with those columns is fine when you have no "
                "such rows)."
            )
    layout_problems, _ = _layout_problems(landing_dir)
    problems.extend(layout_problems)
    counted = set(landing_files(landing_dir, as_of))
    for file in landing_files(landing_dir):
        file_problems, rows = _file_problems(file)
        problems.extend(file_problems)
        if rows is not None and file in counted:
            row_counts[file.table] += rows
    return problems, row_counts


def check_landing_folder(landing_dir: Path, as_of: date | None = None) -> dict[str, int]:
    """Verify the landing folder (docs/data_contract.md): every contract file of the initial
    export exists, every file of it and of every drop has the contract's columns, their
    types and valid UTF-8 text, and the drop layout holds (dated folders, nothing else dbt
    would read). Return the rows per table over the initial export and the drops (up to
    `as_of`'s day when given; every drop is checked either way, as dbt opens them all).

    Errors name the file (`drops/<day>/<table>.parquet` for a drop), the column and the row
    number, never a value: landing files may hold PII, and error messages end up in logs
    and run databases.
    """
    problems, row_counts = landing_folder_problems(landing_dir, as_of)
    if problems:
        raise LandingContractError(
            f"Landing folder {landing_dir} does not follow docs/data_contract.md: " + "; ".join(problems)
        )
    return row_counts


# Landing tables validated from a DataFrame, not in DuckDB: the products suite checks the
# price column's type, which GX reads only from a DataFrame (its SQL query assets report no
# column types: the expectation raises). A catalogue stays small whatever the audience.
VALIDATED_IN_PANDAS = ("products",)


def landing_file_for_suite(path: Path, table: str, duckdb_settings: DuckDBSettings) -> pd.DataFrame | ParquetFile:
    """What `ml.quality.validate_table` validates for a landing file: the file read by DuckDB
    through `landing_file_select`, or, for VALIDATED_IN_PANDAS, the same view as a DataFrame."""
    if table in VALIDATED_IN_PANDAS:
        return with_optional_columns(clip_long_text(pd.read_parquet(path), table), table)
    return ParquetFile(landing_file_select(path, table), duckdb_settings)


def landing_file_select(path: Path, table: str) -> str:
    """The SQL that reads a landing file as its suite validates it, so Great Expectations runs
    in DuckDB instead of on the whole file in pandas (19 GB at 1,000,000 people, issue 15).

    The SQL twin of `with_optional_columns(clip_long_text(frame))`: every text value cut to one
    character over its limit, every optional column the file left out as nulls, every other
    column as the file has it (a column of the wrong type stays so, for the suite to see).
    """
    schema = pq.read_schema(path)
    text_types = (pa.types.is_string, pa.types.is_large_string)
    columns = []
    for field in schema:
        name = _quoted(field.name)
        if field.name in LANDING_COLUMNS.get(table, ()) and any(is_text(field.type) for is_text in text_types):
            columns.append(f"left({name}, {max_text_length(field.name) + 1}) as {name}")
        else:
            columns.append(name)
    columns += [
        f"cast(null as varchar) as {_quoted(column)}"
        for column in OPTIONAL_COLUMNS.get(table, ()) if column not in schema.names
    ]
    source = str(Path(path).resolve()).replace("'", "''")
    return f"select {', '.join(columns)} from read_parquet('{source}')"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def with_optional_columns(frame, table: str):
    """The frame with every optional column of `table` (OPTIONAL_COLUMNS) that its file left
    out, as nulls: what dbt reads for them, and what the table's suite validates."""
    missing = [column for column in OPTIONAL_COLUMNS.get(table, ()) if column not in frame.columns]
    return frame.assign(**{column: None for column in missing}) if missing else frame


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
