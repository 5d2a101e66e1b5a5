from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from ml.landing.contract import (
    LANDING_COLUMNS,
    MAX_TEXT_LENGTH,
    NUMERIC_COLUMNS,
    OPTIONAL_COLUMNS,
    LandingContractError,
    check_landing_folder,
)

DBT_PROJECT_YML = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"


def _write_contract_folder(folder, rows=2):
    # The required columns, and the order lines' amount (a line needs a value: an amount, or
    # a quantity and a unit price).
    for table, columns in {**LANDING_COLUMNS, "orders": (*LANDING_COLUMNS["orders"], "amount")}.items():
        pd.DataFrame(
            {c: [float(i) if c in NUMERIC_COLUMNS else f"{c}-{i}" for i in range(rows)] for c in columns}
        ).to_parquet(folder / f"{table}.parquet")


def test_complete_folder_reports_row_counts(tmp_path):
    _write_contract_folder(tmp_path, rows=3)
    assert check_landing_folder(tmp_path) == {table: 3 for table in LANDING_COLUMNS}


def test_missing_file_and_column_are_named(tmp_path):
    _write_contract_folder(tmp_path)
    (tmp_path / "orders.parquet").unlink()
    pd.DataFrame({"send_id": ["s"]}).to_parquet(tmp_path / "sends.parquet")
    with pytest.raises(LandingContractError) as error:
        check_landing_folder(tmp_path)
    assert "orders.parquet: file is missing" in str(error.value)
    assert "sends.parquet: missing columns ['campaign_id', 'esp_id', 'sent_at']" in str(error.value)


def test_epoch_integer_timestamps_are_refused_up_front_with_the_fix(tmp_path):
    # A type change in one file once quarantined every email event and lost 30 unsubscribes.
    _write_contract_folder(tmp_path)
    frame = pd.read_parquet(tmp_path / "email_events.parquet")
    frame["occurred_at"] = [1714564800, 1714564801]
    frame.to_parquet(tmp_path / "email_events.parquet")
    with pytest.raises(LandingContractError) as error:
        check_landing_folder(tmp_path)
    message = str(error.value)
    assert "email_events.parquet: column occurred_at has type int64" in message
    assert "Fix: export occurred_at as a string column" in message


def test_invalid_utf8_is_named_by_file_column_and_row_never_by_value(tmp_path):
    _write_contract_folder(tmp_path, rows=3)
    names = pa.array([b"Ann", b"\xff\xfeAnn\xe9", b"Bo"], type=pa.binary()).view(pa.string())
    table = pq.read_table(tmp_path / "crm_subscribers.parquet")
    table = table.set_column(table.schema.get_field_index("first_name"), "first_name", names)
    pq.write_table(table, tmp_path / "crm_subscribers.parquet")
    with pytest.raises(LandingContractError) as error:
        check_landing_folder(tmp_path)
    message = str(error.value)
    assert "crm_subscribers.parquet: column first_name, row 1 (0-based) is not valid UTF-8" in message
    assert "Ann" not in message and "\ufffd" not in message


def test_the_optional_crm_columns_may_be_left_out_or_carried_as_text(tmp_path):
    """timezone (v2), birth_year and gender (audit attributes) are optional: a CRM export
    without them is complete; when present they are held to the contract like any other column."""
    assert OPTIONAL_COLUMNS == {
        "crm_subscribers": ("timezone", "birth_year", "gender"), "esp_subscribers": ("timezone",),
        "orders": ("amount", "line_number", "quantity", "unit_price", "returns_order_id"),
    }
    _write_contract_folder(tmp_path, rows=3)
    assert "birth_year" not in pq.read_schema(tmp_path / "crm_subscribers.parquet").names
    assert check_landing_folder(tmp_path)["crm_subscribers"] == 3
    crm = pd.read_parquet(tmp_path / "crm_subscribers.parquet")
    crm["birth_year"] = ["1984", "", None]
    crm["gender"] = ["female", "", "Prefer not to say"]
    crm.to_parquet(tmp_path / "crm_subscribers.parquet")
    assert check_landing_folder(tmp_path)["crm_subscribers"] == 3
    # A typed year is refused up front like any other non-text column, with the fix.
    crm["birth_year"] = [1984, 1990, 2001]
    crm.to_parquet(tmp_path / "crm_subscribers.parquet")
    with pytest.raises(LandingContractError, match="column birth_year has type int64; the contract expects text"):
        check_landing_folder(tmp_path)
    # Bad bytes are named by column and row, never by value.
    crm["birth_year"] = ["1984", "", None]
    table = pa.Table.from_pandas(crm, preserve_index=False)
    genders = pa.array([b"female", b"m\xe4nnlich\xff", b""], type=pa.binary()).view(pa.string())
    table = table.set_column(table.schema.get_field_index("gender"), "gender", genders)
    pq.write_table(table, tmp_path / "crm_subscribers.parquet")
    with pytest.raises(LandingContractError, match="column gender, row 1 \\(0-based\\) is not valid UTF-8"):
        check_landing_folder(tmp_path)


