"""Landing timestamps: ISO-8601 in UTC, with `Z`, or with an offset that staging converts to UTC."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.dbt.landing_builder import base_landing, write_landing


@pytest.mark.parametrize(
    "ordered_at, expected",
    [
        ("2024-03-05 12:00:00", datetime(2024, 3, 5, 12, 0)),
        ("2024-03-05T12:00:00Z", datetime(2024, 3, 5, 12, 0)),
        ("2024-03-05T12:00:00+00:00", datetime(2024, 3, 5, 12, 0)),
        ("2024-03-05T13:30:00+01:30", datetime(2024, 3, 5, 12, 0)),
        ("2024-03-05 07:00:00-0500", datetime(2024, 3, 5, 12, 0)),
        ("2024-03-06T01:00:00+13", datetime(2024, 3, 5, 12, 0)),
        ("2024-03-05T12:00:00.250+00:00", datetime(2024, 3, 5, 12, 0, 0, 250000)),
    ],
)
def test_an_order_timestamp_with_or_without_an_offset_is_staged_in_utc(compiled_project, ordered_at, expected) -> None:
    landing = base_landing()
    landing["orders"][0]["ordered_at"] = ordered_at
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["stg_crm__orders"])
    assert connection.execute("select ordered_at, row_issue from staging.stg_crm__orders").fetchall() == [(expected, None)]


@pytest.mark.parametrize(
    "ordered_at",
    ["2024-03-05 12:00", "2024-02-30T12:00:00+01:00", "2024-03-05T12:00:00+25:00", "2024-03-05T12:00:00 CET",
     "05/03/2024 12:00:00", "1709640000"],
)
def test_a_timestamp_outside_iso_8601_is_quarantined_as_unparseable(compiled_project, ordered_at) -> None:
    landing = base_landing()
    landing["orders"][0]["ordered_at"] = ordered_at
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["stg_crm__orders"])
    assert connection.execute("select ordered_at, row_issue from staging.stg_crm__orders").fetchall() == [
        (None, "unparseable_timestamp")
    ]
