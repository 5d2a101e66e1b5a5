"""Your own landing folder is only read: a run leaves every file in it byte for byte as it was,
and everything the pipeline writes goes under the state folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from tests.fixtures.tiny_landing import write_tiny_landing

pytestmark = pytest.mark.e2e


def folder_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below `folder`, hidden ones included, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_first_day_on_your_own_folder_leaves_it_unchanged_and_writes_only_to_the_state(tmp_path, monkeypatch):
    from orchestration.definitions import defs as build_defs
    from orchestration.resources import PipelineSettings

    landing, state = tmp_path / "landing", tmp_path / "state"
    write_tiny_landing(landing)
    (landing / "hillstrom.csv").unlink()  # a user's export has no Hillstrom file
    before = folder_hashes(landing)
    monkeypatch.setenv("SUBSCRIBER_KEY_SECRET", "tests-user-landing-secret")
    settings = {"state_dir": str(state), "landing_dir": str(landing)}
    day = PipelineSettings(**settings).initial_export_day().isoformat()
    (state / "dagster_home").mkdir(parents=True)
    instance = dg.DagsterInstance.local_temp(tempdir=str(state / "dagster_home"))
    defs = build_defs()
    # The landing group is what writes files (the simulator's exports, the Hillstrom copy);
    # dbt and the Python assets write only to the warehouse, the vault and the state folder.
    selection = dg.AssetSelection.groups("landing")
    result = defs.resolve_job_def("run_daily_loop_job").execute_in_process(
        run_config={"resources": {"settings": {"config": settings}}},
        instance=instance,
        partition_key=day,
        asset_selection=list(selection.resolve(defs.resolve_asset_graph())),
        raise_on_error=False,
    )
    succeeded = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert {"landing_exports", "landing__hillstrom"} <= succeeded, succeeded
    assert folder_hashes(landing) == before
    assert (state / "reference" / "hillstrom.csv").is_file()
