"""The settings resource resolves paths and hands dbt its settings as arguments."""

import os
from datetime import date, datetime

import dagster as dg
import pandas as pd
import pytest

from orchestration.resources import PipelineSettings


def test_state_paths_follow_the_configured_state_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPELINE_LANDING_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = PipelineSettings(state_dir=str(tmp_path))
    assert settings.user_landing_dir() is None
    assert settings.landing_path() == tmp_path / "landing"
    assert settings.warehouse_path() == tmp_path / "warehouse.duckdb"
    assert settings.pii_vault_path() == tmp_path / "pii_vault.duckdb"
    assert settings.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_a_user_landing_folder_and_remote_mlflow_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_LANDING_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    settings = PipelineSettings(state_dir=str(tmp_path))
    assert settings.user_landing_dir() == tmp_path / "exports"
    assert settings.tracking_uri() == "http://127.0.0.1:5000"


def test_the_first_day_is_the_last_whole_day_of_the_initial_export(tmp_path):
    settings = PipelineSettings(state_dir=str(tmp_path), audience_end="2026-05-01 00:00:00")
    assert settings.initial_export_day() == date(2026, 4, 30)  # no export yet: the simulator's history
    settings.landing_path().mkdir(parents=True)
    (settings.landing_path() / "_manifest.json").write_text('{"extracted_at": "2026-06-30T00:00:00"}')
    assert settings.initial_export_day() == date(2026, 6, 29)
    (settings.landing_path() / "_manifest.json").write_text('{"extracted_at": "2026-06-30T10:15:00"}')
    assert settings.initial_export_day() == date(2026, 6, 30)
    assert settings.as_of(date(2026, 6, 30)).isoformat() == "2026-06-30T23:59:59"


def test_your_own_export_without_a_manifest_is_a_clear_error(tmp_path):
    settings = PipelineSettings(state_dir=str(tmp_path), landing_dir=str(tmp_path / "exports"))
    with pytest.raises(dg.Failure, match=r"_manifest.json is missing.*Fix: write"):
        settings.initial_export_day()


def test_a_day_is_replaced_exactly_and_other_days_are_kept(tmp_path):
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    day1, day2 = date(2026, 7, 1), date(2026, 7, 2)
    frame = lambda day, values: pd.DataFrame({"day": pd.Timestamp(day), "v": values})  # noqa: E731
    assert warehouse.replace_day(frame(day1, [1, 2]), "ml.daily", "day", day1) == 2
    assert warehouse.replace_day(frame(day2, [3]), "ml.daily", "day", day2) == 1
    assert warehouse.replace_day(frame(day1, [7]), "ml.daily", "day", day1) == 1
    assert warehouse.read("select v from ml.daily order by v")["v"].tolist() == [3, 7]
    with pytest.raises(ValueError, match="carry other days"):
        warehouse.replace_day(frame(day2, [1]), "ml.daily", "day", day1)


def test_a_day_table_created_from_declared_types_takes_a_first_day_of_nulls_and_empty_lists(tmp_path):
    """The decision record's first day may have no send at all: inferring types from it
    would type send_plan_id NULL and exclusion_reasons a list of NULL, refusing every later day."""
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    types = {"day": "date", "send_plan_id": "varchar", "reasons": "varchar[]"}
    day1, day2 = date(2026, 7, 1), date(2026, 7, 2)
    first = pd.DataFrame({"day": [day1], "send_plan_id": [None], "reasons": [[]]})
    second = pd.DataFrame({"day": [day2], "send_plan_id": ["ps_1"], "reasons": [["frequency_cap", "minimum_gap"]]})
    assert warehouse.replace_day(first, "ml.decisions", "day", day1, column_types=types) == 1
    assert warehouse.replace_day(second, "ml.decisions", "day", day2, column_types=types) == 1
    assert warehouse.read("select send_plan_id, reasons from ml.decisions where day = ?", [day2]).iloc[0].tolist()[0] == "ps_1"
    assert list(warehouse.read("select reasons from ml.decisions where day = ?", [day2])["reasons"].iloc[0]) == [
        "frequency_cap", "minimum_gap"]
    with pytest.raises(ValueError, match="expected"):
        warehouse.replace_day(second.drop(columns="reasons"), "ml.decisions", "day", day2, column_types=types)
    # A later version declares one more column: the table gains it, the older days hold null.
    third = second.assign(day=date(2026, 7, 3), run_id="r3")
    assert warehouse.replace_day(third, "ml.decisions", "day", date(2026, 7, 3), column_types={**types, "run_id": "varchar"}) == 1
    assert warehouse.read("select run_id from ml.decisions order by day")["run_id"].tolist() == [None, None, "r3"]


