"""The SQLAlchemy dialect Great Expectations uses to validate DuckDB tables in place.

Reading a mart into pandas to validate it cost 16 to 28 times what the same expectations cost
in DuckDB (issue 15), so the mart suites run through GX's SQL engine against the warehouse file.
duckdb-engine is the DuckDB dialect for SQLAlchemy, and this subclass of it, registered as
`duckdb+gx://` through the `sqlalchemy.dialects` entry point in pyproject.toml, changes three
things, each because of a measured failure:

- **No transactions.** GX fetches a result after the connection that ran it has been returned
  (`with engine.connect(): execute` ... `fetchall()`). DuckDB keeps the rows on the connection,
  and returning a connection rolls its transaction back, which drops them: every metric came
  back empty ("list index out of range"; great_expectations issue 11579). The connections only
  read, so there is nothing to begin, commit or roll back, and DuckDB runs each statement in its
  own transaction anyway. (Buffering every result instead made GX's column reflection, which
  runs `select *` over the whole table, fetch every row: 5.8 s instead of 1.2 s for the
  500,000-row fct_send_outcomes.)
- **Reported as PostgreSQL.** GX picks its SQL for regular expressions by dialect and has none
  for "duckdb". duckdb-engine is built on SQLAlchemy's PostgreSQL dialect and DuckDB's `~` and
  `!~` are PostgreSQL's partial-match operators, so GX's PostgreSQL SQL is right here
  (tests/ml/test_gx_duckdb.py pins that a value merely *containing* an address is found).
- **One read-only connection, the pipeline's settings.** It opens with
  `duckdb.connect(path, read_only=True)` and nothing else (an in-memory database, which reads
  landing files through `read_parquet`, cannot be opened read-only and has nothing to protect): DuckDB refuses a second connection to
  a file with different settings in one process, and the pipeline's own read-only connections
  use exactly these. One connection per engine (a static pool), so a result is never lost to
  another checkout; the caller disposes of the engine after its validation
  (`ml.quality.validate_table`), so it cannot outlive it and block a later write.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import duckdb
import duckdb_engine
from sqlalchemy.pool import StaticPool

from ml.duckdb_settings import DuckDBSettings

# The URL scheme of the entry point in pyproject.toml ([project.entry-points."sqlalchemy.dialects"]).
URL_SCHEME = "duckdb+gx"


class GxDuckDBDialect(duckdb_engine.Dialect):
    name = "postgresql"
    driver = "gx"
    # SQLAlchemy asks every dialect subclass to say this itself; duckdb-engine does not cache.
    supports_statement_cache = False

    @classmethod
    def get_pool_class(cls, url: Any) -> type[StaticPool]:
        return StaticPool

    def do_begin(self, connection: Any) -> None:
        pass

    def do_commit(self, connection: Any) -> None:
        pass

    def do_rollback(self, connection: Any) -> None:
        pass

    def connect(self, *cargs: Any, **cparams: Any) -> duckdb_engine.ConnectionWrapper:
        # The URL's query is the connection's configuration (`connection_string`).
        config = dict(cparams.get("url_config", {}))
        # DuckDB opens no in-memory database read-only; one only reads the files its query names.
        read_only = cparams["database"] != ":memory:"
        return duckdb_engine.ConnectionWrapper(duckdb.connect(cparams["database"], read_only=read_only, config=config))


def connection_string(database: Any, settings: DuckDBSettings) -> str:
    """The GX SQL data source's connection string for a DuckDB file, read-only, with the
    pipeline's DuckDB settings (the same as every other connection in the process)."""
    return f"{URL_SCHEME}:///{database}?{urlencode(settings.config())}"
