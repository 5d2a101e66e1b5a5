"""The DuckDB dialect GX validates warehouse tables through (ml/gx_duckdb.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import sqlalchemy as sa

from ml.gx_duckdb import GxDuckDBDialect, connection_string
from ml.quality import WarehouseTable, validate_table


def warehouse(tmp_path: Path, frame: pd.DataFrame) -> WarehouseTable:
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema marts")
        connection.register("frame", frame)
        connection.execute("create table marts.people as select * from frame")
    return WarehouseTable(database, '"warehouse"."marts"."people"')


def test_the_entry_point_names_the_dialect_and_a_result_outlives_its_connection(tmp_path):
    table = warehouse(tmp_path, pd.DataFrame({"n": range(5)}))
    engine = sa.create_engine(connection_string(table.database, table.duckdb_settings))
    assert isinstance(engine.dialect, GxDuckDBDialect)
    # GX's pattern: the connection goes back before the rows are fetched.
    with engine.connect() as connection:
        result = connection.execute(sa.text(f"select count(*), sum(n) from {table.relation}"))
    assert result.fetchall() == [(5, 10)]
    engine.dispose()


def test_regex_expectations_find_a_value_that_merely_contains_the_pattern(tmp_path):
    # GX sends PostgreSQL's `~`/`!~` for this dialect; in DuckDB they must search, not fully match.
    suite = tmp_path / "people.json"
    suite.write_text(
        '{"name": "people", "expectations": [{"type": "expect_column_values_to_not_match_regex",'
        ' "kwargs": {"column": "note", "regex": "[a-z]+@[a-z]+\\\\.com"}, "severity": "critical"},'
        ' {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "^[0-9a-f]{4}$"},'
        ' "severity": "critical"}]}'
    )
    frame = pd.DataFrame({"note": ["fine", "write to ann@example.com today", None], "code": ["00ff", "abcd", "12345"]})
    outcome = validate_table(warehouse(tmp_path, frame), suite, table_name="people")
    counts = {f["expectation_type"]: f["unexpected_count"] for f in outcome.error_failures}
    assert counts == {"expect_column_values_to_not_match_regex": 1, "expect_column_values_to_match_regex": 1}
    assert outcome.row_count == 3


def test_no_connection_outlives_a_validation(tmp_path):
    # DuckDB refuses a read-write connection beside a read-only one in the same process.
    suite = tmp_path / "people.json"
    suite.write_text('{"name": "people", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "n"}}]}')
    table = warehouse(tmp_path, pd.DataFrame({"n": [1, 2]}))
    assert validate_table(table, suite, table_name="people").success
    with duckdb.connect(str(table.database)) as connection:
        connection.execute("create table marts.later as select 1 as x")
