"""The GX runner: outcomes, severities, counts, Data Docs, and that no row value ever leaks."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import great_expectations as gx
import pandas as pd
import pytest

from ml.quality import (
    DataDocsSite,
    ERROR,
    EXCEPTION_WITHHELD,
    WARNING,
    SuiteLoadError,
    ValidationOutcome,
    describe_failure,
    failure_sentence,
    load_suite,
    scrub_validation_result,
    validate_table,
)

EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
REPO_EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


def write_suite(directory: Path, name: str, expectations: list[dict]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"name": name, "expectations": expectations, "meta": {}}))
    return path


@pytest.fixture()
def people_suite(tmp_path: Path) -> Path:
    """A small suite over a PII-like table: id must be unique (error), email format (warning)."""
    return write_suite(
        tmp_path,
        "people",
        [
            {"type": "expect_column_to_exist", "kwargs": {"column": "person_id"}, "severity": "critical"},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "person_id"}, "severity": "critical"},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "person_id"}, "severity": "critical"},
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "email", "regex": EMAIL_SHAPE, "mostly": 0.9},
                "severity": "warning",
            },
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10}, "severity": "warning"},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "age", "min_value": 18, "max_value": 99}, "severity": "critical"},
        ],
    )


def people(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "email": [f"person{i}@example.com" for i in range(n)],
            "first_name": ["Zelda"] * n,
            "age": [30 + i for i in range(n)],
        }
    )


def test_a_good_frame_passes(people_suite: Path) -> None:
    outcome = validate_table(people(), people_suite, table_name="people")
    assert isinstance(outcome, ValidationOutcome)
    assert (outcome.table_name, outcome.suite_name) == ("people", "people")
    assert outcome.success and not outcome.blocking_failed
    assert outcome.error_failures == () and outcome.warning_failures == ()
    assert (outcome.evaluated_expectations, outcome.successful_expectations, outcome.row_count) == (6, 6, 5)
    assert outcome.docs_path is None


def test_an_error_violation_blocks_with_the_right_counts(people_suite: Path) -> None:
    frame = people(8)
    frame.loc[[1, 2], "person_id"] = "p0"  # three rows share p0
    outcome = validate_table(frame, people_suite, table_name="people")
    assert outcome.blocking_failed and not outcome.success
    assert outcome.warning_failures == ()
    (failure,) = outcome.error_failures
    assert failure == {
        "expectation_type": "expect_column_values_to_be_unique",
        "column": "person_id",
        "condition": None,
        "severity": ERROR,
        "unexpected_count": 3,
        "unexpected_percent": pytest.approx(37.5),
        "observed_value": None,
        "expected": "no duplicates",
        "raised_exception": False,
    }
    assert (outcome.evaluated_expectations, outcome.successful_expectations) == (6, 5)


def test_a_warning_violation_does_not_block(people_suite: Path) -> None:
    frame = people(10)
    frame.loc[[0, 1], "email"] = "no-at-sign"  # 20% bad > 10% allowed
    outcome = validate_table(frame, people_suite, table_name="people")
    assert not outcome.success and not outcome.blocking_failed
    (failure,) = outcome.warning_failures
    assert (failure["severity"], failure["column"], failure["unexpected_count"]) == (WARNING, "email", 2)
    assert failure["unexpected_percent"] == pytest.approx(20.0)


def test_mess_within_mostly_passes(people_suite: Path) -> None:
    frame = people(10)
    frame.loc[0, "email"] = "no-at-sign"  # 10% bad, exactly what mostly=0.9 allows
    assert validate_table(frame, people_suite, table_name="people").success


def test_numeric_observed_values_are_reported(people_suite: Path) -> None:
    frame = people(12)  # 12 rows > 10 (warning); mean age 35.5 fine
    frame["age"] = 5  # mean 5 < 18 (error)
    outcome = validate_table(frame, people_suite, table_name="people")
    (error,) = outcome.error_failures
    (warning,) = outcome.warning_failures
    assert (error["expectation_type"], error["observed_value"], error["unexpected_count"]) == (
        "expect_column_mean_to_be_between", 5, None)
    assert (warning["expectation_type"], warning["observed_value"], warning["column"]) == (
        "expect_table_row_count_to_be_between", 12, None)


def test_a_missing_column_fails_at_its_severity_without_an_exception_message(people_suite: Path) -> None:
    outcome = validate_table(people().drop(columns=["person_id"]), people_suite, table_name="people")
    failures = {f["expectation_type"]: f for f in outcome.error_failures}
    assert set(failures) == {
        "expect_column_to_exist",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
    }
    assert failures["expect_column_values_to_be_unique"]["raised_exception"] is True
    assert "could not be evaluated" in outcome.to_metadata()["error_failure_details"]


def test_metadata_is_flat_and_json_serialisable(people_suite: Path) -> None:
    frame = people(12)
    frame.loc[0, "person_id"] = None
    metadata = validate_table(frame, people_suite, table_name="people").to_metadata()
    assert json.loads(json.dumps(metadata, allow_nan=False)) == metadata
    assert all(value is None or isinstance(value, (str, int, float, bool)) for value in metadata.values())
    assert metadata["blocking_failed"] is True
    assert (metadata["error_failures"], metadata["warning_failures"]) == (1, 1)
    assert metadata["error_failure_details"] == (
        "expect_column_values_to_not_be_null(person_id) [error]: 1 unexpected (8.33%)"
    )
    assert metadata["warning_failure_details"] == "expect_table_row_count_to_be_between() [warning]: observed 12"


def test_row_conditions_are_described(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        "eligibility",
        [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {
                    "column": "consent_status",
                    "value_set": ["subscribed"],
                    "row_condition": {"type": "comparison", "column": {"name": "is_eligible"}, "operator": "==", "parameter": True},
                },
                "severity": "critical",
            }
        ],
    )
    frame = pd.DataFrame({"is_eligible": [True, True, False], "consent_status": ["subscribed", "erased", "erased"]})
    (failure,) = validate_table(frame, suite, table_name="eligibility").error_failures
    assert (failure["condition"], failure["unexpected_count"]) == ("is_eligible == True", 1)
    assert failure["unexpected_percent"] == pytest.approx(50.0)


def all_invalid_emails(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "email": [f"secret.person{i}-at-example.invalid" for i in range(n)],
            "first_name": ["Zelda"] * n,
            "age": [40] * n,
        }
    )


@pytest.fixture()
def leaky_suite(tmp_path: Path) -> Path:
    """Expectations whose GX results would quote row values if they were not scrubbed."""
    return write_suite(
        tmp_path,
        "people_leaky",
        [
            {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": EMAIL_SHAPE}, "severity": "critical"},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "first_name", "value_set": ["Ann"]}, "severity": "warning"},
            {"type": "expect_column_distinct_values_to_be_in_set", "kwargs": {"column": "email", "value_set": ["x"]}, "severity": "critical"},
            {"type": "expect_column_most_common_value_to_be_in_set", "kwargs": {"column": "first_name", "value_set": ["Ann"]}, "severity": "warning"},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "first_name"}, "severity": "critical"},
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "email", "min_value": 0}, "severity": "critical"},
        ],
    )


def test_no_value_leaks_into_the_outcome_or_the_data_docs(leaky_suite: Path, tmp_path: Path) -> None:
    docs_dir = tmp_path / "docs"
    docs = DataDocsSite(docs_dir)
    outcome = validate_table(all_invalid_emails(), leaky_suite, table_name="people", docs=docs)
    docs.build()
    assert outcome.blocking_failed
    email_failure = next(f for f in outcome.error_failures if f["expectation_type"] == "expect_column_values_to_match_regex")
    assert (email_failure["unexpected_count"], email_failure["unexpected_percent"]) == (40, 100.0)
    rendered = json.dumps(outcome.to_metadata()) + repr(outcome)
    assert "secret.person" not in rendered and "Zelda" not in rendered
    files = [path for path in docs_dir.rglob("*") if path.is_file() and "static" not in path.parts]
    assert any(path.suffix == ".html" for path in files) and any(path.suffix == ".json" for path in files)
    for path in files:
        text = path.read_text(errors="ignore")
        assert "secret.person" not in text, path
        assert "Zelda" not in text, path


def test_scrub_removes_values_whatever_the_result_format(leaky_suite: Path) -> None:
    context = gx.get_context(mode="ephemeral")
    suite = context.suites.add(load_suite(leaky_suite))
    batch = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("w")
    validation = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
    result = validation.run(batch_parameters={"dataframe": all_invalid_emails()}, result_format="COMPLETE")
    assert "secret.person" in json.dumps(result.to_json_dict())  # COMPLETE really does quote values
    scrub_validation_result(result)
    serialised = json.dumps(result.to_json_dict())
    assert "secret.person" not in serialised and "Zelda" not in serialised
    assert "pandas_data_fingerprint" not in serialised
    regex_result = next(r for r in result.results if r.expectation_config.type == "expect_column_values_to_match_regex")
    assert regex_result.result["unexpected_count"] == 40
    assert regex_result.result["partial_unexpected_list"] == []
    assert "unexpected_list" not in regex_result.result and "unexpected_index_list" not in regex_result.result
    raised = next(r for r in result.results if r.expectation_config.type == "expect_column_values_to_be_between")
    assert raised.exception_info == {
        "raised_exception": True, "exception_message": EXCEPTION_WITHHELD, "exception_traceback": EXCEPTION_WITHHELD}
    evaluated = next(r for r in result.results if r.expectation_config.type == "expect_column_values_to_match_regex")
    assert evaluated.exception_info == {"raised_exception": False, "exception_message": None, "exception_traceback": None}


def test_data_docs_are_rendered_and_name_the_suite(people_suite: Path, tmp_path: Path) -> None:
    docs_dir = tmp_path / "data_docs"
    docs = DataDocsSite(docs_dir)
    outcome = validate_table(people(), people_suite, table_name="people", docs=docs)
    assert not outcome.docs_path.exists()  # queued, not built
    assert docs.build() == outcome.docs_path == (docs_dir / "index.html").resolve()
    assert outcome.docs_path.is_file()
    assert "people" in outcome.docs_path.read_text()
    assert (docs_dir / "expectations" / "people.html").is_file()
    (page,) = (docs_dir / "validations" / "people").rglob("*.html")
    # The page names the table validated (GX leaves a dataframe batch's asset unnamed: "None").
    assert re.findall(r"Data asset:\s*([^<\s]+)", page.read_text()) == ["people"]
    assert outcome.to_metadata()["docs_path"] == str(outcome.docs_path)


def test_one_site_lists_every_table_and_keeps_only_the_latest_run(people_suite: Path, tmp_path: Path) -> None:
    docs_dir = tmp_path / "data_docs"
    other_suite = write_suite(
        tmp_path, "orders_fake",
        [{"type": "expect_column_to_exist", "kwargs": {"column": "order_id"}, "severity": "critical"}],
    )
    # Two runs, each building the site once: the second replaces the first run's people page.
    first_run = DataDocsSite(docs_dir)
    validate_table(people(), people_suite, table_name="people", docs=first_run)
    validate_table(pd.DataFrame({"order_id": ["o1"]}), other_suite, table_name="orders_fake", docs=first_run)
    first_run.build()
    (orders_page,) = (docs_dir / "validations" / "orders_fake").rglob("*.html")
    orders_page_written = orders_page.stat().st_mtime_ns
    orders_suite_written = (docs_dir / "expectations" / "orders_fake.html").stat().st_mtime_ns
    failing = people()
    failing.loc[1, "person_id"] = "p0"
    second_run = DataDocsSite(docs_dir)
    validate_table(failing, people_suite, table_name="people", docs=second_run)
    second_run.build()
    index = (docs_dir / "index.html").read_text()
    assert "people" in index and "orders_fake" in index
    pages = list((docs_dir / "validations" / "people").rglob("*.html"))
    assert len(pages) == 1  # the earlier, passing run of people was replaced
    assert "Failed" in pages[0].read_text()
    # The second build rendered only its own table's pages; the other table's stayed as they were.
    (orders_page,) = (docs_dir / "validations" / "orders_fake").rglob("*.html")
    assert orders_page.stat().st_mtime_ns == orders_page_written
    assert (docs_dir / "expectations" / "orders_fake.html").stat().st_mtime_ns == orders_suite_written


def test_validating_twenty_thousand_rows_is_fast(people_suite: Path) -> None:
    validate_table(people(), people_suite, table_name="people")  # warm-up: GX import
    n = 20_000
    frame = people(n)
    frame["person_id"] = [f"p{i}" for i in range(n)]
    started = time.perf_counter()
    outcome = validate_table(frame, people_suite, table_name="people")
    elapsed = time.perf_counter() - started
    assert outcome.row_count == n
    assert elapsed < 3.0, f"validating {n} rows took {elapsed:.2f}s"


def test_load_suite_refuses_broken_files(tmp_path: Path) -> None:
    not_json = tmp_path / "broken.json"
    not_json.write_text("{not json")
    with pytest.raises(SuiteLoadError, match="broken.json"):
        load_suite(not_json)
    not_a_suite = tmp_path / "list.json"
    not_a_suite.write_text("[]")
    with pytest.raises(SuiteLoadError, match="not a GX expectation suite"):
        load_suite(not_a_suite)
    unknown_kwarg = write_suite(
        tmp_path, "bad_kwargs",
        [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "max_value": "lots"}, "severity": "critical"}],
    )
    with pytest.raises(SuiteLoadError, match="bad_kwargs"):
        load_suite(unknown_kwarg)
    with pytest.raises(SuiteLoadError):
        load_suite(tmp_path / "missing.json")


def test_load_suite_refuses_expectations_gx_would_silently_drop(tmp_path: Path) -> None:
    # GX logs and drops a config it rejects as invalid; a suite that shrinks is refused.
    valid = {"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "severity": "critical"}
    unknown_type = write_suite(
        tmp_path, "unknown_type", [valid, {"type": "expect_column_to_be_purple", "kwargs": {"column": "a"}}]
    )
    bad_severity = write_suite(tmp_path, "bad_severity", [valid, {**valid, "severity": "fatal"}])
    for path in (unknown_type, bad_severity):
        with pytest.raises(SuiteLoadError, match="1 expectation"):
            load_suite(path)


def test_describe_failure_variants() -> None:
    base = {"expectation_type": "expect_x", "column": "c", "condition": None, "severity": "error",
            "unexpected_count": None, "unexpected_percent": None, "observed_value": None, "raised_exception": False}
    assert describe_failure(base) == "expect_x(c) [error]: failed"
    assert describe_failure({**base, "unexpected_count": 4, "unexpected_percent": 2.0}) == (
        "expect_x(c) [error]: 4 unexpected (2.00%)")
    assert describe_failure({**base, "observed_value": 0.5, "condition": "k == 1"}) == (
        "expect_x(c where k == 1) [error]: observed 0.5")
    assert describe_failure({**base, "raised_exception": True}) == "expect_x(c) [error]: could not be evaluated"


def test_a_failed_expectation_speaks_as_a_sentence_with_what_was_observed_and_expected(people_suite: Path) -> None:
    frame = people(12)  # 12 rows > 10 (warning)
    frame.loc[[1, 2], "person_id"] = "p0"  # three rows share p0 (error)
    frame["age"] = 5  # mean 5 < 18 (error)
    outcome = validate_table(frame, people_suite, table_name="people")
    assert outcome.failure_sentences == (
        "people: expect_column_values_to_be_unique(person_id) observed 3 failing rows (25.00%), expected no duplicates",
        "people: expect_column_mean_to_be_between(age) observed 5, expected between 18 and 99",
        "people: expect_table_row_count_to_be_between observed 12, expected between 1 and 10 [warning]",
    )
    assert outcome.to_metadata()["failed_expectations"] == "\n".join(outcome.failure_sentences)
    assert validate_table(people(), people_suite, table_name="people").to_metadata()["failed_expectations"] is None


def test_the_real_training_examples_suite_says_it_observed_zero_rows() -> None:
    """The issue's case: an empty training_examples mart, validated against its real suite."""
    suite = REPO_EXPECTATIONS / "training_examples.json"
    columns = sorted({e["kwargs"]["column"] for e in json.loads(suite.read_text())["expectations"] if "column" in e["kwargs"]})
    empty = pd.DataFrame({column: pd.Series([], dtype="float64") for column in columns})
    outcome = validate_table(empty, suite, table_name="training_examples")
    assert outcome.blocking_failed
    assert outcome.failure_sentences[0] == (
        "training_examples: expect_table_row_count_to_be_between observed 0, expected at least 1")
    # A missing column: its own failure comes first, the expectations it kept from running last.
    no_cutoff = validate_table(empty.drop(columns=["cutoff_at"]), suite, table_name="training_examples")
    assert no_cutoff.failure_sentences == (
        "training_examples: expect_column_to_exist(cutoff_at) observed no such column, expected the column to exist",
        "training_examples: expect_table_row_count_to_be_between observed 0, expected at least 1",
        "training_examples: expect_compound_columns_to_be_unique(subscriber_key,cutoff_at) could not be evaluated (a "
        "missing column or a wrong type?), expected no duplicates",
        "training_examples: expect_column_mean_to_be_between(label_purchase_14d) failed, expected between 0.001 and 0.5 "
        "[warning]",
    )


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({}, "t: expect_x(c) failed"),
        ({"unexpected_count": 1, "unexpected_percent": 0.5, "expected": "no nulls in at least 95% of rows"},
         "t: expect_x(c) observed 1 failing row (0.50%), expected no nulls in at least 95% of rows"),
        ({"observed_value": 0.30000000000000004, "condition": "k == 1", "expected": "at most 0.2"},
         "t: expect_x(c where k == 1) observed 0.3, expected at most 0.2"),
        ({"raised_exception": True, "expected": "values in {a, b}"},
         "t: expect_x(c) could not be evaluated (a missing column or a wrong type?), expected values in {a, b}"),
        ({"column": None}, "t: expect_x failed"),
    ],
)
def test_failure_sentence_variants(change: dict, sentence: str) -> None:
    base = {"expectation_type": "expect_x", "column": "c", "condition": None, "severity": "error", "unexpected_count": None,
            "unexpected_percent": None, "observed_value": None, "expected": None, "raised_exception": False}
    assert failure_sentence("t", {**base, **change}) == sentence


