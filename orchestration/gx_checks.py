"""Great Expectations validations as Dagster asset check results."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from ml.quality import DataDocsSite, validate_table
from orchestration.resources import EXPECTATIONS_DIR


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
    frame: pd.DataFrame, *, table: str, asset_key: dg.AssetKey, docs: DataDocsSite | None
) -> dg.AssetCheckResult:
    """The table's suite as a check result; its validation is queued on `docs` (build it once
    after the step's validations)."""
    outcome = validate_table(frame, EXPECTATIONS_DIR / f"{table}.json", table_name=table, docs=docs)
    if outcome.blocking_failed:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    elif outcome.warning_failures:
        severity, passed = dg.AssetCheckSeverity.WARN, False
    else:
        severity, passed = dg.AssetCheckSeverity.ERROR, True
    return dg.AssetCheckResult(
        check_name=f"gx_{table}",
        asset_key=asset_key,
        passed=passed,
        severity=severity,
        metadata=outcome.to_metadata(),
    )
