"""Audit attributes: the optional CRM columns birth_year and gender (docs/data_contract.md)
on their way to marts.subscriber_profiles as age_band and gender.

The compiled project is replayed in memory (tests/dbt/compiled_sql.py, as_of 2024-06-30) on
the two-person world of tests/dbt/landing_builder.py (pat: CRM c1 + ESP e1; quinn: ESP only),
whose CRM export has neither column, as a user's own export may not.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.landing.contract import LANDING_COLUMNS, OPTIONAL_COLUMNS
from ml.privacy import subscriber_key
from tests.dbt.conftest import TEST_SECRET
from tests.dbt.landing_builder import PEOPLE, base_landing, write_landing

PAT, QUINN = (subscriber_key(PEOPLE[handle], TEST_SECRET) for handle in ("pat", "quinn"))
ROBIN = subscriber_key("robin.example@example.com", TEST_SECRET)
AUDIT_COLUMNS = ("birth_year", "gender")
MODELS = ["subscriber_profiles"]


def write_crm(path: Path, rows: list[dict]) -> None:
    """A crm_subscribers file with the contract's columns plus the audit columns (all text)."""
    columns = [*LANDING_COLUMNS["crm_subscribers"], *OPTIONAL_COLUMNS["crm_subscribers"]]
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in columns])), path)


def pat_crm(**audit) -> dict:
    return {**base_landing()["crm_subscribers"][0], **audit}


def profiles(connection) -> dict[str, tuple[str, str]]:
    rows = connection.execute("select subscriber_key, age_band, gender from marts.subscriber_profiles").fetchall()
    return {key: (age_band, gender) for key, age_band, gender in rows}


def test_a_crm_export_without_the_audit_columns_builds_and_reads_them_as_unknown(compiled_project) -> None:
    write_landing(compiled_project.landing_dir, base_landing())
    names = pq.read_schema(compiled_project.landing_dir / "crm_subscribers.parquet").names
    assert not set(AUDIT_COLUMNS) & set(names)
    connection = compiled_project.run(MODELS)
    assert profiles(connection) == {PAT: ("unknown", "unknown"), QUINN: ("unknown", "unknown")}


def test_the_audit_columns_become_an_age_band_at_as_of_and_a_gender(compiled_project) -> None:
    landing = base_landing()
    write_landing(compiled_project.landing_dir, landing)
    robin = {**pat_crm(), "crm_id": "C00000002", "email": "robin.example@example.com", "first_name": "Robin"}
    write_crm(compiled_project.landing_dir / "crm_subscribers.parquet", [
        pat_crm(birth_year=" 1990 ", gender="F"),
        # Malformed values read as unknown; they never quarantine the person.
        {**robin, "birth_year": "19x0", "gender": "robot"},
    ])
    connection = compiled_project.run([*MODELS, "quarantined_subscribers"])
    assert profiles(connection) == {
        PAT: ("25-34", "female"),  # 2024 - 1990 = 34
        QUINN: ("unknown", "unknown"),  # ESP only: the ESP exports neither
        ROBIN: ("unknown", "unknown"),
    }
    assert connection.execute(
        "select count(*) from pii.main.quarantined_subscribers").fetchone() == (0,)
    # The birth year itself stays in the vault: no table outside it has the column.
    outside_vault = connection.execute(
        "select table_catalog, table_schema, table_name from information_schema.columns "
        "where column_name = 'birth_year' and table_catalog <> 'pii'"
    ).fetchall()
    assert outside_vault == []


def test_a_drop_may_carry_the_audit_columns_the_initial_export_lacks(compiled_project) -> None:
    """The files of one table are read with union_by_name: a column only some files have is
    null in the others' rows. Here pat's record, exported again by a drop, gains them."""
    write_landing(compiled_project.landing_dir, base_landing(), drops={"2024-06-01": {"sends": []}})
    drop = compiled_project.landing_dir / "drops" / "2024-06-01" / "crm_subscribers.parquet"
    write_crm(drop, [pat_crm(birth_year="1960", gender="Male", signup_at="2024-01-10 09:00:00")])
    connection = compiled_project.run(MODELS)
    assert profiles(connection) == {PAT: ("55-64", "male"), QUINN: ("unknown", "unknown")}


def test_the_audit_attributes_are_never_model_or_send_plan_inputs() -> None:
    """The feature marts hold exactly these lists (test_feature_marts_follow_the_feature_contract),
    and the send plan reads only PROFILE_INPUT from the profiles: none names an audit attribute."""
    from ml.decisioning.send_plan import PROFILE_INPUT
    from ml.propensity.features import FEATURE_COLUMNS, ID_COLUMNS, LABEL_COLUMNS, SEGMENT_COLUMNS

    inputs = {*ID_COLUMNS, *FEATURE_COLUMNS, *SEGMENT_COLUMNS, *LABEL_COLUMNS, *PROFILE_INPUT}
    assert not {"birth_year", "age_band", "gender"} & inputs