def test_a_day_written_with_a_run_id_records_it_on_every_row_and_an_older_table_gains_the_column(tmp_path):
    from orchestration import tables

    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    types = {"day": "date", "v": "bigint"}
    day1, day2 = date(2026, 7, 1), date(2026, 7, 2)
    # A table written before runs were recorded.
    warehouse.replace_day(pd.DataFrame({"day": [day1], "v": [1]}), "ml.scores", "day", day1, column_types=types)
    assert warehouse.replace_day(
        pd.DataFrame({"day": [day2, day2], "v": [2, 3]}), "ml.scores", "day", day2, column_types=types, run_id="run-2"
    ) == 2
    (column,) = tables.RUN_ID_COLUMN_TYPES
    assert warehouse.read(f"select {column} from ml.scores order by v")[column].tolist() == [None, "run-2", "run-2"]
    assert warehouse.read(f"select data_type from information_schema.columns where column_name = '{column}'")[
        "data_type"].tolist() == ["VARCHAR"]
    with pytest.raises(ValueError, match="not both"):
        warehouse.replace_day(pd.DataFrame({"day": [day2], "v": [2], column: ["x"]}), "ml.scores", "day", day2, run_id="r")


def test_dbt_gets_its_paths_as_vars_and_the_environment_is_left_alone(tmp_path, monkeypatch):
    from ml.landing.categories import EMPTY_CATEGORY_MAPPING

    # Exporting PIPELINE_LANDING_DIR would make later assets think the user brought their own data.
    monkeypatch.delenv("PIPELINE_LANDING_DIR", raising=False)
    environment_before = dict(os.environ)
    settings = PipelineSettings(state_dir=str(tmp_path))
    # The same every day: a var that changes makes dbt re-parse the whole project.
    assert settings.dbt_vars() == {
        "landing_dir": str(tmp_path / "landing"),
        "hillstrom_csv": str(tmp_path / "reference" / "hillstrom.csv"),
        "warehouse_path": str(tmp_path / "warehouse.duckdb"),
        "pii_vault_path": str(tmp_path / "pii_vault.duckdb"),
        "default_timezone": "UTC",
        # no category_mapping.csv in the landing folder: the header-only file in the repo
        "category_mapping_csv": str(EMPTY_CATEGORY_MAPPING),
        "max_quarantine_share": 0.05,
        "duckdb_memory_limit": "4GB",
        "duckdb_threads": str(os.cpu_count()),
        "duckdb_temp_directory": str(tmp_path / "duckdb_spill"),
    }
    assert dict(os.environ) == environment_before
    assert settings.user_landing_dir() is None


def test_warehouse_replaces_tables_and_counts_rows(tmp_path):
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    assert warehouse.write_table(pd.DataFrame({"a": [1, 2, 3]}), "ml.example") == 3
    assert warehouse.write_table(pd.DataFrame({"a": [9]}), "ml.example") == 1
    assert warehouse.read_table("ml.example")["a"].tolist() == [9]


def test_the_warehouse_says_what_day_it_was_built_as_of(tmp_path):
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    assert warehouse.as_of() is None
    warehouse.write_as_of(datetime(2026, 7, 3, 23, 59, 59), date(2026, 7, 3))
    assert warehouse.as_of() == datetime(2026, 7, 3, 23, 59, 59)


def test_the_mlflow_client_is_bound_to_the_state_store_without_touching_process_uris(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    process_uri = mlflow.get_tracking_uri()
    client = PipelineSettings(state_dir=str(tmp_path)).mlflow_client()
    assert client.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == process_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    # The state's own store lists no "Default" experiment; a configured server keeps its own.
    assert [e.name for e in client.search_experiments()] == []
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'server.db'}")
    assert [e.name for e in PipelineSettings(state_dir=str(tmp_path)).mlflow_client().search_experiments()] == ["Default"]


