"""Runs that survive kills and overlaps: one run at a time per state folder, and runs whose
process died are marked failed.

- `WarehouseRunLock` is an exclusive `flock` on `<state>/run.lock`, held for the whole run.
  A second run on the same state waits for it instead of colliding on DuckDB's file lock.
  The kernel drops the lock when the holding process dies, even on `kill -9`.
- `fail_runs_whose_process_died` marks STARTED runs whose process is gone as FAILURE. It
  runs when a run takes the lock and from the `dead_run_sensor` in the daemon, because
  Dagster's own run monitoring cannot check the health of the default run launcher's
  workers.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import dagster as dg


class WarehouseRunLock:
    def __init__(self, state_dir: Path):
        self.path = state_dir / "run.lock"
        self._handle = None

    def acquire(self, log=None, poll_seconds: float = 1.0) -> float:
        """Block until this process holds the lock; return the seconds waited."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        started = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if log is not None and not announced:
                    log.info(f"Another run holds {self.path}; waiting for it to finish.")
                    announced = True
                time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return time.monotonic() - started

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_runs_whose_process_died(instance: dg.DagsterInstance, current_run_id: str | None = None) -> list[str]:
    """Mark every STARTED run whose executing process no longer exists as failed."""
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        if run.run_id == current_run_id:
            continue
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pids = [entry.dagster_event.pid for entry in starts if entry.dagster_event and entry.dagster_event.pid]
        if not pids or _process_is_alive(pids[-1]):
            continue
        instance.report_run_failed(
            run, f"The process that executed this run (pid {pids[-1]}) is gone: it was killed or crashed."
        )
        failed.append(run.run_id)
    return failed
