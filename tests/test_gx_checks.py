"""A failed Great Expectations check speaks: its failed expectations, as sentences, are the
check's description and metadata, go to the step's log, and end up in the loop's message."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from orchestration import gx_checks
from orchestration.gx_checks import FAILED_EXPECTATIONS, run_gx_check
from orchestration.resources import EXPECTATIONS_DIR

ZERO_ROWS = "training_examples: expect_table_row_count_to_be_between observed 0, expected at least 1"


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, message: str) -> None:
        self.lines.append(("error", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))


def empty_training_examples() -> pd.DataFrame:
    suite = json.loads((EXPECTATIONS_DIR / "training_examples.json").read_text())
    columns = sorted({e["kwargs"]["column"] for e in suite["expectations"] if "column" in e["kwargs"]})
    return pd.DataFrame({column: pd.Series([], dtype="float64") for column in columns})


def test_a_blocking_failure_names_its_expectations_in_the_description_the_metadata_and_the_log() -> None:
    log = FakeLog()
    key = dg.AssetKey("training_examples")
    result = run_gx_check(empty_training_examples(), table="training_examples", asset_key=key, docs=None, log=log)
    assert (result.passed, result.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert result.description.splitlines() == [
        "1 blocking and 1 warning expectation(s) failed",
        ZERO_ROWS,
        "training_examples: expect_column_mean_to_be_between(label_purchase_14d) failed, expected between 0.001 and 0.5 [warning]",
    ]
    listed = result.metadata[FAILED_EXPECTATIONS]
    assert isinstance(listed, dg.MarkdownMetadataValue)
    assert listed.value.splitlines()[0] == f"- {ZERO_ROWS}"
    assert log.lines == [("error", f"gx_training_examples failed: {result.description}")]


def write_suite(directory: Path, expectations: list[dict]) -> None:
    (directory / "tiny.json").write_text(json.dumps({"name": "tiny", "expectations": expectations, "meta": {}}))


def test_a_warning_is_logged_as_a_warning_and_a_pass_stays_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_suite(tmp_path, [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "severity": "critical"},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "max_value": 10}, "severity": "warning"},
    ])
    monkeypatch.setattr(gx_checks, "EXPECTATIONS_DIR", tmp_path)
    key = dg.AssetKey("tiny")
    log = FakeLog()
    warned = run_gx_check(pd.DataFrame({"a": [1, 50]}), table="tiny", asset_key=key, docs=None, log=log)
    assert (warned.passed, warned.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert log.lines == [(
        "warning",
        "gx_tiny failed: 0 blocking and 1 warning expectation(s) failed\n"
        "tiny: expect_column_values_to_be_between(a) observed 1 failing row (50.00%), expected at most 10 [warning]",
    )]
    quiet = FakeLog()
    passed = run_gx_check(pd.DataFrame({"a": [1, 2]}), table="tiny", asset_key=key, docs=None, log=quiet)
    assert passed.passed and passed.description is None and quiet.lines == []
    assert passed.metadata[FAILED_EXPECTATIONS] == dg.MetadataValue.null()


def test_a_long_failure_list_is_cut_in_the_description_but_whole_in_the_metadata() -> None:
    frame = empty_training_examples().drop(columns=["cutoff_at", "tenure_days", "sends_7d", "opens_7d", "clicks_7d"])
    result = run_gx_check(frame, table="training_examples", asset_key=dg.AssetKey("training_examples"), docs=None)
    listed = result.metadata[FAILED_EXPECTATIONS].value.splitlines()
    lines = result.description.splitlines()
    assert len(listed) > gx_checks.DESCRIBED_FAILURES
    assert lines[1:-1] == [line.removeprefix("- ") for line in listed[: gx_checks.DESCRIBED_FAILURES]]
    assert lines[-1] == f"… and {len(listed) - gx_checks.DESCRIBED_FAILURES} more (metadata `failed_expectations`)"


def test_the_loop_says_which_expectation_stopped_the_day(tmp_path: Path) -> None:
    """A real (tiny) Dagster run whose blocking GX check fails: the loop's DayFailed names the
    check and the expectation with its observed value, not only the step."""
    from orchestration.loop import DayFailed, _run

    key = dg.AssetKey("training_examples")

    @dg.asset(key=key, check_specs=[gx_checks.gx_check_spec(key, "training_examples")])
    def training_examples(context):
        yield dg.MaterializeResult()
        yield run_gx_check(empty_training_examples(), table="training_examples", asset_key=key, docs=None, log=context.log)

    @dg.asset(deps=[key])
    def downstream() -> None:
        pass

    job = dg.Definitions(assets=[training_examples, downstream], jobs=[dg.define_asset_job("tiny_job")]).resolve_job_def("tiny_job")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, pytest.raises(DayFailed) as failure:
        _run(job, instance, {})
    message = str(failure.value)
    assert "failed in ['training_examples']" in message
    assert message.endswith(
        "failed blocking checks:\n  - training_examples gx_training_examples: expect_table_row_count_to_be_between "
        "observed 0, expected at least 1 (and 1 more)"
    )


def test_the_data_docs_page_of_a_check_is_named_after_the_dagster_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.quality import DataDocsSite

    write_suite(tmp_path, [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "severity": "critical"}])
    monkeypatch.setattr(gx_checks, "EXPECTATIONS_DIR", tmp_path)
    docs = DataDocsSite(tmp_path / "docs")
    run_gx_check(pd.DataFrame({"a": [1]}), table="tiny", asset_key=dg.AssetKey("tiny"), docs=docs, run_id="4f1c2e9a-run")
    docs.build()
    (page,) = (tmp_path / "docs" / "validations" / "tiny").rglob("*.html")
    assert "4f1c2e9a-run" in page.relative_to(tmp_path / "docs").parts
    assert "4f1c2e9a-run" in (tmp_path / "docs" / "index.html").read_text()
