"""A hostile landing folder: a first name that is not UTF-8 must stop the run with an error
naming file, column and row, and leave no raw value anywhere in the state folder."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.fixtures.tiny_landing import write_tiny_landing


def first_export_day(landing) -> str:
    """The daily partition of a landing folder's initial export (its manifest's last whole day)."""
    from orchestration.resources import PipelineSettings

    return PipelineSettings(landing_dir=str(landing)).initial_export_day().isoformat()

pytestmark = pytest.mark.e2e

RAW_NAME = b"Zebulonia"


def test_a_non_utf8_first_name_stops_the_run_and_leaves_no_raw_value_in_the_state(tmp_path, monkeypatch):
    from orchestration.definitions import defs as build_defs

    landing, state = tmp_path / "landing", tmp_path / "state"
    write_tiny_landing(landing)
    table = pq.read_table(landing / "crm_subscribers.parquet")
    names = table["first_name"].to_pylist()
    raw = [n.encode() if n is not None else None for n in names]
    raw[2] = b"\xff" + RAW_NAME + b"\xfe"
    column = pa.array(raw, type=pa.binary()).view(pa.string())
    table = table.set_column(table.schema.get_field_index("first_name"), "first_name", column)
    pq.write_table(table, landing / "crm_subscribers.parquet")
    monkeypatch.setenv("SUBSCRIBER_KEY_SECRET", "tests-hostile-landing-secret")

    (state / "dagster_home").mkdir(parents=True)
    instance = dg.DagsterInstance.local_temp(tempdir=str(state / "dagster_home"))
    result = build_defs().resolve_job_def("run_daily_loop_job").execute_in_process(
        run_config={"resources": {"settings": {"config": {"state_dir": str(state), "landing_dir": str(landing)}}}},
        instance=instance,
        partition_key=first_export_day(landing),
        raise_on_error=False,
    )
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["landing_exports"]
    error, messages = failures[0].event_specific_data.error, []
    while error is not None:  # the step error wraps the contract error
        messages.append(error.message)
        error = error.cause
    message = "\n".join(messages)
    assert "crm_subscribers.parquet: column first_name, row 2 (0-based) is not valid UTF-8" in message

    scanned = [path for path in state.rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in scanned)  # the run database is among them
    assert [str(path) for path in scanned if RAW_NAME in path.read_bytes()] == []
    # Control: the scan sees the name where it is.
    assert RAW_NAME in (landing / "crm_subscribers.parquet").read_bytes()
