"""Evidently drift report between training and scoring features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.propensity.drift import build_drift_report, cap_recency, parse_drift_result, sample_rows
from ml.propensity.features import FEATURE_COLUMNS, LONGEST_WINDOW_DAYS, RECENCY_FEATURES
from tests.ml.conftest import make_feature_rows

COLUMNS = ["orders_90d", "click_rate_30d", "tenure_days", "top_category_slot"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "subscriber_key": [f"key-{seed}-{i}" for i in range(n)],
            "cutoff_at": pd.Timestamp("2025-03-01"),
            "orders_90d": rng.poisson(1.5, size=n).astype(float),
            "click_rate_30d": rng.beta(2, 8, size=n),
            "tenure_days": rng.normal(400, 100, size=n),
            "top_category_slot": rng.choice(["category_slot_1", "category_other", "none"], size=n, p=[0.4, 0.3, 0.3]),
        }
    )


def test_a_shifted_column_is_flagged_and_the_others_are_not(tmp_path):
    reference, current = _frame(1500, seed=1), _frame(1500, seed=2)
    current["tenure_days"] += 150  # 1.5 standard deviations
    summary = build_drift_report(reference, current, html_path=tmp_path / "drift.html", columns=COLUMNS)
    assert summary.columns["tenure_days"].drifted
    assert summary.columns["tenure_days"].score > summary.columns["tenure_days"].threshold
    assert [c for c in COLUMNS if summary.columns[c].drifted] == ["tenure_days"]
    assert summary.drifted_columns == ["tenure_days"]
    assert (summary.n_columns, summary.n_drifted_columns, summary.share_drifted) == (4, 1, 0.25)
    assert summary.dataset_drift is False  # 1 of 4 is below the preset's 50 % share
    assert summary.columns["top_category_slot"].method == "Jensen-Shannon distance"
    assert summary.empty_columns == {}


def test_dataset_drift_follows_the_share_of_drifted_columns(tmp_path):
    reference, current = _frame(1500, seed=1), _frame(1500, seed=2)
    current["tenure_days"] += 150
    current["top_category_slot"] = "category_slot_1"
    summary = build_drift_report(reference, current, html_path=tmp_path / "drift.html", columns=COLUMNS)
    assert set(summary.drifted_columns) == {"top_category_slot", "tenure_days"}
    assert summary.share_drifted == 0.5 and summary.dataset_drift is True
    stricter = build_drift_report(
        reference, current, html_path=tmp_path / "drift2.html", columns=COLUMNS, drift_share=0.75
    )
    assert stricter.dataset_drift is False


def test_report_is_written_without_subscriber_keys(tmp_path):
    reference, current = _frame(300, seed=1), _frame(300, seed=2)
    html_path = tmp_path / "reports" / "drift.html"
    summary = build_drift_report(
        reference, current, html_path=html_path, columns=["subscriber_key", "cutoff_at", *COLUMNS]
    )
    html = html_path.read_text(encoding="utf-8")
    assert summary.html_path == html_path and len(html) > 10_000 and "tenure_days" in html
    assert "subscriber_key" not in html and "key-1-0" not in html and "key-2-17" not in html
    assert set(summary.columns) == set(COLUMNS)


def test_large_inputs_are_sampled_deterministically(tmp_path):
    reference, current = _frame(3000, seed=1), _frame(2500, seed=2)
    first = build_drift_report(reference, current, html_path=tmp_path / "a.html", columns=COLUMNS, max_rows=1000)
    again = build_drift_report(reference, current, html_path=tmp_path / "b.html", columns=COLUMNS, max_rows=1000)
    assert (first.reference_rows, first.current_rows) == (1000, 1000)
    assert (first.reference_rows_available, first.current_rows_available) == (3000, 2500)
    assert first.columns == again.columns
    pd.testing.assert_frame_equal(sample_rows(reference, 1000, 0), sample_rows(reference, 1000, 0))
    assert len(sample_rows(reference, None, 0)) == 3000
    with pytest.raises(ValueError):
        sample_rows(reference, 0, 0)


def test_an_empty_column_is_reported_instead_of_crashing(tmp_path):
    reference, current = _frame(400, seed=1), _frame(400, seed=2)
    current["click_rate_30d"] = np.nan
    summary = build_drift_report(reference, current, html_path=tmp_path / "drift.html", columns=COLUMNS)
    assert summary.empty_columns == {"click_rate_30d": "current"}
    assert "click_rate_30d" not in summary.columns and summary.n_columns == 3
    with pytest.raises(ValueError, match="no column has values"):
        build_drift_report(reference, current, html_path=tmp_path / "x.html", columns=["click_rate_30d"])


def test_missing_columns_and_empty_frames_are_errors(tmp_path):
    reference = _frame(50, seed=1)
    with pytest.raises(ValueError, match=r"current frame lacks columns \['tenure_days'\]"):
        build_drift_report(
            reference, reference.drop(columns="tenure_days"), html_path=tmp_path / "d.html", columns=COLUMNS
        )
    with pytest.raises(ValueError, match="reference frame has no rows"):
        build_drift_report(reference.head(0), reference, html_path=tmp_path / "d.html", columns=COLUMNS)


def test_default_columns_cover_the_feature_contract(tmp_path):
    cutoffs = [pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-29")]
    rows = make_feature_rows(400, cutoffs, seed=3)
    reference, current = rows[rows["cutoff_at"] == cutoffs[0]], rows[rows["cutoff_at"] == cutoffs[1]]
    summary = build_drift_report(reference, current, html_path=tmp_path / "drift.html")
    assert set(summary.columns) | set(summary.empty_columns) == set(FEATURE_COLUMNS)
    metadata = summary.to_metadata()
    assert metadata["n_columns"] == len(FEATURE_COLUMNS) - len(summary.empty_columns)
    assert set(metadata["columns"]) == set(summary.columns)


def test_parse_drift_result_refuses_results_without_tests():
    result = {
        "metrics": [
            {
                "id": "a",
                "config": {"type": "evidently:metric_v2:DriftedColumnsCount"},
                "value": {"count": 0, "share": 0},
            },
            {
                "id": "b",
                "config": {
                    "type": "evidently:metric_v2:ValueDrift",
                    "column": "x",
                    "method": "K-S p_value",
                    "threshold": 0.05,
                },
                "value": 0.4,
            },
        ],
        "tests": [],
    }
    with pytest.raises(RuntimeError, match="no drift test result for column 'x'"):
        parse_drift_result(result)
    result["tests"] = [
        {"metric_config": {"metric_id": "a"}, "status": "SUCCESS"},
        {"metric_config": {"metric_id": "b"}, "status": "FAIL"},
    ]
    count, share, dataset_drift, columns = parse_drift_result(result)
    assert (count, share, dataset_drift) == (0, 0.0, False)
    assert columns["x"].drifted and columns["x"].method == "K-S p_value"


def _last_order_days_since(n: int, data_days: int, seed: int, rate_per_day: float = 1 / 60) -> pd.Series:
    """"Days since the last order" in a world that does not change, observed ``data_days``
    after the data begins: each person orders as a Poisson process with their own rate; the
    last order before the cutoff is seen only if it falls inside the data."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(2.0, rate_per_day / 2.0, size=n)
    gap = rng.exponential(1.0 / rates)  # memoryless: the time back to the last order
    return pd.Series(np.where(gap < data_days, np.floor(gap), np.nan))