def test_what_is_expected_is_read_from_the_suite(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path, "shapes",
        [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": 0, "strict_min": True, "mostly": 0.9}, "severity": "critical"},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": list("abcdefgh")}, "severity": "critical"},
            {"type": "expect_column_values_to_not_match_regex", "kwargs": {"column": "s", "regex": "^[a-z]$"}, "severity": "critical"},
            {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "n", "column_B": "m", "or_equal": True}, "severity": "critical"},
            {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 3}, "severity": "critical"},
        ],
    )
    frame = pd.DataFrame({"n": [-1, -2], "m": [0, 0], "s": ["z", "y"]})
    expected = {f["expectation_type"]: f["expected"] for f in validate_table(frame, suite, table_name="shapes").error_failures}
    assert expected == {
        "expect_column_values_to_be_between": "above 0 in at least 90% of rows",
        "expect_column_values_to_be_in_set": "values in {a, b, c, d, e, f, … (8 values)}",
        "expect_column_values_to_not_match_regex": "no values matching /^[a-z]$/",
        "expect_column_pair_values_a_to_be_greater_than_b": "n >= m",
        "expect_table_row_count_to_equal": "exactly 3",
    }


def test_data_docs_render_an_expectation_that_raised_without_errors(
    people_suite: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GX renders a raised exception's message and traceback as templates; the scrubbed None
    made every such page log a `TypeError ... NoneType` traceback and drop the row."""
    docs_dir = tmp_path / "data_docs"
    docs = DataDocsSite(docs_dir)
    outcome = validate_table(people().drop(columns=["person_id"]), people_suite, table_name="people", docs=docs)
    assert any(f["raised_exception"] for f in outcome.error_failures)
    with caplog.at_level(logging.WARNING):
        docs.build()
    render_errors = [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]
    assert render_errors == []
    (page,) = (docs_dir / "validations" / "people").rglob("*.html")
    assert "raised an exception" in page.read_text() and EXCEPTION_WITHHELD in page.read_text()


def test_a_suite_changed_between_builds_is_shown_as_it_is_now(tmp_path: Path) -> None:
    docs_dir = tmp_path / "data_docs"
    expectation = {"type": "expect_column_to_exist", "kwargs": {"column": "order_id"}, "severity": "critical"}
    suite = write_suite(tmp_path, "orders_fake", [expectation])
    first_run = DataDocsSite(docs_dir)
    validate_table(pd.DataFrame({"order_id": ["o1"]}), suite, table_name="orders_fake", docs=first_run)
    first_run.build()
    suite = write_suite(tmp_path, "orders_fake", [expectation, {**expectation, "kwargs": {"column": "placed_at"}}])
    second_run = DataDocsSite(docs_dir)
    validate_table(pd.DataFrame({"order_id": ["o1"], "placed_at": ["x"]}), suite, table_name="orders_fake", docs=second_run)
    second_run.build()
    (page,) = (docs_dir / "expectations").rglob("orders_fake.html")
    assert "placed_at" in page.read_text()
