"""Great Expectations validation of one table against its suite, without leaking row values.

Suites live in `expectations/<table>.json` (GX 1.x suite JSON). Every expectation carries GX's
native `severity`: `critical` expectations are contract violations that must block downstream
work (reported here as severity "error"), `warning` ones are expected mess worth a look.

Privacy: landing subscriber tables hold raw emails and first names, so validation results are
requested as counts only (SUMMARY with no partial unexpected values) and then reduced to an
allow-list of count fields before they are returned, stored or rendered. Exception messages and
tracebacks are replaced by a fixed note too, since they can quote cell values.

A failed expectation reads as one sentence (`ValidationOutcome.failure_sentences`): table,
expectation, column, what was observed (counts or a number) and what the suite expects.

`great_expectations` takes seconds to import, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ml.duckdb_settings import DuckDBSettings, connect as connect_duckdb
from ml.reports.offline_docs import make_data_docs_offline

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import EphemeralDataContext

# Project vocabulary for GX's native FailureSeverity values.
ERROR = "error"
WARNING = "warning"
INFO = "info"
_SEVERITY_NAMES = {"critical": ERROR, "warning": WARNING, "info": INFO}

# Counts, never values: GX computes the unexpected rows but returns none of them.
RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
# The only result fields that survive scrubbing (observed_value only when it is a number).
_COUNT_FIELDS = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
# Kept empty so Data Docs renderers that look for them find nothing rather than fail.
_EMPTY_SAMPLE_FIELDS = ("partial_unexpected_list", "partial_unexpected_counts")

# Stands in for a raised exception's message and traceback, which can quote cell values.
EXCEPTION_WITHHELD = "withheld (an exception message can quote row values)"

DOCS_SITE_NAME = "pipeline_quality"
# Under docs_dir: the scrubbed results and suites the Data Docs index is built from.
DOCS_STORE_DIRNAME = "gx_stores"


@dataclass(frozen=True)
class WarehouseTable:
    """A table in a DuckDB file, validated where it lives by GX's SQL engine (ml/gx_duckdb.py),
    not read into pandas: the same suite, a fraction of the time and memory."""

    database: Path
    relation: str  # as dbt names it: "catalog"."schema"."table"
    duckdb_settings: DuckDBSettings = DuckDBSettings()

    def open(self) -> Any:
        """A read-only connection to hold open while GX validates: the connections of GX's two
        engines then join this open database instead of each opening the file. The same
        settings as ml/gx_duckdb.py's: DuckDB refuses mixed ones in one process."""
        return connect_duckdb(self.database, self.duckdb_settings, read_only=True)


@dataclass(frozen=True)
class ParquetFile:
    """A file validated by GX's SQL engine in an in-memory DuckDB that reads it through
    `select` (a query over `read_parquet`), not read into pandas: DuckDB streams the file,
    so memory stays within the connection's limit whatever the file's size."""

    select: str
    duckdb_settings: DuckDBSettings = DuckDBSettings()
    database: str = ":memory:"

    @property
    def relation(self) -> str:
        return f"({self.select}) as parquet_file"

    def open(self) -> Any:
        """A connection to hold open while GX validates, as WarehouseTable's (GX's engines
        open their own in-memory databases; the query needs none of this one's state)."""
        return connect_duckdb(self.database, self.duckdb_settings, read_only=False)


class SuiteLoadError(ValueError):
    """A suite file is not a valid GX 1.x expectation suite."""