def test_dbt_reads_the_same_text_limits_and_numeric_columns():
    dbt_vars = yaml.safe_load(DBT_PROJECT_YML.read_text())["vars"]
    assert dbt_vars["max_text_length"] == MAX_TEXT_LENGTH
    assert tuple(dbt_vars["landing_numeric_columns"]) == NUMERIC_COLUMNS
    assert {t: tuple(c) for t, c in dbt_vars["landing_optional_columns"].items()} == OPTIONAL_COLUMNS


def test_long_text_is_clipped_before_expectations_and_still_reads_as_too_long():
    import time

    from ml.landing.contract import clip_long_text
    from ml.quality import validate_table

    frame = pd.DataFrame({
        "consent_event_id": ["a", "b"], "source_system": ["crm", "esp"], "source_subscriber_id": ["C1", "E1"],
        "status": ["subscribed", "subscribed"], "recorded_at": ["2024-01-01 00:00:00"] * 2,
        "consent_source": ["signup_form"] * 2, "proof": ["ok", "p" * 1_000_000],
    })
    clipped = clip_long_text(frame, "consent_events")
    assert clipped["proof"].str.len().tolist() == [2, 2049]
    assert frame["proof"].str.len().tolist() == [2, 1_000_000]  # the input is not changed
    started = time.monotonic()
    validate_table(clipped, Path(__file__).resolve().parents[2] / "expectations" / "consent_events.json",
                   table_name="consent_events")
    assert time.monotonic() - started < 30


def test_duckdb_reads_a_landing_file_as_the_clipped_frame_with_its_optional_columns(tmp_path):
    """The landing suites run in DuckDB on `landing_file_select`; it must show GX what the
    pandas twin (clip_long_text + with_optional_columns) shows."""
    import duckdb

    from ml.landing.contract import clip_long_text, landing_file_select, with_optional_columns

    frame = pd.DataFrame({
        "crm_id": ["C1", "C2", None], "email": ["a@example.com", "e" * 5000, None],
        "first_name": ["Ann", "n" * 300, ""], "signup_at": ["2024-01-01 00:00:00"] * 3,
        "country": ["DE", "FR", None], "gender": ["f", None, "x" * 10_000], "shoe_size": [41, 42, 43],
    })
    path = tmp_path / "it's crm_subscribers.parquet"  # a quote in the path is escaped
    frame.to_parquet(path, index=False)
    read = duckdb.sql(landing_file_select(path, "crm_subscribers")).df()
    twin = with_optional_columns(clip_long_text(frame, "crm_subscribers"), "crm_subscribers")
    assert list(read.columns) == list(twin.columns)  # timezone and birth_year added as nulls
    assert read["email"].str.len().tolist()[:2] == [13, MAX_TEXT_LENGTH["email"] + 1]
    assert read["first_name"].str.len().tolist() == [3, MAX_TEXT_LENGTH["default"] + 1, 0]
    assert read["shoe_size"].tolist() == [41, 42, 43]  # not a contract column: as the file has it
    pd.testing.assert_frame_equal(read, twin.astype(read.dtypes.to_dict()), check_dtype=False)


# -- daily drops ------------------------------------------------------------------------------


def _write_drop(folder, tables, rows=2):
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        columns = LANDING_COLUMNS[table]
        pd.DataFrame(
            {c: [float(i) if c in NUMERIC_COLUMNS else f"{c}-{i}" for i in range(rows)] for c in columns}
        ).to_parquet(folder / f"{table}.parquet")


