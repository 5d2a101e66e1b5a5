"""Content hashes of a state folder's tables, to prove a re-run changes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb


def table_hashes(state: Path) -> dict[str, str]:
    """A content hash of every table of the warehouse and the vault (row order ignored)."""
    connection = duckdb.connect(str(state / "warehouse.duckdb"), read_only=True)
    try:
        connection.execute(f"attach '{state / 'pii_vault.duckdb'}' as pii (read_only)")
        tables = connection.execute(
            "select database_name, schema_name, table_name from duckdb_tables() where database_name in ('warehouse', 'pii')"
        ).fetchall()
        return {
            f"{database}.{schema}.{table}": connection.execute(
                f"select md5(coalesce(string_agg(cast(t as varchar), '|' order by cast(t as varchar)), '')) "
                f'from "{database}"."{schema}"."{table}" t'
            ).fetchone()[0]
            for database, schema, table in tables
        }
    finally:
        connection.close()
