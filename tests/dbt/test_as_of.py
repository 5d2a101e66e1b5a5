"""The dbt macro as_of(): the var when given, else the row the orchestration wrote to
ml.warehouse_as_of before the build (so the daily vars stay the same and dbt parses only what
changed)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

from orchestration.resources import Warehouse
from tests.dbt.conftest import TEST_SECRET, dbt_vars, run_dbt


def shown_as_of(work_dir: Path, variables: dict[str, str]) -> str:
    run = run_dbt(work_dir, variables, TEST_SECRET, "show", "--inline", "select cast({{ as_of() }} as varchar) as as_of", "--output", "json")
    assert run.success, run.output
    (block,) = re.findall(r'\{\s*"show".*?\]\s*\}', run.output, flags=re.S)
    return json.loads(block)["show"][0]["as_of"]


def test_as_of_is_the_var_when_given_else_the_day_the_orchestration_wrote(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    paths_only = {k: v for k, v in dbt_vars(tmp_path / "landing", state, "").items() if k != "as_of"}
    Warehouse(state / "warehouse.duckdb").write_as_of(datetime(2026, 7, 2, 23, 59, 59), date(2026, 7, 2))

    assert shown_as_of(tmp_path, paths_only) == "2026-07-02 23:59:59"
    assert shown_as_of(tmp_path, {**paths_only, "as_of": "2026-01-05 10:00:00+02:00"}) == "2026-01-05 08:00:00"
