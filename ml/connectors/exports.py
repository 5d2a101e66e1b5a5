"""Reading an export: every column as text, the user's column names checked, timestamps read.

Nothing here guesses: a missing column, an undecodable file or a timestamp that does not
fit the stated format stops the conversion with a message that names the file, what is
wrong and the option that fixes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pyarrow.parquet as pq


class ConnectorError(ValueError):
    """An export, an option or an output folder the connector cannot use; the message says
    which and how to fix it."""


@dataclass(frozen=True)
class ExportColumn:
    """One column the connector reads: what it holds, its name in the export, and the CLI
    option that renames it."""

    role: str
    name: str
    # The CLI option that renames it ('--customer-column'), or how else to fix its absence.
    option: str

    @property
    def fix(self) -> str:
        if self.option.startswith("--"):
            return f"name the export's {self.role} column with {self.option} <column>"
        return self.option


def read_export(path: Path, encoding: str = "utf-8-sig") -> pd.DataFrame:
    """The export at `path` with every column as text ('' where blank), read as Parquet when
    the file is Parquet (by its first bytes, whatever its name) and as CSV otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConnectorError(f"{path}: no such file. Fix: pass the path of the export file.")
    with open(path, "rb") as handle:
        is_parquet = handle.read(4) == b"PAR1"
    if is_parquet:
        frame = pq.read_table(path).to_pandas()
        return frame.apply(lambda column: column.map(_value_as_text)).astype(object) if len(frame) else frame.astype(object)
    try:
        # dtype=str and no NA strings: 'NA' or 'null' in an export is text until a check says otherwise.
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    except UnicodeDecodeError as error:
        raise ConnectorError(
            f"{path}: not {encoding} text (byte {error.start} cannot be decoded). Fix: pass the export's "
            "encoding with --encoding (UCI Online Retail CSV copies are often --encoding latin-1)."
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ConnectorError(f"{path}: not a readable CSV or Parquet file ({error}). Fix: export it again as CSV or Parquet.") from None


def _value_as_text(value: object) -> str:
    """A Parquet value as the text a CSV export would hold: blank for null, 17850 for 17850.0."""
    if value is None or (not isinstance(value, str) and _is_missing(value)):
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and other non-scalars are values
        return False


def require_columns(frame: pd.DataFrame, path: Path, columns: list[ExportColumn]) -> None:
    """Raise ConnectorError naming every wanted column the export lacks, the columns it has,
    and the option that names the right one."""
    missing = [column for column in columns if column.name not in frame.columns]
    if not missing:
        return
    problems = "; ".join(
        f"no column {column.name!r} for the {column.role} (fix: {column.fix})"
        for column in missing
    )
    raise ConnectorError(f"{path}: {problems}. The columns found are {list(map(str, frame.columns))}.")


def without_zero_decimals(values: pd.Series) -> pd.Series:
    """'17850.0' -> '17850' (a spreadsheet or pandas wrote an integer column as floats);
    every other value as it is, trimmed."""
    return values.str.strip().str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConnectorError(
            f"--timezone {name!r} is not an IANA time zone name. Fix: pass the zone the export's clock "
            "times are in, e.g. --timezone Europe/London (or UTC)."
        ) from None


@dataclass(frozen=True)
class ReadTimestamps:
    """An export's timestamp column as the contract writes it."""

    # ISO-8601 with the UTC offset in force, e.g. '2011-03-27T03:30:00+01:00'; '' where blank.
    text: pd.Series
    # The same instants in UTC (NaT where blank), to order and compare rows.
    instants: pd.Series
    # Clock times that occur twice (the hour the clocks go back); read as the first (summer time).
    ambiguous: int
    # Clock times that never occur (the hour the clocks skip); read with the offset before the change.
    nonexistent: int


def read_timestamps(values: pd.Series, *, path: Path, column: str, zone_name: str, date_format: str | None) -> ReadTimestamps:
    """Read an export's timestamps: ISO-8601 unless `date_format` (a strptime format) is
    given. A value without an offset is a clock time in `zone_name` (DST-aware); one with an
    offset keeps it. Blank values stay blank (the pipeline quarantines them with a reason);
    any other unreadable value stops the conversion, as a guess could shift every date."""
    zone = zone_named(zone_name)
    parsed: dict[str, datetime | None] = {}
    ambiguous_values: set[str] = set()
    nonexistent_values: set[str] = set()
    for value in values.unique():
        text = value.strip()
        if not text:
            continue
        try:
            clock = datetime.strptime(text, date_format) if date_format else datetime.fromisoformat(text)
        except ValueError:
            parsed[value] = None
            continue
        if clock.tzinfo is not None:
            parsed[value] = clock
            continue
        local = clock.replace(tzinfo=zone)  # fold=0: the first of two equal clock times
        back_on_the_clock = local.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
        if back_on_the_clock != clock:
            nonexistent_values.add(value)
            local = local.astimezone(timezone.utc).astimezone(zone)
        elif clock.replace(tzinfo=zone, fold=1).utcoffset() != local.utcoffset():
            ambiguous_values.add(value)
        parsed[value] = local
    unreadable = [value for value, moment in parsed.items() if moment is None]
    if unreadable:
        rows = int(values.isin(unreadable).sum())
        shape = f"in --date-format {date_format!r}" if date_format else "in ISO-8601 (YYYY-MM-DD HH:MM:SS)"
        raise ConnectorError(
            f"{path}: {rows} of {len(values)} rows have a {column} that is not a timestamp {shape}, "
            f"e.g. {unreadable[:3]}. Nothing is guessed (12/1/2010 could be 1 December or 12 January). "
            "Fix: pass the export's format with --date-format, e.g. --date-format '%m/%d/%Y %H:%M' for "
            "'12/1/2010 8:26', or correct those rows."
        )
    text = values.map(lambda value: parsed[value].isoformat() if value in parsed else "")
    instants = pd.to_datetime(
        values.map(lambda value: parsed[value].astimezone(timezone.utc).replace(tzinfo=None) if value in parsed else None),
    ).dt.tz_localize("UTC") if len(values) else pd.Series([], dtype="datetime64[ns, UTC]")
    return ReadTimestamps(
        text=text.astype(object),
        instants=instants,
        ambiguous=int(values.isin(ambiguous_values).sum()),
        nonexistent=int(values.isin(nonexistent_values).sum()),
    )


def normalised_type(value: str) -> str:
    """A type or status as the pipeline compares it: lower case, runs of spaces, hyphens and
    underscores as one '_' (docs/data_contract.md)."""
    return re.sub(r"[\s_-]+", "_", value.strip().lower()).strip("_")

