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
    LandingContractError,
    check_landing_folder,
)

DBT_PROJECT_YML = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"


def _write_contract_folder(folder, rows=2):
    for table, columns in LANDING_COLUMNS.items():
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


def test_dbt_reads_the_same_text_limits_and_numeric_columns():
    dbt_vars = yaml.safe_load(DBT_PROJECT_YML.read_text())["vars"]
    assert dbt_vars["max_text_length"] == MAX_TEXT_LENGTH
    assert tuple(dbt_vars["landing_numeric_columns"]) == NUMERIC_COLUMNS


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