def _recency_frames(reference_data_days: int, current_data_days: int, n: int = 4000):
    frames = []
    for seed, days in ((1, reference_data_days), (2, current_data_days)):
        frame = _frame(n, seed=seed)
        frame["days_since_last_order"] = _last_order_days_since(n, days, seed=seed + 10)
        frames.append(frame)
    return frames


def test_cap_recency_reads_none_and_long_gaps_as_the_longest_window():
    frame = pd.DataFrame({
        "days_since_last_order": [np.nan, 3.0, 90.0, 91.0, 400.0],
        "days_since_last_click": [1.0, np.nan, np.nan, 200.0, 0.0],
        "tenure_days": [500.0, 600.0, 700.0, 800.0, 900.0],
    })
    capped = cap_recency(frame)
    assert capped["days_since_last_order"].tolist() == [90.0, 3.0, 90.0, 90.0, 90.0]
    assert capped["days_since_last_click"].tolist() == [1.0, 90.0, 90.0, 90.0, 0.0]
    assert capped["tenure_days"].tolist() == [500.0, 600.0, 700.0, 800.0, 900.0]  # not a recency feature
    assert frame["days_since_last_order"].isna().sum() == 1  # the input is left as it was
    assert LONGEST_WINDOW_DAYS == 90
    assert RECENCY_FEATURES == ("days_since_last_order", "days_since_last_open", "days_since_last_click")


def test_the_calendar_alone_does_not_drift_recency(tmp_path):
    # The same unchanging world, seen 106 and 120 days after its data begins (the latest
    # training cutoff against today): raw, "days since the last order" drifts (the demo's
    # false alarm); capped at 90 days, it does not.
    reference, current = _recency_frames(106, 120)
    columns = ["days_since_last_order", "tenure_days"]
    raw = build_drift_report(reference, current, html_path=tmp_path / "raw.html", columns=columns, recency_cap_days=None)
    capped = build_drift_report(reference, current, html_path=tmp_path / "capped.html", columns=columns)
    assert raw.columns["days_since_last_order"].drifted
    assert raw.columns["days_since_last_order"].score > 0.12  # 0.149 measured
    assert not capped.columns["days_since_last_order"].drifted
    assert capped.columns["days_since_last_order"].score < 0.05  # 0.031 measured: sampling noise
    assert capped.drifted_columns == []


def test_a_real_change_in_recency_still_drifts_when_capped(tmp_path):
    # People stop buying: in today's frame a third of the recent buyers' last order is 40
    # days older. That happens inside the 90 days both frames observe, so it is caught.
    reference, current = _recency_frames(120, 120)
    recent = current["days_since_last_order"] < 50
    stopped = recent & (np.arange(len(current)) % 3 == 0)
    current.loc[stopped, "days_since_last_order"] += 40
    summary = build_drift_report(
        reference, current, html_path=tmp_path / "drift.html", columns=["days_since_last_order"]
    )
    assert summary.columns["days_since_last_order"].drifted
    assert summary.columns["days_since_last_order"].score > 0.1
