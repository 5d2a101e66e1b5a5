"""DuckDB's memory limit, threads and spill folder reach every connection (ml/duckdb_settings.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import sqlalchemy as sa

from ml.duckdb_settings import DuckDBSettings, connect
from ml.gx_duckdb import connection_string
from ml.quality import WarehouseTable, validate_table

SETTINGS = ("memory_limit", "threads", "temp_directory")


def in_use(connection) -> tuple:
    return connection.execute(
        "select " + ", ".join(f"current_setting('{name}')" for name in SETTINGS)
    ).fetchone()


def expected(settings: DuckDBSettings) -> tuple:
    """What DuckDB reports for these settings (it prints the limit in its own units)."""
    with duckdb.connect(config=settings.config()) as connection:
        return in_use(connection)


def test_a_connection_carries_the_memory_limit_threads_and_spill_folder(tmp_path: Path) -> None:
    settings = DuckDBSettings(memory_limit="123MB", threads=1, temp_directory=str(tmp_path / "spill"))
    with connect(tmp_path / "w.duckdb", settings, read_only=False) as connection:
        limit, threads, spill = in_use(connection)
    assert (limit, threads, spill) == expected(settings)
    assert limit != expected(DuckDBSettings())[0] and threads == 1 and spill == str(tmp_path / "spill")


def test_threads_default_to_one_per_core_and_are_always_written_out() -> None:
    import os

    assert DuckDBSettings().config()["threads"] == str(os.cpu_count())
    assert DuckDBSettings(threads=3).config()["threads"] == "3"


def test_the_gx_engine_connects_with_the_same_settings(tmp_path: Path) -> None:
    settings = DuckDBSettings(memory_limit="321MB", threads=1, temp_directory=str(tmp_path / "spill"))
    database = tmp_path / "w.duckdb"
    duckdb.connect(str(database)).close()
    engine = sa.create_engine(connection_string(database, settings))
    with engine.connect() as connection:
        found = connection.execute(
            sa.text("select " + ", ".join(f"current_setting('{name}')" for name in SETTINGS))
        ).fetchone()
    engine.dispose()
    assert tuple(found) == expected(settings)


def test_a_validation_joins_an_open_connection_with_the_same_settings(tmp_path: Path) -> None:
    # DuckDB refuses a second connection to an open file with another configuration: the
    # warehouse's own connection and GX's must carry the same settings.
    settings = DuckDBSettings(memory_limit="222MB", threads=1, temp_directory=str(tmp_path / "spill"))
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema marts")
        connection.execute("create table marts.people as select range as n from range(4)")
    suite = tmp_path / "people.json"
    suite.write_text('{"name": "people", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "n"}}]}')
    with connect(database, settings, read_only=True) as held:
        outcome = validate_table(
            WarehouseTable(database, '"w"."marts"."people"', settings), suite, table_name="people"
        )
        assert in_use(held) == expected(settings)
    assert outcome.success and outcome.row_count == 4
