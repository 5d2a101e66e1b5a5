import pandas as pd

from ml.landing.health import row_shape, systemic_breakages, value_shape


def test_value_shape_keeps_format_and_drops_content():
    assert value_shape("2024-05-01T12:00+02:00") == "9999-99-99A99:99+99:99"
    assert value_shape("Ann.Smith@example.com") == "Aaa.Aaaaa@aaaaaaa.aaa"
    assert value_shape(1714564800) == "9999999999"
    assert value_shape("x" * 100).endswith("... (100 characters)")


def test_row_shape_shapes_every_field():
    assert row_shape('{"event_id": "V1", "occurred_at": "1714564800"}') == "{event_id: A9, occurred_at: 9999999999}"


def _counts(rows):
    return pd.DataFrame(rows, columns=["source_file", "rows_in", "reason_code", "rows", "example_raw_values"])


def test_a_file_over_the_share_is_named_with_its_dominant_reason_and_a_shape():
    counts = _counts([
        ("email_events", 100, None, 10, None),
        ("email_events", 100, "unparseable_timestamp", 88, '{"occurred_at": "1714564800"}'),
        ("email_events", 100, "exact_duplicate", 2, '{"occurred_at": "2024-05-01 00:00:00"}'),
        ("orders", 200, None, 195, None),
        ("orders", 200, "invalid_amount", 5, '{"amount": "abc"}'),
    ])
    found = systemic_breakages(counts, max_share=0.05)
    assert [(b.source_file, b.rows_quarantined, b.dominant_reason, b.dominant_reason_rows) for b in found] == [
        ("email_events", 90, "unparseable_timestamp", 88)
    ]
    message = found[0].message()
    assert "90 of 100 rows (90.0%)" in message and "{occurred_at: 9999999999}" in message
    assert "1714564800" not in message


def test_exactly_at_the_share_passes():
    counts = _counts([("orders", 100, None, 95, None), ("orders", 100, "invalid_amount", 5, '{"amount": "x"}')])
    assert systemic_breakages(counts, max_share=0.05) == []
    assert len(systemic_breakages(counts, max_share=0.049)) == 1


def _batch_counts(rows):
    return pd.DataFrame(rows, columns=["source_file", "landing_batch", "reason_code", "rows", "example_raw_values"])


def test_a_broken_drop_is_named_by_its_file_even_when_the_initial_export_drowns_it():
    counts = _batch_counts([
        ("email_events", "initial", None, 10_000, None),
        ("email_events", "initial", "exact_duplicate", 50, '{"occurred_at": "2024-05-01 00:00:00"}'),
        ("email_events", "2026-07-03", None, 20, None),
        ("email_events", "2026-07-03", "unparseable_timestamp", 180, '{"occurred_at": "1714564800"}'),
    ])
    found = systemic_breakages(counts, max_share=0.05)
    assert [(b.source_file, b.landing_batch, b.rows_in, b.rows_quarantined) for b in found] == [
        ("email_events", "2026-07-03", 200, 180)
    ]
    assert found[0].message().startswith("drops/2026-07-03/email_events.parquet: 180 of 200 rows (90.0%)")


def test_a_small_drop_with_one_bad_row_is_not_a_format_change_but_a_file_over_the_share_is():
    counts = _batch_counts([
        ("consent_events", "initial", None, 1_000, None),
        ("consent_events", "2026-07-03", None, 11, None),
        ("consent_events", "2026-07-03", "unknown_consent_status", 1, '{"status": "maybe"}'),
        ("orders", "initial", None, 100, None),
        ("orders", "initial", "invalid_amount", 30, '{"amount": "abc"}'),
        ("orders", "2026-07-03", None, 10, None),
    ])
    found = systemic_breakages(counts, max_share=0.05, min_batch_rows=100)
    assert [(b.source_file, b.landing_batch) for b in found] == [("orders", None), ("orders", "initial")]
    assert found[0].message().startswith("orders: 30 of 140 rows")
    assert found[1].message().startswith("orders.parquet: 30 of 130 rows")


def test_breakage_rows_are_the_breakages_as_a_typed_table_even_when_there_is_none():
    from ml.landing.health import BREAKAGE_COLUMNS, breakage_rows

    counts = pd.DataFrame({
        "source_file": ["orders"] * 3, "landing_batch": ["initial", "initial", "2026-07-01"],
        "reason_code": [None, "invalid_amount", "invalid_amount"], "rows": [900, 10, 150],
        "example_raw_values": [None, '{"amount": "abc"}', '{"amount": "x1"}'],
    })
    table = breakage_rows(counts, max_share=0.05)
    # Pooled: 160 of 1,060 (15%); the drop alone: 150 of 150; the initial export: 10 of 910 (1%).
    assert table[["file_name", "rows_in", "rows_quarantined", "dominant_reason_rows"]].values.tolist() == [
        ["orders", 1060, 160, 160], ["drops/2026-07-01/orders.parquet", 150, 150, 150],
    ]
    assert table["message"].tolist() == [b.message() for b in systemic_breakages(counts, max_share=0.05)]
    assert "{amount: aaa}" in table["message"].iloc[0] and "abc" not in "".join(table["message"])
    empty = breakage_rows(counts, max_share=1.0)
    assert empty.empty and dict(empty.dtypes.astype(str)) == BREAKAGE_COLUMNS
