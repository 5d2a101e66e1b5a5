"""dbt-duckdb plugin: the dbt process dies with the Dagster process that started it.

dagster-dbt starts dbt as a child process. When the Dagster run worker is killed outright
(`kill -9`, OOM killer), nothing is left to stop dbt, and an orphaned dbt would go on
writing the warehouse while the next run starts. Linux's PR_SET_PDEATHSIG asks the kernel
to send dbt SIGKILL the moment its parent dies. The orchestration passes its pid as the
dbt var `parent_pid` (profiles.yml hands it to this plugin's config); without it (dbt
started by hand or in-process by tests) this plugin does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent_pid: int) -> bool:
    """Ask for SIGKILL when the parent dies; exit now if it already has. True when armed."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    # The parent may have died before the signal was armed: then we were re-parented.
    if os.getppid() != expected_parent_pid:
        os._exit(1)
    return True


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        expected = str((plugin_config or {}).get("parent_pid") or "")
        if expected and int(expected) != os.getpid():
            die_with_parent(int(expected))
