"""Feature drift between the training data and today's scoring population (Evidently 0.7).

Evidently's DataDriftPreset picks a test per column (Wasserstein distance or Jensen-Shannon
for large samples, K-S or chi-squared for small ones) and calls the dataset drifted when at
least ``drift_share`` of the columns drift. The numbers in `DriftSummary` are read back from
Evidently's own result, so they always match the HTML report.

Recency features are compared capped at the longest feature window (`cap_recency`): beyond
it, "days since the last order" measures how long ago the data begins more than anything a
person did, and it drifts with the calendar alone (docs/models.md, "Why drift fired").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml.propensity.features import (
    FEATURE_COLUMNS, ID_COLUMNS, LABEL_COLUMNS, LONGEST_WINDOW_DAYS, RECENCY_FEATURES,
)

# Columns that identify rows or hold outcomes are never compared (nor put in the report).
EXCLUDED_COLUMNS = frozenset(ID_COLUMNS) | frozenset(LABEL_COLUMNS)


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict for one column."""

    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftSummary:
    """Outcome of `build_drift_report`.

    ``columns`` holds the columns Evidently compared; ``empty_columns`` maps a column with no
    values at all in one of the frames (which Evidently cannot test) to ``"reference"``,
    ``"current"`` or ``"both"``. A column that lost all its values is worth a look even though
    it is not counted as drifted.
    """

    n_columns: int
    n_drifted_columns: int
    share_drifted: float
    drift_share_threshold: float
    dataset_drift: bool
    columns: dict[str, ColumnDrift]
    empty_columns: dict[str, str]
    html_path: Path
    reference_rows: int
    current_rows: int
    reference_rows_available: int
    current_rows_available: int

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, highest score first."""
        drifted = [(name, c.score) for name, c in self.columns.items() if c.drifted]
        return [name for name, _ in sorted(drifted, key=lambda item: (-item[1], item[0]))]

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe summary, e.g. for orchestration metadata or an MLflow dict artifact."""
        return {
            "n_columns": self.n_columns,
            "n_drifted_columns": self.n_drifted_columns,
            "share_drifted": self.share_drifted,
            "drift_share_threshold": self.drift_share_threshold,
            "dataset_drift": self.dataset_drift,
            "drifted_columns": self.drifted_columns,
            "empty_columns": dict(self.empty_columns),
            "columns": {
                name: {"method": c.method, "threshold": c.threshold, "score": c.score, "drifted": c.drifted}
                for name, c in self.columns.items()
            },
            "html_path": str(self.html_path),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_rows_available": self.reference_rows_available,
            "current_rows_available": self.current_rows_available,
        }


def cap_recency(frame: pd.DataFrame, cap_days: float = LONGEST_WINDOW_DAYS) -> pd.DataFrame:
    """A copy of ``frame`` whose recency features ("days since the last ...") read at most
    ``cap_days``, and ``cap_days`` when there is none: "not in the last 90 days".

    Uncapped, their distribution depends on how long ago the data begins, not only on what
    people do: a person whose last order is 100 days old is 114 days old two weeks later,
    and nobody can have a 130-day gap in 120 days of data. Capped at a window that both
    frames observe in full, the comparison is like for like. Only for drift: the models
    see the features as they are.
    """
    capped = frame.copy()
    for column in (c for c in RECENCY_FEATURES if c in capped.columns):
        capped[column] = pd.to_numeric(capped[column]).fillna(cap_days).clip(upper=cap_days)
    return capped


def sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, drawn with ``seed`` (the same rows on every run)."""
    if max_rows is not None and max_rows < 1:
        raise ValueError("max_rows must be positive or None")
    if max_rows is None or len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed)


def build_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    html_path: Path,
    columns: tuple[str, ...] | list[str] = FEATURE_COLUMNS,
    max_rows: int | None = 20000,
    seed: int = 0,
    drift_share: float = 0.5,
    recency_cap_days: float | None = LONGEST_WINDOW_DAYS,
) -> DriftSummary:
    """Compare ``columns`` of ``current`` against ``reference``, write Evidently's HTML report
    to ``html_path`` and return the parsed result.

    Pass raw mart rows (``top_category_slot`` as text). ID and label columns are dropped even if
    listed. Inputs above ``max_rows`` rows are sampled deterministically to bound run time.
    Recency features are compared capped at ``recency_cap_days`` (`cap_recency`; None
    compares them raw).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if not 0.0 < drift_share <= 1.0:
        raise ValueError("drift_share must be in (0, 1]")
    compared = [c for c in dict.fromkeys(columns) if c not in EXCLUDED_COLUMNS]
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in compared if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame lacks columns {missing}")
        if frame.empty:
            raise ValueError(f"{name} frame has no rows")
    reference_sample = sample_rows(reference[compared], max_rows, seed).reset_index(drop=True)
    current_sample = sample_rows(current[compared], max_rows, seed).reset_index(drop=True)
    if recency_cap_days is not None:
        reference_sample = cap_recency(reference_sample, recency_cap_days)
        current_sample = cap_recency(current_sample, recency_cap_days)

    empty_columns = _empty_columns(reference_sample, current_sample, compared)
    testable = [c for c in compared if c not in empty_columns]
    if not testable:
        raise ValueError(f"no column has values in both frames: {empty_columns}")
    numerical = [c for c in testable if _is_number_column(reference_sample[c])]
    categorical = [c for c in testable if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)

    def as_dataset(frame: pd.DataFrame) -> Dataset:
        frame = frame[testable].copy()
        for column in categorical:
            frame[column] = frame[column].astype("object")
        return Dataset.from_pandas(frame, data_definition=definition)

    report = Report([DataDriftPreset(columns=testable, drift_share=drift_share)], include_tests=True)
    snapshot = report.run(current_data=as_dataset(current_sample), reference_data=as_dataset(reference_sample))
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    # save_html silently ignores anything but a str path.
    snapshot.save_html(str(html_path))

    count, share, dataset_drift, per_column = parse_drift_result(snapshot.dict())
    if set(per_column) != set(testable):
        raise RuntimeError(f"Evidently reported columns {sorted(per_column)}, expected {sorted(testable)}")
    return DriftSummary(
        n_columns=len(per_column),
        n_drifted_columns=count,
        share_drifted=share,
        drift_share_threshold=drift_share,
        dataset_drift=dataset_drift,
        columns={c: per_column[c] for c in testable},
        empty_columns=empty_columns,
        html_path=html_path,
        reference_rows=len(reference_sample),
        current_rows=len(current_sample),
        reference_rows_available=len(reference),
        current_rows_available=len(current),
    )


def _is_number_column(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _empty_columns(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    empty = {}
    for column in columns:
        sides = [name for name, frame in (("reference", reference), ("current", current)) if frame[column].isna().all()]
        if sides:
            empty[column] = "both" if len(sides) == 2 else sides[0]
    return empty


def parse_drift_result(result: dict[str, Any]) -> tuple[int, float, bool, dict[str, ColumnDrift]]:
    """Read (drifted count, drifted share, dataset drift, per-column drift) from
    ``Snapshot.dict()`` of a report with a DataDriftPreset run with tests included."""
    status_by_metric: dict[str, str] = {}
    for test in result.get("tests", []):
        status_by_metric[test["metric_config"]["metric_id"]] = test["status"]

    count_metric = None
    per_column: dict[str, ColumnDrift] = {}
    for metric in result["metrics"]:
        kind = metric["config"]["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            count_metric = metric
        elif kind == "ValueDrift":
            status = status_by_metric.get(metric["id"])
            if status not in ("SUCCESS", "FAIL"):
                raise RuntimeError(f"no drift test result for column {metric['config']['column']!r}")
            per_column[metric["config"]["column"]] = ColumnDrift(
                method=str(metric["config"]["method"]),
                threshold=float(metric["config"]["threshold"]),
                score=float(metric["value"]),
                drifted=status == "FAIL",
            )
    if count_metric is None:
        raise RuntimeError("Evidently result has no DriftedColumnsCount metric")
    # The preset's test is "share of drifted columns < drift_share"; failing it is dataset drift.
    dataset_status = status_by_metric.get(count_metric["id"])
    if dataset_status not in ("SUCCESS", "FAIL"):
        raise RuntimeError("Evidently result has no dataset drift test")
    value = count_metric["value"]
    return int(value["count"]), float(value["share"]), dataset_status == "FAIL", per_column
