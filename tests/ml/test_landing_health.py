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
