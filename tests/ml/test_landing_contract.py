import pandas as pd
import pytest

from ml.landing_contract import LANDING_COLUMNS, LandingContractError, check_landing_folder


def _write_contract_folder(folder, rows=2):
    for table, columns in LANDING_COLUMNS.items():
        pd.DataFrame({c: [f"{c}-{i}" for i in range(rows)] for c in columns}).to_parquet(folder / f"{table}.parquet")


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
