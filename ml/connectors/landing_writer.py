"""Writing a connector's tables as a landing folder (docs/data_contract.md, contract v2).

Every contract column is text except `products.price` (a double). A new folder is written
under a hidden temporary name and renamed into place whole, so a failed conversion leaves
no half-written landing folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.connectors.exports import ConnectorError
from ml.landing.contract import LANDING_COLUMNS, NUMERIC_COLUMNS

# Contract v2 order lines: an order's lines share order_id; a line's value is
# quantity x unit_price (no `amount`), negative for a cancellation or return.
ORDER_LINE_COLUMNS = ("order_id", "line_number", "crm_id", "product_id", "ordered_at", "quantity", "unit_price", "currency")

# The columns each connector file has: the contract's, with orders as order lines.
CONNECTOR_COLUMNS: dict[str, tuple[str, ...]] = {**LANDING_COLUMNS, "orders": ORDER_LINE_COLUMNS}

REPORT_FILE = "connector_report.json"


def contract_table(frame: pd.DataFrame, table: str) -> pa.Table:
    """`frame`'s contract columns of `table` in contract order, typed: text, or double for price."""
    columns = CONNECTOR_COLUMNS[table]
    arrays = {}
    for column in columns:
        values = frame[column] if column in frame else pd.Series([], dtype=object)
        if column in NUMERIC_COLUMNS:
            arrays[column] = pa.array(pd.to_numeric(values, errors="raise").astype("float64"), type=pa.float64(), from_pandas=True)
        else:
            arrays[column] = pa.array(values.astype(object).tolist(), type=pa.string())
    return pa.table(arrays)


def empty_frame(table: str) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype=object) for column in CONNECTOR_COLUMNS[table]})


def write_new_landing_folder(output_dir: Path, tables: dict[str, pd.DataFrame], report_key: str, report: dict) -> None:
    """Write every table as `<table>.parquet` and the report into `output_dir`, which must
    not exist yet or be empty: converting into a folder that holds data could mix two
    exports."""
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ConnectorError(
            f"{output_dir}: the output folder already exists and is not empty. Nothing was written. "
            "Fix: pass a new folder (it is created), or empty this one"
            + (" (to add ESP files to an order-lines folder, pass --into-existing)." if report_key == "esp-events" else ".")
        )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = output_dir.parent / f".{output_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        for table, frame in tables.items():
            pq.write_table(contract_table(frame, table), partial / f"{table}.parquet")
        _write_json(partial / REPORT_FILE, {report_key: report})
        if output_dir.exists():
            output_dir.rmdir()  # empty, checked above
        partial.rename(output_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def write_into_existing_folder(output_dir: Path, tables: dict[str, pd.DataFrame], report_key: str, report: dict) -> None:
    """Add `tables` to an existing landing folder (the ESP files next to an order-lines
    conversion). A file of these tables may already be there only when it has no rows (the
    empty placeholder a connector writes): rows are never overwritten. The report is added
    under `report_key` to the folder's connector_report.json."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ConnectorError(
            f"{output_dir}: --into-existing needs an existing folder, and there is none. Fix: pass the "
            "folder the order-lines command wrote, or leave out --into-existing to create a new folder."
        )
    holding_rows = [
        f"{table}.parquet"
        for table in tables
        if (output_dir / f"{table}.parquet").exists() and pq.ParquetFile(output_dir / f"{table}.parquet").metadata.num_rows > 0
    ]
    if holding_rows:
        raise ConnectorError(
            f"{output_dir}: {', '.join(holding_rows)} already hold rows, which --into-existing never "
            "replaces. Nothing was written. Fix: convert into a new folder, or remove those files first."
        )
    written: list[Path] = []
    for table, frame in tables.items():
        partial = output_dir / f".{table}.parquet.partial-{os.getpid()}"
        pq.write_table(contract_table(frame, table), partial)
        written.append(partial)
    for partial in written:
        os.replace(partial, output_dir / partial.name[1:].split(".partial-")[0])
    report_path = output_dir / REPORT_FILE
    reports = json.loads(report_path.read_text()) if report_path.exists() else {}
    reports[report_key] = report
    _write_json(report_path, reports)


def _write_json(path: Path, content: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    os.replace(partial, path)
