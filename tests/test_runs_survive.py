"""Runs survive kills and overlaps: dbt dies with its run, the dead run is marked failed, the
re-run gives the same marts as a fresh run, and two runs on one state folder take turns."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.run_guard import WarehouseRunLock
from tests.table_hashes import table_hashes

REPO_ROOT = Path(__file__).resolve().parents[1]

# Landing and the whole dbt warehouse of a small audience, as the run worker would run it.
RUN_WAREHOUSE = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from orchestration.definitions import defs as build_defs

    state = sys.argv[1]
    definitions = build_defs()
    graph = definitions.resolve_asset_graph()
    keys = [
        key for key in graph.get_all_asset_keys()
        if (graph.get(key).group_name or "").startswith(("landing", "warehouse_"))
    ]
    job = definitions.resolve_job_def("run_daily_loop_job")
    result = job.execute_in_process(
        run_config={"resources": {"settings": {"config": {
            "state_dir": state, "audience_size": 400, "audience_days": 60, "audience_seed": 3}}}},
        instance=dg.DagsterInstance.get(),
        asset_selection=keys,
        partition_key="2026-06-29",
        raise_on_error=False,
    )
    sys.exit(0 if result.success else 1)
    """
)


def _start_run(state: Path) -> subprocess.Popen:
    home = state / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PIPELINE_LANDING_DIR", None)
    return subprocess.Popen([sys.executable, "-c", RUN_WAREHOUSE, str(state)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        # dbt build/run of the run itself, not the `dbt parse` of loading the definitions.
        if parent == pid and b"dbt" in cmdline and (b"\x00build\x00" in cmdline or b"\x00run\x00" in cmdline):
            found.append(int(entry.name))
    return found


def _holds_open(pid: int, path: Path) -> bool:
    try:
        return any(Path(os.readlink(fd)) == path for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _mart_hashes(state: Path) -> dict[str, str]:
    connection = duckdb.connect(str(state / "warehouse.duckdb"), read_only=True)
    try:
        tables = connection.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in ('marts', 'quality')"
        ).fetchall()
        return {
            f"{schema}.{table}": connection.execute(
                f"select md5(coalesce(string_agg(cast(t as varchar), '|' order by cast(t as varchar)), '')) "
                f"from {schema}.{table} t"
            ).fetchone()[0]
            for schema, table in tables
        }
    finally:
        connection.close()


@pytest.mark.soak
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses PR_SET_PDEATHSIG")
def test_a_run_killed_during_dbt_leaves_no_dbt_is_marked_failed_and_reruns_to_the_same_marts(tmp_path, monkeypatch):
    state = tmp_path / "killed"
    run = _start_run(state)
    deadline = time.monotonic() + 300
    warehouse = (state / "warehouse.duckdb").resolve()
    dbt_pids: list[int] = []
    # Kill once dbt is writing: it has the warehouse file open.
    while not dbt_pids and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
        dbt_pids = [pid for pid in _children(run.pid) if _holds_open(pid, warehouse)]
    assert dbt_pids, "dbt never opened the warehouse"
    run.send_signal(signal.SIGKILL)
    run.wait()
    time.sleep(2)
    assert [pid for pid in dbt_pids if _alive(pid)] == []

    rerun = _start_run(state)
    assert rerun.wait(timeout=600) == 0
    fresh_state = tmp_path / "fresh"
    fresh = _start_run(fresh_state)
    assert fresh.wait(timeout=600) == 0

    monkeypatch.setenv("DAGSTER_HOME", str(state / "dagster_home"))
    instance = dg.DagsterInstance.get()
    statuses = sorted(record.dagster_run.status.value for record in instance.get_run_records())
    assert statuses == ["FAILURE", "SUCCESS"]
    killed = _mart_hashes(state)
    assert len(killed) >= 10
    assert killed == _mart_hashes(fresh_state)


def _hold_lock(state_dir: str, seconds: float, log_path: str) -> None:
    lock = WarehouseRunLock(Path(state_dir))
    lock.acquire()
    with open(log_path, "a") as log:
        log.write(f"start {os.getpid()} {time.monotonic()}\n")
    time.sleep(seconds)
    with open(log_path, "a") as log:
        log.write(f"end {os.getpid()} {time.monotonic()}\n")
    lock.release()


def test_two_runs_on_one_state_take_turns(tmp_path):
    log = tmp_path / "log.txt"
    context = multiprocessing.get_context("spawn")
    runs = [context.Process(target=_hold_lock, args=(str(tmp_path), 1.5, str(log))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=30)
    events = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _, _ in events] == ["start", "end", "start", "end"]
    assert events[0][1] == events[1][1] and events[2][1] == events[3][1]
    assert float(events[2][2]) >= float(events[1][2])


def test_a_killed_holder_releases_the_lock(tmp_path):
    context = multiprocessing.get_context("spawn")
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), 60, str(tmp_path / "log.txt")))
    holder.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "log.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    started = time.monotonic()
    lock = WarehouseRunLock(tmp_path)
    lock.acquire(poll_seconds=0.1)
    lock.release()
    assert time.monotonic() - started < 5



@pytest.mark.soak
def test_rerunning_a_live_day_leaves_every_table_identical(tmp_path):
    """The loop's first day and two live days, then the last live day once more: every table
    of the warehouse and the vault has the same rows (content hash) as before the re-run."""
    from datetime import date

    from orchestration import loop
    from orchestration.definitions import defs as build_defs

    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"resources": {"settings": {"config": {
        "state_dir": str(tmp_path), "audience_size": 1500, "audience_days": 120, "audience_seed": 5}}}}
    first = date(2026, 6, 29)
    loop.first_day(defs, instance, run_config, first)
    days = [date(2026, 6, 30), date(2026, 7, 1)]
    loop.live_days(defs, instance, run_config, days)
    before = table_hashes(tmp_path)
    outbox = (tmp_path / "outbox" / "2026-07-02" / "sends.parquet").read_bytes()
    loop.live_days(defs, instance, run_config, days[-1:])
    after = table_hashes(tmp_path)
    assert len(before) >= 15 and "warehouse.ml.planned_sends" in before
    assert before == after, {t for t in before if before[t] != after.get(t)}
    assert (tmp_path / "outbox" / "2026-07-02" / "sends.parquet").read_bytes() == outbox
