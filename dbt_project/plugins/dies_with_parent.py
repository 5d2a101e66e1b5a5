"""dbt-duckdb plugin: the dbt process dies with the Dagster process that started it.

dagster-dbt starts dbt as a child process. When the Dagster run worker is killed outright
(`kill -9`, OOM killer), nothing is left to stop dbt, and an orphaned dbt would go on
writing the warehouse while the next run starts. A daemon thread watches the parent: when
dbt is re-parented (its parent died), it ends the process at once.

Linux's PR_SET_PDEATHSIG is not used: the kernel keeps it per thread, and dbt-duckdb
initialises its plugins in a worker thread that ends before the build does, so the signal
was never delivered (tests/test_runs_survive.py, `make test-soak`, caught it).

dagster-dbt marks the processes it starts with DAGSTER_DBT_CLI=true in their environment;
then the parent is the Dagster process. Without that mark (dbt started by hand or in-process
by tests) this plugin does nothing. The parent's pid is not passed in the profile: a profile
that changes from run to run makes dbt re-parse the whole project.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

# Set by dagster-dbt (DbtCliResource) on every dbt process it starts.
STARTED_BY_DAGSTER = "DAGSTER_DBT_CLI"
# How often the watcher looks; the orphan may write for at most this long.
POLL_SECONDS = 0.2

_watcher: threading.Thread | None = None


def die_with_parent(expected_parent_pid: int, poll_seconds: float = POLL_SECONDS) -> threading.Thread:
    """Start (once per process) a daemon thread that ends this process, without cleanup, as
    soon as its parent is no longer ``expected_parent_pid``; returns the thread."""
    global _watcher
    if _watcher is None:
        def watch() -> None:
            while os.getppid() == expected_parent_pid:
                time.sleep(poll_seconds)
            os._exit(1)

        _watcher = threading.Thread(target=watch, name="dies-with-parent", daemon=True)
        _watcher.start()
    return _watcher


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        if os.environ.get(STARTED_BY_DAGSTER) == "true":
            die_with_parent(os.getppid())
