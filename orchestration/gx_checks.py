"""Great Expectations validations as Dagster asset check results."""

from __future__ import annotations

import logging

import dagster as dg
import pandas as pd

from ml.quality import DataDocsSite, ValidationOutcome, WarehouseTable, validate_table
from orchestration.resources import EXPECTATIONS_DIR

# The check's description (shown beside its status in the UI) and the log name at most this
# many failed expectations; the metadata entry `failed_expectations` lists them all.
DESCRIBED_FAILURES = 10
FAILED_EXPECTATIONS = "failed_expectations"


def gx_check_spec(asset_key: dg.AssetKey, table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=f"gx_{table}",
        asset=asset_key,
        blocking=True,
        description=(
            f"Great Expectations suite expectations/{table}.json. Error-severity failures block "
            "downstream assets; warning-severity failures are reported but do not block."
        ),
    )


def run_gx_check(
    frame: pd.DataFrame | WarehouseTable,
    *,
    table: str,
    asset_key: dg.AssetKey,
    docs: DataDocsSite | None,
    log: logging.Logger | dg.DagsterLogManager | None = None,
    run_id: str | None = None,
) -> dg.AssetCheckResult:
    """The table's suite as a check result; its validation is queued on `docs` (build it once
    after the step's validations). When it fails, the failed expectations, one sentence each,
    are the result's description and its `failed_expectations` metadata, and go to `log`
    (the step's `context.log`): error level when they block, warning level when they do not.
    `run_id` (the Dagster run's) names the validation run in Data Docs."""
    outcome = validate_table(frame, EXPECTATIONS_DIR / f"{table}.json", table_name=table, docs=docs, run_name=run_id)
    if outcome.blocking_failed:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    elif outcome.warning_failures:
        severity, passed = dg.AssetCheckSeverity.WARN, False
    else:
        severity, passed = dg.AssetCheckSeverity.ERROR, True
    metadata = outcome.to_metadata()
    description = None
    if not passed:
        metadata[FAILED_EXPECTATIONS] = dg.MetadataValue.md("\n".join(f"- {s}" for s in outcome.failure_sentences))
        description = failure_description(outcome)
        if log is not None:
            (log.error if outcome.blocking_failed else log.warning)(f"gx_{table} failed: {description}")
    return dg.AssetCheckResult(
        check_name=f"gx_{table}",
        asset_key=asset_key,
        passed=passed,
        severity=severity,
        description=description,
        metadata=metadata,
    )


def failure_description(outcome: ValidationOutcome) -> str:
    """The failed expectations as lines, at most DESCRIBED_FAILURES of them, blocking ones first."""
    sentences = outcome.failure_sentences
    blocking = len(outcome.error_failures)
    head = f"{blocking} blocking and {len(sentences) - blocking} warning expectation(s) failed"
    lines = [head, *sentences[:DESCRIBED_FAILURES]]
    if len(sentences) > DESCRIBED_FAILURES:
        lines.append(f"… and {len(sentences) - DESCRIBED_FAILURES} more (metadata `{FAILED_EXPECTATIONS}`)")
    return "\n".join(lines)
