"""`make simulate` continues from the first day not yet run; without a loop it says what to do."""

from datetime import date
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pytest

from orchestration.loop import DayFailed, failed_checks_message, main, next_live_day
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


def evaluation(asset, check, passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=None, description=None):
    """Shaped like dagster's AssetCheckEvaluation: what `result.get_asset_check_evaluations()` gives."""
    return SimpleNamespace(asset_key=dg.AssetKey(asset), check_name=check, passed=passed, severity=severity,
                           metadata=metadata or {}, description=description)


def test_the_failed_blocking_checks_are_named_one_line_each_with_their_cause():
    evaluations = [
        evaluation("training_examples", "gx_training_examples", metadata={"failed_expectations": dg.MetadataValue.md(
            "- training_examples: expect_table_row_count_to_be_between observed 0, expected at least 1000\n"
            "- training_examples: expect_column_mean_to_be_between(label_purchase_14d) failed [warning]")}),
        evaluation(["landing", "orders"], "gx_orders", metadata={"failed_expectations": dg.MetadataValue.md(
            "- orders: expect_column_values_to_be_unique(order_id) observed 3 failing rows (0.10%), expected no duplicates")}),
        evaluation("fct_sends", "not_null_fct_sends_send_id", metadata={
            "unique_id": dg.MetadataValue.text("test.email.not_null_fct_sends_send_id.1a"),
            "status": dg.MetadataValue.text("fail"), "dagster_dbt/failed_row_count": dg.MetadataValue.int(7)}),
        evaluation("subscriber_eligibility", "consent_records_all_tied",
                   description="Quarantined consent rows tied to nobody; fix the feed: consent_events row 4\nmore"),
        evaluation("scoring_features", "gx_scoring_features", severity=dg.AssetCheckSeverity.WARN),  # does not block
        evaluation("fct_orders", "gx_fct_orders", passed=True),
    ]
    assert failed_checks_message(evaluations) == (
        "; failed blocking checks:\n"
        "  - training_examples gx_training_examples: expect_table_row_count_to_be_between observed 0, expected at least 1000 (and 1 more)\n"
        "  - landing/orders gx_orders: expect_column_values_to_be_unique(order_id) observed 3 failing rows (0.10%), expected no duplicates\n"
        "  - fct_sends not_null_fct_sends_send_id: dbt test: 7 failing rows (status fail)\n"
        "  - subscriber_eligibility consent_records_all_tied: Quarantined consent rows tied to nobody; fix the feed: consent_events row 4"
    )
    assert failed_checks_message(evaluations[-2:]) == ""


def test_the_failed_checks_message_stays_short():
    many = [evaluation(f"mart_{i}", f"gx_mart_{i}", metadata={"failed_expectations": "- mart: " + "x" * 500}) for i in range(8)]
    lines = failed_checks_message(many).splitlines()[1:]
    assert len(lines) == 6 and lines[-1] == "  - … and 3 more failed blocking checks"
    assert all(len(line) <= 304 for line in lines)
    assert failed_checks_message([evaluation("a", "c")]) == "; failed blocking checks:\n  - a c: failed"


def test_a_failed_step_s_own_message_reaches_the_loop_s_error(tmp_path):
    """The innermost error (here a dg.Failure naming the fix), not only the step key."""
    from orchestration.loop import _run

    @dg.asset
    def purchase_model() -> None:
        raise dg.Failure("purchase model: training needs 56 days of history and the data has 20. Fix: land 36 more days.")

    job = dg.Definitions(assets=[purchase_model], jobs=[dg.define_asset_job("tiny_job")]).resolve_job_def("tiny_job")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, pytest.raises(DayFailed) as failure:
        _run(job, instance, {})
    assert str(failure.value).endswith(
        "; the step said:\n  - purchase_model: purchase model: training needs 56 days of history and the data has 20. "
        "Fix: land 36 more days."
    )