@dataclass(frozen=True)
class ValidationOutcome:
    """What a validation found, as counts: safe to log, store and show.

    `error_failures` / `warning_failures` hold one dict per failed expectation with keys
    expectation_type, column, condition, severity, unexpected_count, unexpected_percent,
    observed_value (numbers only), expected (what the suite asks, from its kwargs: suite
    configuration, never data) and raised_exception. Info-severity failures are listed
    with the warnings: neither blocks.
    """

    table_name: str
    suite_name: str
    success: bool
    row_count: int
    evaluated_expectations: int
    successful_expectations: int
    error_failures: tuple[dict[str, Any], ...]
    warning_failures: tuple[dict[str, Any], ...]
    docs_path: Path | None = None

    @property
    def blocking_failed(self) -> bool:
        """True when an error-severity expectation failed: downstream work must not run."""
        return bool(self.error_failures)

    @property
    def failure_sentences(self) -> tuple[str, ...]:
        """One human sentence per failed expectation, blocking ones first, e.g.
        `training_examples: expect_table_row_count_to_be_between observed 0, expected at least 1000`.
        Counts and numbers only, like the rest of the outcome."""
        def causes_first(failures: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
            # An expectation that could not be evaluated is mostly the echo of a missing column.
            return sorted(failures, key=lambda failure: bool(failure.get("raised_exception")))

        return tuple(failure_sentence(self.table_name, failure) for failure in causes_first(self.error_failures)) + tuple(
            f"{failure_sentence(self.table_name, failure)} [{failure['severity']}]"
            for failure in causes_first(self.warning_failures)
        )

    def to_metadata(self) -> dict[str, Any]:
        """A flat, JSON-serialisable summary (scalars only), e.g. for Dagster metadata."""
        return {
            "table": self.table_name,
            "suite": self.suite_name,
            "success": self.success,
            "blocking_failed": self.blocking_failed,
            "row_count": self.row_count,
            "evaluated_expectations": self.evaluated_expectations,
            "successful_expectations": self.successful_expectations,
            "error_failures": len(self.error_failures),
            "warning_failures": len(self.warning_failures),
            "error_failure_details": "; ".join(describe_failure(f) for f in self.error_failures),
            "warning_failure_details": "; ".join(describe_failure(f) for f in self.warning_failures),
            "failed_expectations": "\n".join(self.failure_sentences) or None,
            "docs_path": str(self.docs_path) if self.docs_path else None,
        }


def describe_failure(failure: dict[str, Any]) -> str:
    """One line for a failed expectation, e.g. `expect_column_values_to_be_unique(crm_id): 4 unexpected (2.00%)`."""
    target = failure["column"] or ""
    if failure.get("condition"):
        target = f"{target} where {failure['condition']}"
    head = f"{failure['expectation_type']}({target}) [{failure['severity']}]"
    if failure.get("raised_exception"):
        return f"{head}: could not be evaluated"
    if failure.get("unexpected_count") is not None:
        percent = failure.get("unexpected_percent")
        share = f" ({percent:.2f}%)" if percent is not None else ""
        return f"{head}: {failure['unexpected_count']} unexpected{share}"
    if failure.get("observed_value") is not None:
        return f"{head}: observed {failure['observed_value']}"
    return f"{head}: failed"


def failure_sentence(table: str, failure: dict[str, Any]) -> str:
    """A failed expectation as a sentence naming the table, the expectation, the column, what
    was observed and what the suite expects, e.g.
    `subscribers: expect_column_values_to_be_unique(person_id) observed 3 failing rows (37.50%), expected no duplicates`."""
    target = failure.get("column") or ""
    if failure.get("condition"):
        target = f"{target} where {failure['condition']}".strip()
    head = f"{table}: {failure['expectation_type']}" + (f"({target})" if target else "")
    if failure.get("raised_exception"):
        observed = "could not be evaluated (a missing column or a wrong type?)"
    elif failure.get("unexpected_count") is not None:
        percent = failure.get("unexpected_percent")
        count = failure["unexpected_count"]
        observed = f"observed {count} failing row{'' if count == 1 else 's'}" + (f" ({percent:.2f}%)" if percent is not None else "")
    elif failure.get("observed_value") is not None:
        observed = f"observed {_format_number(failure['observed_value'])}"
    elif failure["expectation_type"] == "expect_column_to_exist":
        observed = "observed no such column"
    else:
        observed = "failed"
    expected = failure.get("expected")
    return f"{head} {observed}" + (f", expected {expected}" if expected else "")


def load_suite(path: Path) -> gx.ExpectationSuite:
    """Load a GX 1.x suite JSON file (the `ExpectationSuite.to_json_dict()` format).

    GX logs and silently drops an invalid expectation; this refuses the file instead.
    """
    import great_expectations as gx

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteLoadError(f"{path}: cannot read suite JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteLoadError(f"{path}: not a GX expectation suite (no 'expectations' list)")
    try:
        suite = gx.ExpectationSuite(**data)
    except (TypeError, ValueError) as exc:
        raise SuiteLoadError(f"{path}: invalid suite: {exc}") from exc
    if len(suite.expectations) != len(data["expectations"]):
        raise SuiteLoadError(
            f"{path}: {len(data['expectations']) - len(suite.expectations)} expectation(s) are "
            "invalid for the installed Great Expectations version"
        )
    return suite


class DataDocsSite:
    """One Data Docs site for every table validated into `docs_dir`, keeping the latest
    validation of each. Validations are added as they run and the site is built once
    (`build`): each build renders every stored validation, so building per table made a
    run's cost grow with the square of its tables."""

    def __init__(self, docs_dir: Path) -> None:
        self.docs_dir = Path(docs_dir).resolve()
        self._pending: list[tuple[Path, Any, ExpectationSuiteValidationResult]] = []

    @property
    def index_path(self) -> Path:
        return self.docs_dir / "index.html"

    def add(self, suite_file: Path, result_key: Any, result: ExpectationSuiteValidationResult) -> None:
        """Queue a scrubbed result as its suite's latest validation."""
        self._pending.append((Path(suite_file), result_key, result))

    def build(self) -> Path:
        """Store the queued results (replacing earlier runs of the same suites) and render the site."""
        from great_expectations.exceptions import DataContextError

        self.docs_dir.mkdir(parents=True, exist_ok=True)
        context = _docs_context(self.docs_dir)
        store = context.validation_results_store
        replaced = {result_key.expectation_suite_identifier.name for _, result_key, _ in self._pending}
        for old_key in store.list_keys():
            if old_key.expectation_suite_identifier.name in replaced:
                store.remove_key(old_key)  # the index build then deletes its stale page
        for suite_file, result_key, result in self._pending:
            # Replaced, not add_or_update: that compares every stored expectation with every
            # new one (1.3 s for the 27 suites at each build; delete and add, 0.2 s).
            suite = load_suite(suite_file)
            try:
                context.suites.delete(suite.name)
            except DataContextError:
                pass  # a suite this site has not shown yet
            context.suites.add(suite)
            store.set(result_key, result)
        # Only this build's pages are rendered (the index still lists, and cleans, them all):
        # rendering every stored validation cost about 1 s per build, three builds a day.
        rendered = [result_key for _, result_key, _ in self._pending] + [
            result_key.expectation_suite_identifier for _, result_key, _ in self._pending
        ]
        self._pending.clear()
        context.build_data_docs(site_names=[DOCS_SITE_NAME], resource_identifiers=rendered)
        make_data_docs_offline(self.docs_dir)  # GX's pages load their CSS/JS from CDNs
        return self.index_path


def validate_table(
    data: pd.DataFrame | WarehouseTable | ParquetFile,
    suite_path: Path,
    *,
    table_name: str,
    docs: DataDocsSite | None = None,
    run_name: str | None = None,
) -> ValidationOutcome:
    """Validate a DataFrame, a warehouse table in place, or a file read by DuckDB (ParquetFile)
    against a suite file; return counts,
    never row values. `run_name` (the orchestrator's run id) names the validation run, so its
    Data Docs page says which run it belongs to.

    Runs the documented GX 1.x flow on a fresh in-memory context: a pandas data source with a
    dataframe asset, or a SQL data source with a query asset over the DuckDB relation; a whole-table
    batch definition; a ValidationDefinition. When a Data Docs site is given, the scrubbed result
    is queued on it and `docs_path` is its index.html; the caller builds the site once after its
    validations.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    run_id = RunIdentifier(run_name=run_name) if run_name else None
    suite_file = Path(suite_path)
    context = _new_context()
    suite = context.suites.add(load_suite(suite_file))
    if isinstance(data, (WarehouseTable, ParquetFile)):
        from ml.gx_duckdb import connection_string

        source = context.data_sources.add_sql(name="warehouse", connection_string=connection_string(data.database, data.duckdb_settings))
        batch_definition = source.add_query_asset(
            name=table_name, query=f"select * from {data.relation}"
        ).add_batch_definition_whole_table(name="whole_table")
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate_{table_name}", data=batch_definition, suite=suite)
        )
        with data.open() as database:
            row_count = int(database.execute(f"select count(*) from {data.relation}").fetchone()[0])
            try:
                result = validation.run(result_format=RESULT_FORMAT, run_id=run_id)
            finally:
                # Their connections must not outlive the validation (DuckDB would refuse a
                # later read-write connection in this process): the data source's engine and
                # the one its execution engine made.
                source.get_execution_engine().close()
                source.get_engine().dispose()
    else:
        batch_definition = (
            context.data_sources.add_pandas(name="pipeline")
            .add_dataframe_asset(name=table_name)
            .add_batch_definition_whole_dataframe(name="whole_table")
        )
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate_{table_name}", data=batch_definition, suite=suite)
        )
        result = validation.run(batch_parameters={"dataframe": data}, result_format=RESULT_FORMAT, run_id=run_id)
        row_count = len(data)
    scrub_validation_result(result)
    name_data_asset(result, table_name)

    error_failures: list[dict[str, Any]] = []
    warning_failures: list[dict[str, Any]] = []
    for expectation_result in result.results:
        if expectation_result.success:
            continue
        failure = _failure_summary(expectation_result)
        (error_failures if failure["severity"] == ERROR else warning_failures).append(failure)

    docs_path = None
    if docs is not None:
        (result_key,) = context.validation_results_store.list_keys()
        docs.add(suite_file, result_key, result)
        docs_path = docs.index_path

    statistics = result.statistics
    return ValidationOutcome(
        table_name=table_name,
        suite_name=suite.name,
        success=bool(result.success),
        row_count=row_count,
        evaluated_expectations=int(statistics["evaluated_expectations"]),
        successful_expectations=int(statistics["successful_expectations"]),
        error_failures=tuple(error_failures),
        warning_failures=tuple(warning_failures),
        docs_path=docs_path,
    )


def name_data_asset(result: ExpectationSuiteValidationResult, table_name: str) -> None:
    """Name the table in the result's batch spec, in place, where GX left it out.

    GX's validation page reads the data asset from the batch spec (`meta.batch_spec`), which
    a dataframe batch lacks (only the SQL one has it): its page said "Data asset: None"."""
    spec = result.meta.get("batch_spec")
    if spec is not None and not spec.get("data_asset_name"):
        spec["data_asset_name"] = table_name


def scrub_validation_result(result: ExpectationSuiteValidationResult) -> None:
    """Reduce every expectation result, in place, to counts and numeric observations.

    Drops unexpected value lists, index lists, detail dicts, non-numeric observed values,
    exception messages/tracebacks (they can quote cells) and the batch's data fingerprint (a
    hash of the raw rows), whatever result format produced them.
    """
    batch_markers = result.meta.get("batch_markers")
    if isinstance(batch_markers, dict):
        batch_markers.pop("pandas_data_fingerprint", None)
    for expectation_result in result.results:
        raw = expectation_result.result or {}
        kept: dict[str, Any] = {field: raw[field] for field in _COUNT_FIELDS if field in raw}
        observed = _number_or_none(raw.get("observed_value"))
        if observed is not None:
            kept["observed_value"] = observed
        for field in _EMPTY_SAMPLE_FIELDS:
            if field in raw:
                kept[field] = []
        expectation_result.result = kept
        raised = _raised_exception(expectation_result.exception_info)
        # GX's Data Docs renderer formats a raised exception's message and traceback as string
        # templates: None there fails the render (TypeError in re.sub), so a fixed note stands in.
        expectation_result.exception_info = {
            "raised_exception": raised,
            "exception_message": EXCEPTION_WITHHELD if raised else None,
            "exception_traceback": EXCEPTION_WITHHELD if raised else None,
        }


def _new_context() -> EphemeralDataContext:
    """A fresh in-memory GX context: no files, no progress bars, no usage statistics.

    Creating one takes milliseconds, so each validation gets its own and nothing leaks
    between tables.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _docs_context(docs_dir: Path) -> EphemeralDataContext:
    """A GX context whose suites and (scrubbed) results persist under docs_dir, with one site.

    Persisting them lets the site index list every table validated into the same folder,
    even across processes.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    store_root = docs_dir / DOCS_STORE_DIRNAME
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    defaults.stores[defaults.expectations_store_name] = {
        "class_name": "ExpectationsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(store_root / "expectations"),
        },
    }
    defaults.stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(store_root / "validations"),
        },
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.add_data_docs_site(
        DOCS_SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _failure_summary(expectation_result: Any) -> dict[str, Any]:
    config = expectation_result.expectation_config
    kwargs = config.kwargs
    severity = getattr(config.severity, "value", config.severity) or "critical"
    scrubbed = expectation_result.result or {}
    return {
        "expectation_type": config.type,
        "column": _column_label(kwargs),
        "condition": _describe_condition(kwargs.get("row_condition")),
        "severity": _SEVERITY_NAMES.get(str(severity), ERROR),
        "unexpected_count": scrubbed.get("unexpected_count"),
        "unexpected_percent": _number_or_none(scrubbed.get("unexpected_percent")),
        "observed_value": scrubbed.get("observed_value"),
        "expected": _describe_expected(config.type, kwargs),
        "raised_exception": bool(expectation_result.exception_info.get("raised_exception")),
    }


def _describe_expected(expectation_type: str, kwargs: dict[str, Any]) -> str | None:
    """What the suite asks for, in words, from the expectation's kwargs (configuration, not data).
    None when the expectation's name says it all and its kwargs add nothing readable."""
    expected = None
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        expected = f"between {_format_number(low)} and {_format_number(high)}"
    elif low is not None:
        expected = f"{'above' if kwargs.get('strict_min') else 'at least'} {_format_number(low)}"
    elif high is not None:
        expected = f"{'below' if kwargs.get('strict_max') else 'at most'} {_format_number(high)}"
    elif kwargs.get("value") is not None:
        expected = f"exactly {_format_number(kwargs['value'])}"
    elif kwargs.get("value_set") is not None:
        values = list(kwargs["value_set"])
        shown = ", ".join(str(value) for value in values[:6]) + (f", … ({len(values)} values)" if len(values) > 6 else "")
        expected = f"values in {{{shown}}}"
    elif kwargs.get("regex") is not None:
        regex = str(kwargs["regex"])
        regex = regex if len(regex) <= 40 else regex[:39] + "…"
        expected = f"{'no values' if 'not_match' in expectation_type else 'values'} matching /{regex}/"
    elif kwargs.get("column_A") is not None:
        expected = f"{kwargs['column_A']} {'>=' if kwargs.get('or_equal') else '>'} {kwargs['column_B']}"
    elif expectation_type == "expect_column_to_exist":
        expected = "the column to exist"
    elif expectation_type.endswith("_to_not_be_null"):
        expected = "no nulls"
    elif expectation_type.endswith("_to_be_null"):
        expected = "only nulls"
    elif expectation_type.endswith("_to_be_unique"):
        expected = "no duplicates"
    mostly = kwargs.get("mostly")
    if expected and mostly is not None and mostly < 1:
        expected = f"{expected} in at least {mostly:.0%} of rows"
    return expected


def _format_number(value: Any) -> str:
    """Integers as they are, floats without a float's noise (0.1 + 0.2 shows as 0.3)."""
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.6g}"
    return str(value)


def _column_label(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column") is not None:
        return str(kwargs["column"])
    if kwargs.get("column_A") is not None:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if kwargs.get("column_list"):
        return ",".join(str(column) for column in kwargs["column_list"])
    return None


def _describe_condition(condition: Any) -> str | None:
    """A readable row condition from the suite (configuration, not data), e.g. `is_eligible == True`."""
    if not condition:
        return None
    if isinstance(condition, dict):
        from great_expectations.expectations.row_conditions import deserialize_row_condition

        condition = deserialize_row_condition(condition)
    return condition if isinstance(condition, str) else repr(condition)


def _raised_exception(exception_info: Any) -> bool:
    if not exception_info:
        return False
    if "raised_exception" in exception_info:
        return bool(exception_info["raised_exception"])
    # GX may key exception infos by metric id instead.
    return any(bool(info.get("raised_exception")) for info in exception_info.values() if isinstance(info, dict))


def _number_or_none(value: Any) -> float | int | None:
    """Finite real numbers pass (bools are not numbers here); anything else becomes None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None
