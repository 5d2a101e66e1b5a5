"""The dbt plugin that ends dbt when the Dagster process that started it dies (kill -9, OOM):
an orphaned dbt would go on writing the warehouse while the next run starts. The whole-run
version of this test is `make test-soak` (tests/test_runs_survive.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "dbt_project" / "plugins"

# A parent that starts a child (standing in for dbt) and waits; the child arms the plugin the
# way dbt-duckdb does, from a worker thread that ends at once, then works on.
PARENT = textwrap.dedent(
    f"""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", '''
    import os, sys, threading, time
    sys.path.insert(0, {str(PLUGINS)!r})
    from dies_with_parent import Plugin
    worker = threading.Thread(target=lambda: Plugin("dies_with_parent", {{}}))
    worker.start(); worker.join()
    print("armed", flush=True)
    time.sleep(60)
    '''], env={{**os.environ, "DAGSTER_DBT_CLI": os.environ["MARK"]}}, stdout=sys.stdout)
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _child_outlives_a_killed_parent(mark: str) -> bool:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], env={**os.environ, "MARK": mark}, stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "armed"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(1.5)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_dbt_started_by_dagster_dies_with_its_parent_and_dbt_started_by_hand_does_not() -> None:
    assert not _child_outlives_a_killed_parent("true")
    assert _child_outlives_a_killed_parent("")