def test_the_dbt_manifest_is_current_until_a_project_file_changes(tmp_path):
    import time

    from orchestration.dbt_project import manifest_is_current

    project = tmp_path / "dbt_project"
    (project / "models").mkdir(parents=True)
    model = project / "models" / "a.sql"
    model.write_text("select 1")
    manifest = project / "target" / "manifest.json"
    assert not manifest_is_current(project, manifest)  # a fresh clone: parse
    manifest.parent.mkdir()
    time.sleep(0.01)
    manifest.write_text("{}")
    (project / "target" / "run_results.json").write_text("{}")  # dbt's own output does not count
    assert manifest_is_current(project, manifest)  # nothing changed since: no parse on load
    time.sleep(0.01)
    model.write_text("select 2")
    assert not manifest_is_current(project, manifest)  # an edited model: parse again


def test_a_growing_log_takes_later_rows_whose_first_row_had_nulls(tmp_path):
    """The bootstrap decision has no previous champion; the next decision has one."""
    from datetime import datetime

    from ml.propensity.promotion import PromotionRecord

    def record(version: str, previous: str | None) -> pd.DataFrame:
        row = PromotionRecord(
            model_name="m", version=version, action="bootstrap" if previous is None else "promoted",
            previous_champion=previous, champion_after=version, passed=True, reasons="", figures_json="{}",
            criteria_json="{}", decided_at=datetime(2026, 7, 1), decided_by="gate",
        )
        return pd.DataFrame([row.to_row()])

    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    warehouse.append_rows(record("1", None), "ml.model_promotions", PromotionRecord.SQL_TYPES)
    warehouse.append_rows(record("2", "1"), "ml.model_promotions", PromotionRecord.SQL_TYPES)
    rows = warehouse.read("select version, previous_champion, passed from ml.model_promotions order by version")
    assert rows.astype(object).where(rows.notna(), None).values.tolist() == [["1", None, True], ["2", "1", True]]
    with pytest.raises(ValueError, match="expected"):
        warehouse.append_rows(record("3", "2").drop(columns="passed"), "ml.model_promotions", PromotionRecord.SQL_TYPES)


def test_a_growing_log_from_an_earlier_version_gains_the_columns_declared_since(tmp_path):
    """A state written before a column was declared takes the next rows; its older rows hold null."""
    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    warehouse.append_rows(pd.DataFrame({"a": [1]}), "ml.log", {"a": "integer"})
    assert warehouse.append_rows(pd.DataFrame({"a": [2], "b": ["new"]}), "ml.log", {"a": "integer", "b": "varchar"}) == 1
    rows = warehouse.read("select a, b from ml.log order by a")
    assert rows.astype(object).where(rows.notna(), None).values.tolist() == [[1, None], [2, "new"]]


def test_the_run_lock_setup_reads_the_run_through_the_current_api(tmp_path):
    """setup_for_execution finds the current run with InitResourceContext.run: the deprecated
    dagster_run warned on every run."""
    import warnings

    @dg.asset
    def uses_settings(settings: PipelineSettings) -> None:
        settings.state_path()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = dg.materialize([uses_settings], resources={"settings": PipelineSettings(state_dir=str(tmp_path))},
                                instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert [str(w.message) for w in caught if "InitResourceContext" in str(w.message)] == []


def test_the_experiment_is_the_setting_else_the_environment_else_the_fixed_test(monkeypatch):
    from ml.experiments.design import BANDIT_EXPERIMENT_ID, FIXED_EXPERIMENT_ID

    monkeypatch.delenv("PIPELINE_EXPERIMENT_ID", raising=False)
    assert PipelineSettings().experiment() == FIXED_EXPERIMENT_ID
    monkeypatch.setenv("PIPELINE_EXPERIMENT_ID", BANDIT_EXPERIMENT_ID)
    assert PipelineSettings().experiment() == BANDIT_EXPERIMENT_ID
    assert PipelineSettings(experiment_id="my-test").experiment() == "my-test"