def test_drops_with_any_subset_of_tables_are_counted_up_to_as_of(tmp_path):
    from datetime import date

    from ml.landing.contract import drop_days, landing_files

    _write_contract_folder(tmp_path, rows=3)
    _write_drop(tmp_path / "drops" / "2026-07-01", ["sends", "email_events"], rows=2)
    _write_drop(tmp_path / "drops" / "2026-07-02", ["sends", "crm_subscribers"], rows=5)
    (tmp_path / "drops" / "2026-07-02" / "_manifest.json").write_text('{"extracted_at": "2026-07-02 23:59:59"}')
    (tmp_path / "drops" / ".DS_Store").write_text("")
    counts = check_landing_folder(tmp_path)
    assert counts == {**{table: 3 for table in LANDING_COLUMNS}, "sends": 10, "email_events": 5, "crm_subscribers": 8}
    assert check_landing_folder(tmp_path, as_of=date(2026, 7, 1))["sends"] == 5
    assert drop_days(tmp_path) == [date(2026, 7, 1), date(2026, 7, 2)]
    assert [f.name for f in landing_files(tmp_path, as_of=date(2026, 7, 1)) if f.table == "sends"] == [
        "sends.parquet", "drops/2026-07-01/sends.parquet"
    ]


def test_a_drop_file_is_held_to_the_same_contract_and_named_by_its_path(tmp_path):
    from datetime import date

    _write_contract_folder(tmp_path)
    _write_drop(tmp_path / "drops" / "2026-07-03", ["email_events", "orders"])
    frame = pd.read_parquet(tmp_path / "drops" / "2026-07-03" / "email_events.parquet")
    frame["occurred_at"] = [1714564800, 1714564801]
    frame.to_parquet(tmp_path / "drops" / "2026-07-03" / "email_events.parquet")
    pd.DataFrame({"order_id": ["o"]}).to_parquet(tmp_path / "drops" / "2026-07-03" / "orders.parquet")
    # A drop after as_of is checked too: dbt opens every drop file.
    with pytest.raises(LandingContractError) as error:
        check_landing_folder(tmp_path, as_of=date(2026, 7, 1))
    message = str(error.value)
    assert "drops/2026-07-03/email_events.parquet: column occurred_at has type int64" in message
    assert "drops/2026-07-03/orders.parquet: missing columns ['crm_id', 'product_id'," in message


@pytest.mark.parametrize("name", ["2026-7-3", "latest", "2026-02-30", ".2026-07-03.partial"])
def test_a_drop_folder_that_is_not_a_day_is_named_with_the_fix(tmp_path, name):
    _write_contract_folder(tmp_path)
    _write_drop(tmp_path / "drops" / "2026-07-01", ["sends"])
    _write_drop(tmp_path / "drops" / name, ["sends"])
    with pytest.raises(LandingContractError) as error:
        check_landing_folder(tmp_path)
    message = str(error.value)
    assert f"drops/{name}: a folder in drops/ that is not a drop folder" in message
    assert "YYYY-MM-DD (e.g. drops/2026-07-03/). Fix: rename it" in message
    assert "drops/2026-07-01" not in message


def test_a_stray_copy_of_a_table_anywhere_below_the_folder_is_refused(tmp_path):
    _write_contract_folder(tmp_path)
    _write_drop(tmp_path / "archive", ["orders"])
    _write_drop(tmp_path / "drops" / "2026-07-01" / "retry", ["sends"])
    (tmp_path / "drops" / "2026-07-01" / "order.parquet").write_bytes(b"")
    with pytest.raises(LandingContractError) as error:
        check_landing_folder(tmp_path)
    message = str(error.value)
    assert "archive/orders.parquet: dbt reads every orders.parquet below the landing folder" in message
    assert "drops/2026-07-01/retry/sends.parquet: dbt reads every sends.parquet" in message
    assert "drops/2026-07-01/order.parquet: not a landing table" in message


@pytest.mark.parametrize(
    "manifest, expected",
    [
        ('{"extracted_at": "2026-07-02 23:59:59"}', "extracted_at 2026-07-02 23:59:59 is not on the drop's day 2026-07-01"),
        ("not json", "drops/2026-07-01/_manifest.json: not a manifest"),
        ('{"extracted": "2026-07-01"}', "drops/2026-07-01/_manifest.json: not a manifest"),
    ],
)
def test_a_drop_manifest_must_be_of_its_day(tmp_path, manifest, expected):
    _write_contract_folder(tmp_path)
    _write_drop(tmp_path / "drops" / "2026-07-01", ["sends"])
    (tmp_path / "drops" / "2026-07-01" / "_manifest.json").write_text(manifest)
    with pytest.raises(LandingContractError, match=expected):
        check_landing_folder(tmp_path)
