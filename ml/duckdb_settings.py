"""DuckDB's resource settings, the same for every connection the pipeline opens.

Left to itself DuckDB may use 80% of the machine's memory per database instance, and each
process (the Dagster process, every dbt subprocess) has its own instance: at 300,000 people
dbt alone peaked at 9.6 GB, bare DuckDB at 12.4 GB (issue 15). A limit makes DuckDB spill
its large joins, sorts and aggregates to `temp_directory` instead.

The settings are passed as the connection's configuration, never set afterwards: DuckDB
refuses a second connection to an open database file with a different configuration, so
every connection in a process must carry the same one (`connect` here, ml/gx_duckdb.py's
dialect, dbt_project/profiles.yml through dbt vars).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DuckDBSettings:
    # Per process (the Dagster process, each dbt subprocess): DuckDB's own buffers. Data
    # fetched into pandas frames is outside it.
    memory_limit: str = "4GB"
    # 0: one thread per core (DuckDB's own default), written out so that dbt and every
    # connection get the same number.
    threads: int = 0
    # Where DuckDB spills what does not fit in memory_limit; "" keeps DuckDB's default
    # (`<database file>.tmp`, beside the database).
    temp_directory: str = ""

    def config(self) -> dict[str, str]:
        """The connection configuration (duckdb.connect(config=...)), as strings."""
        config = {"memory_limit": self.memory_limit, "threads": str(self.threads or os.cpu_count() or 1)}
        if self.temp_directory:
            config["temp_directory"] = self.temp_directory
        return config


def connect(database: Path | str, settings: DuckDBSettings, *, read_only: bool) -> Any:
    """A DuckDB connection to a database file with the pipeline's settings."""
    import duckdb

    return duckdb.connect(str(database), read_only=read_only, config=settings.config())
