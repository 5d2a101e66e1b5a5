"""The landing check that runs first: every problem of a landing folder in one message.

`preflight` reads only what it must (file headers, schemas, a sample of each timestamp
column, and the timestamp columns of the initial export when there is no manifest) and
returns every problem at once, each naming the file, the problem and the fix, plus notes
the run should print (such as where "as of" came from). The orchestration runs it before
any build, so a wrong export fails in seconds instead of at the marts' checks.

Nothing here prints a landing value: timestamps are described by their shape
(`NN/NN/NNNN NN:NN`), never shown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.landing.categories import category_mapping_problems
from ml.landing.contract import (
    MANIFEST_FILE,
    TIMESTAMP_COLUMNS,
    TIMESTAMP_PATTERNS,
    landing_files,
    landing_folder_problems,
)

# Rows read from each timestamp column to judge its format.
TIMESTAMP_SAMPLE_ROWS = 1_000
# A sampled column with more unreadable values than this share is a format problem, not a
# few bad rows (which staging quarantines one by one as `unparseable_timestamp`).
MAX_UNREADABLE_TIMESTAMP_SHARE = 0.5
# Without a manifest, "as of" is the latest event. A timestamp this far after every other
# one is taken as garbage (staging quarantines it as future_timestamp), not as the cut: a
# live shop does not go this long without an order, a send or a signup.
LATEST_EVENT_MAX_GAP = timedelta(days=30)

_ACCEPTED = [re.compile(pattern) for pattern in TIMESTAMP_PATTERNS.values()]


@dataclass(frozen=True)
class Preflight:
    """What the landing check found: `problems` stop the run; `notes` are said and go on."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The moment the initial export was cut: its manifest's `extracted_at`, else the latest
    # event in the data (never the machine's clock); None when neither can be read.
    extracted_at: datetime | None = None
    extracted_at_source: str = ""
    # Rows per table over the initial export and every drop.
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self, landing_dir: Path) -> str:
        lines = [f"The landing folder {landing_dir} cannot be used yet ({len(self.problems)} problem(s)):"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append("The contract is docs/data_contract.md; fix every item above and run again.")
        return "\n".join(lines)


def timestamp_shape(value: str) -> str:
    """The shape of a timestamp without its value: digits as N, letters as a."""
    return re.sub(r"\d", "N", re.sub(r"[A-Za-z]", "a", value.strip()))[:40]


def is_accepted_timestamp(value: str) -> bool:
    text = value.strip()
    return any(pattern.fullmatch(text) for pattern in _ACCEPTED)


def _timestamp_fix(shape: str) -> str:
    if re.fullmatch(r"N{9,10}", shape):
        return (
            "the values look like epoch seconds; write them as text 'YYYY-MM-DD HH:MM:SS' in UTC "
            "(pandas: pd.to_datetime(x, unit='s').dt.strftime('%Y-%m-%d %H:%M:%S'))"
        )
    if re.fullmatch(r"N{12,13}", shape):
        return "the values look like epoch milliseconds; write them as text 'YYYY-MM-DD HH:MM:SS' in UTC"
    return (
        "write them as ISO-8601 text, 'YYYY-MM-DD HH:MM:SS' in UTC, or with their offset "
        "('2011-01-02T10:00:00+01:00', or a trailing Z); seconds are required"
    )


def _timestamp_problems(name: str, table: str, parquet: pq.ParquetFile) -> list[str]:
    problems = []
    for column in TIMESTAMP_COLUMNS.get(table, ()):
        if column not in parquet.schema_arrow.names:
            continue  # reported as a missing column
        field_type = parquet.schema_arrow.field(column).type
        if not (pa.types.is_string(field_type) or pa.types.is_large_string(field_type)):
            continue  # reported as a type problem
        values = []
        for batch in parquet.iter_batches(columns=[column], batch_size=TIMESTAMP_SAMPLE_ROWS):
            values = [v for v in batch.column(0).to_pylist() if v is not None and v.strip()]
            break
        if not values:
            continue
        unreadable = [v for v in values if not is_accepted_timestamp(v)]
        if len(unreadable) > MAX_UNREADABLE_TIMESTAMP_SHARE * len(values):
            shape = timestamp_shape(unreadable[0])
            problems.append(
                f"{name}: column {column}: {len(unreadable):,} of the first {len(values):,} values are not "
                f"timestamps the contract reads (they look like '{shape}'), so every such row would be "
                f"quarantined. Fix: {_timestamp_fix(shape)}."
            )
    return problems


def _manifest_extracted_at(landing_dir: Path) -> tuple[datetime | None, str | None]:
    """(extracted_at, problem) from the initial export's manifest; (None, None) without one."""
    path = landing_dir / MANIFEST_FILE
    if not path.exists():
        return None, None
    try:
        value = json.loads(path.read_text())["extracted_at"]
        text = str(value).strip()
        if not is_accepted_timestamp(text):
            raise ValueError(text)
        parsed = pd.Timestamp(text.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, OSError):
        return None, (
            f'{MANIFEST_FILE}: not a manifest the pipeline can read. Fix: write {{"extracted_at": '
            '"YYYY-MM-DD HH:MM:SS"}} (UTC, the moment the export was cut), or delete the file: '
            "without it, as of is the latest event in the data."
        )
    if parsed.tzinfo is not None:
        parsed = parsed.tz_convert("UTC").tz_localize(None)
    return parsed.to_pydatetime(), None


def _readable_timestamps(path: Path, column: str) -> pd.Series:
    """The column's values that are timestamps the contract reads, in UTC (naive)."""
    try:
        values = pq.read_table(path, columns=[column]).column(0).to_pandas()
    except (pa.ArrowException, OSError, KeyError):
        return pd.Series(dtype="datetime64[ns]")
    values = values.dropna().astype(str).str.strip()
    readable = values[values.map(is_accepted_timestamp)]
    parsed = pd.to_datetime(readable.str.replace("Z", "+00:00", regex=False), utc=True, errors="coerce", format="ISO8601")
    return parsed.dropna().dt.tz_localize(None)


def first_behaviour_at(landing_dir: Path) -> datetime | None:
    """The earliest readable send or order of the initial export: where the history the
    models learn from starts (marts.training_examples counts from the first send or order)."""
    firsts = [
        stamps.min()
        for file in landing_files(landing_dir) if file.batch == "initial" and file.table in ("sends", "orders")
        for stamps in [_readable_timestamps(file.path, TIMESTAMP_COLUMNS[file.table][0])] if not stamps.empty
    ]
    return min(firsts).to_pydatetime() if firsts else None


def history_problems(first_at: datetime | None, cut: datetime, needs: dict[str, int], required: str) -> tuple[list[str], list[str]]:
    """(problems, notes) of the history's length for the models: `needs` is the days each
    model needs (ml.propensity.training.history_days_needed), `required` the one the loop
    cannot run without (a problem when short); the others only get a note."""
    last_day = (cut - timedelta(seconds=1)).date()  # the loop's first day, as the pipeline counts it
    span = None if first_at is None else (last_day - first_at.date()).days
    has = "no readable send or order" if span is None else f"{span:,} days (from {first_at:%Y-%m-%d} to {last_day})"
    problems, notes = [], []
    for model, needed in needs.items():
        if span is not None and span >= needed:
            continue
        if model == required:
            more = needed if span is None else needed - span
            problems.append(
                f"orders.parquet, sends.parquet: the history is too short to train the {model} model: it needs "
                f"{needed} days from the first send or order to the export's cut, and the data has {has}. Fix: "
                f"export at least {more:,} more days of history."
            )
        else:
            notes.append(f"The {model} model needs {needed} days of history and the data has {has}: it will not be trained.")
    return problems, notes


def latest_event_at(landing_dir: Path) -> datetime | None:
    """The latest readable timestamp of the initial export (UTC), robust to far-future garbage:
    from the top, a timestamp more than LATEST_EVENT_MAX_GAP after the next earlier one is
    dropped, until the latest one is not."""
    stamps = [
        readable.to_numpy()
        for file in landing_files(landing_dir) if file.batch == "initial"
        for column in TIMESTAMP_COLUMNS.get(file.table, ())
        for readable in [_readable_timestamps(file.path, column)] if not readable.empty
    ]
    if not stamps:
        return None
    every = np.sort(np.concatenate(stamps))
    top = len(every) - 1
    while top > 0 and every[top] - every[top - 1] > np.timedelta64(LATEST_EVENT_MAX_GAP):
        top -= 1
    return pd.Timestamp(every[top]).to_pydatetime()


def preflight(landing_dir: Path, history_needs: dict[str, int] | None = None, required_model: str = "") -> Preflight:
    """Every problem of `landing_dir` (docs/data_contract.md) at once, and where as of comes
    from. With `history_needs` ({model: days}), the history is also measured against what
    each model needs: too short for `required_model` is a problem, for the others a note."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return Preflight(problems=[
            f"{landing_dir}: no such folder. Fix: point PIPELINE_LANDING_DIR at the folder that holds your "
            "export files (crm_subscribers.parquet, orders.parquet, ...)."
        ])
    problems, row_counts = landing_folder_problems(landing_dir)
    for file in landing_files(landing_dir):
        try:
            parquet = pq.ParquetFile(file.path)
        except (pa.ArrowException, OSError):
            continue  # reported by landing_folder_problems, with what the file looks like
        problems.extend(_timestamp_problems(file.name, file.table, parquet))
    problems.extend(category_mapping_problems(landing_dir))
    notes = []
    extracted_at, manifest_problem = _manifest_extracted_at(landing_dir)
    source = f"{MANIFEST_FILE} extracted_at"
    if manifest_problem:
        problems.append(manifest_problem)
    elif extracted_at is None:
        extracted_at = latest_event_at(landing_dir)
        source = f"the latest event in the initial export (no {MANIFEST_FILE})"
        if extracted_at is None:
            problems.append(
                f"{MANIFEST_FILE} is missing and no file of the initial export has a readable timestamp, so "
                f'the pipeline cannot tell when the export was cut. Fix: write {{"extracted_at": '
                '"YYYY-MM-DD HH:MM:SS"} (UTC) to ' + MANIFEST_FILE + ", or fix the timestamps above."
            )
        else:
            notes.append(
                f"No {MANIFEST_FILE}: as of is the latest event in the data, {extracted_at:%Y-%m-%d %H:%M:%S} UTC "
                "(never the machine's clock). Write the manifest to set it yourself."
            )
    if history_needs and extracted_at is not None and not problems:
        short, said = history_problems(first_behaviour_at(landing_dir), extracted_at, history_needs, required_model)
        problems += short
        notes += said
    return Preflight(
        problems=problems, notes=notes, extracted_at=extracted_at, extracted_at_source=source, row_counts=row_counts
    )
