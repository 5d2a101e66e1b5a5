"""`make simulate` continues from the first day not yet run; without a loop it says what to do."""

from datetime import date

import pandas as pd
import pytest

from orchestration.loop import DayFailed, main, next_live_day
from orchestration.resources import PipelineSettings


def test_simulate_continues_with_the_latest_day_sends_were_planned_for(tmp_path):
    settings = PipelineSettings(state_dir=str(tmp_path))
    with pytest.raises(DayFailed, match="make demo"):
        next_live_day(settings)
    warehouse = settings.warehouse()
    for day in (date(2026, 6, 30), date(2026, 7, 1)):
        warehouse.replace_day(pd.DataFrame({"planned_for": [pd.Timestamp(day)], "n": [1]}), "ml.planned_sends", "planned_for", day)
    assert next_live_day(settings) == date(2026, 7, 1)


def test_simulate_without_a_loop_exits_with_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["simulate", "--days", "2"]) == 2
    assert "No loop has started on this state folder: run `make demo` first." in capsys.readouterr().out


def test_your_own_broken_folder_stops_before_any_run_with_every_problem(tmp_path, monkeypatch, capsys):
    from tests.dbt.landing_builder import base_landing, write_landing

    landing, state = tmp_path / "landing", tmp_path / "state"
    write_landing(landing, base_landing())
    (landing / "orders.parquet").write_text("order_id,crm_id\nO1,C1\n")
    (landing / "campaigns.parquet").unlink()
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(state))
    monkeypatch.setenv("DAGSTER_HOME", str(state))
    monkeypatch.setenv("PIPELINE_LANDING_DIR", str(landing))
    assert main(["demo"]) == 2
    out = capsys.readouterr().out
    assert f"The landing folder {landing} cannot be used yet (2 problem(s)):" in out
    assert "orders.parquet: not a Parquet file: it is delimited text" in out
    assert "campaigns.parquet: file is missing from the initial export" in out
    assert not (state / "warehouse.duckdb").exists()  # nothing was built
