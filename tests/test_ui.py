"""`make ui`: the definitions load without `dbt parse`, automation is off in dev and on through
one switch, and the two servers live and die as one process group."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from orchestration.defs import automation
from orchestration.ui import run_group


def _dbt_commands(started: list) -> list:
    """The recorded commands that ran dbt (whatever the executable's path)."""
    return [
        args for args in started
        if not isinstance(args, str) and args and os.path.basename(str(args[0])) == "dbt"
    ]


@pytest.fixture
def recorded_processes(monkeypatch) -> list:
    """Every command started through subprocess.Popen while the test runs (dagster-dbt runs dbt so)."""
    started: list = []
    real = subprocess.Popen

    class Recording(real):
        def __init__(self, args, *rest, **kwargs):
            started.append(list(args) if not isinstance(args, str) else args)
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return started


def test_loading_the_definitions_with_a_current_manifest_runs_no_dbt_parse(recorded_processes):
    from orchestration import dbt_project
    from orchestration.definitions import defs as build_defs
    from orchestration.resources import DBT_PROJECT_DIR

    project = dbt_project.email_dbt_project()
    # The recorder sees dagster-dbt's parse: a forced prepare is recorded as `dbt parse`.
    project.preparer.prepare(project)
    assert any("parse" in args for args in _dbt_commands(recorded_processes)), recorded_processes
    assert dbt_project.manifest_is_current(DBT_PROJECT_DIR, project.manifest_path)

    recorded_processes.clear()
    dbt_project.email_dbt_project.cache_clear()  # as a fresh code server would load them
    graph = build_defs().resolve_asset_graph()
    assert len(graph.get_all_asset_keys()) > 60  # the dbt assets came from the manifest
    assert _dbt_commands(recorded_processes) == []


def _statuses(defs: dg.Definitions) -> dict[str, str]:
    return {
        **{s.name: s.default_status.value for s in defs.schedules},
        **{s.name: s.default_status.value for s in defs.sensors},
    }


def test_schedules_and_sensors_are_stopped_in_dev_and_running_in_a_deployment(monkeypatch):
    monkeypatch.delenv(automation.AUTOMATION_ENV, raising=False)
    dev = _statuses(automation.defs())
    monkeypatch.setenv(automation.AUTOMATION_ENV, "running")
    deployed = _statuses(automation.defs())
    starts_runs = {"run_daily_loop_job_schedule", "weekly_training_schedule", "retrain_on_failed_model_checks"}
    assert {name: dev[name] for name in starts_runs} == dict.fromkeys(starts_runs, "STOPPED")
    assert {name: deployed[name] for name in starts_runs} == dict.fromkeys(starts_runs, "RUNNING")
    # The dead-run sensor never starts a run; it only marks dead ones failed, in dev too.
    assert dev["dead_run_sensor"] == deployed["dead_run_sensor"] == "RUNNING"
    assert set(dev) == set(deployed) == starts_runs | {"dead_run_sensor"}


def test_the_automation_switch_reads_its_values_and_names_a_bad_one():
    assert automation.automation_running({}) is False
    assert automation.automation_running({"PIPELINE_AUTOMATION": "stopped"}) is False
    assert automation.automation_running({"PIPELINE_AUTOMATION": " Running "}) is True
    with pytest.raises(ValueError, match=r"PIPELINE_AUTOMATION='on'.*'running'.*'stopped'"):
        automation.automation_running({"PIPELINE_AUTOMATION": "on"})


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_failing_server_stops_the_other_and_its_children():
    groups = []

    def remember(group, stop):
        groups.append(group)

    # The first "server" runs a grandchild (like dg dev's webserver); the second fails.
    started = time.monotonic()
    code = run_group(
        [[sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '300'])"],
         [sys.executable, "-c", "import time, sys; time.sleep(1); sys.exit(3)"]],
        on_started=remember,
        grace_seconds=5,
    )
    assert code == 3 and time.monotonic() - started < 20
    assert not _group_alive(groups[0].pgid)
    assert all(process.returncode is not None for process in groups[0].processes)


def test_an_interrupt_stops_both_and_exits_cleanly():
    groups = []

    def interrupt_soon(group, stop):
        groups.append(group)
        time.sleep(0.5)
        stop.set()  # what the SIGINT handler does on Ctrl-C

    started = time.monotonic()
    code = run_group([["sleep", "300"], ["sleep", "300"]], on_started=interrupt_soon, grace_seconds=5)
    assert code == 0 and time.monotonic() - started < 10
    assert not _group_alive(groups[0].pgid)


def test_a_server_that_exits_by_itself_is_a_failure():
    assert run_group([["true"], ["sleep", "300"]], grace_seconds=5) == 1


def test_make_docs_on_a_state_without_a_warehouse_says_to_run_the_demo_first(tmp_path):
    from orchestration.reports import generate_dbt_docs, write_index
    from orchestration.resources import PipelineSettings

    settings = PipelineSettings(state_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no warehouse at .*warehouse\.duckdb.*make demo"):
        generate_dbt_docs(settings)
    index = write_index(settings).read_text()  # the index still says what is missing and how to get it
    assert "run `make docs`" in index and 'href="http://127.0.0.1:5000"' in index
