"""The dbt project, built end to end on the tiny hand-made landing folder.

`dbt build` itself runs every data test and unit test of the project; these tests check the
build succeeded and then assert the fixture's known answers against the warehouse.
"""

from __future__ import annotations

import json
import shutil
import math
import re
import os
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from ml.propensity.features import FEATURE_COLUMNS, ID_COLUMNS, LABEL_COLUMNS, SEGMENT_COLUMNS
from ml.privacy import DEVELOPMENT_ONLY_SECRET, subscriber_key
from ml.vocabulary import REASON_CODES
from tests.dbt.conftest import DBT_PROJECT_DIR, TEST_SECRET, DbtBuild

# The tiny fixture has a row of every reason code but value_too_long (tests/dbt/test_consent_fails_closed.py
# and tests/test_hostile_landing.py cover that one).
ALL_REASON_CODES = set(REASON_CODES) - {"value_too_long"}


def key_of(dbt_build: DbtBuild, handle: str) -> str:
    return subscriber_key(dbt_build.expected["people"][handle], TEST_SECRET)


def test_build_succeeds_and_runs_data_and_unit_tests(dbt_build: DbtBuild) -> None:
    failures = [(r["unique_id"], r["status"], r["message"]) for r in dbt_build.result.results if r["status"] not in ("success", "pass")]
    assert failures == []
    assert dbt_build.result.success
    kinds = {r["unique_id"].split(".")[0] for r in dbt_build.result.results}
    assert {"model", "test", "unit_test", "seed"} <= {str(kind) for kind in kinds}


def test_every_landing_row_is_staged_or_quarantined(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        rows = conn.execute(
            "select source_file, rows_in, rows_staged, rows_quarantined, is_conserved from quality.landing_reconciliation"
        ).fetchall()
    reconciliation = {file: (rows_in, staged, quarantined, conserved) for file, rows_in, staged, quarantined, conserved in rows}
    assert set(reconciliation) == set(dbt_build.expected["rows_per_file"])
    quarantined_per_file: dict[str, int] = {}
    for file, _ in dbt_build.expected["expected_reasons"]:
        quarantined_per_file[file] = quarantined_per_file.get(file, 0) + 1
    for file, rows_in in dbt_build.expected["rows_per_file"].items():
        got_in, staged, quarantined, conserved = reconciliation[file]
        assert got_in == rows_in, file
        assert quarantined == quarantined_per_file.get(file, 0), file
        assert staged + quarantined == rows_in, file
        assert conserved is True, file


def test_every_expected_reason_code_is_found_at_its_row(dbt_build: DbtBuild) -> None:
    query = """
        select source_file, source_row_key, reason_code from quality.quarantine_rows
        union all
        select source_file, source_row_key, reason_code from pii.quarantined_subscribers
    """
    with dbt_build.connect(attach_vault=True) as conn:
        found = {(file, row): code for file, row, code in conn.execute(query).fetchall()}
    assert found == dbt_build.expected["expected_reasons"]
    assert set(found.values()) == ALL_REASON_CODES


def test_quarantined_rows_keep_their_raw_values(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        raw = conn.execute(
            "select raw_values from quality.quarantine_rows where source_file = 'orders' and source_row_key = 6"
        ).fetchone()[0]
    assert json.loads(raw) == {
        "order_id": "o7",
        "crm_id": "c1",
        "product_id": "p1",
        "ordered_at": "2024-03-06 12:00:00",
        "amount": "NaN",
        "currency": "USD",
        # The optional order-line columns of contract v2, absent from this v1 file.
        "line_number": None,
        "quantity": None,
        "unit_price": None,
        "returns_order_id": None,
    }


def test_records_of_one_person_resolve_to_one_canonical_subscriber(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        subscribers = dict(conn.execute("select subscriber_key, source_systems from intermediate.int_subscribers_unified").fetchall())
        crosswalk = {
            (system, source_id): key
            for system, source_id, key in conn.execute(
                "select source_system, source_id, subscriber_key from marts.subscriber_identity_crosswalk"
            ).fetchall()
        }
    expected_keys = {key_of(dbt_build, handle) for handle in dbt_build.expected["people"]}
    assert set(subscribers) == expected_keys
    alice = key_of(dbt_build, "alice")
    assert crosswalk[("crm", "c1")] == crosswalk[("crm", "c9")] == crosswalk[("esp", "e1")] == alice
    assert subscribers[alice] == "crm+esp"
    assert crosswalk[("crm", "c2")] == crosswalk[("esp", "e2")] == key_of(dbt_build, "bart")
    assert len(crosswalk) == 4 + 9  # valid CRM and ESP records


def test_no_pii_in_any_table_of_the_main_warehouse(dbt_build: DbtBuild) -> None:
    needles = [value.lower() for value in dbt_build.expected["pii_strings"]]
    pattern = "|".join(re.escape(needle) for needle in needles)

    def tables_with_pii(conn, catalog: str) -> list[str]:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = ?", [catalog]
        ).fetchall()
        assert tables, f"no tables found in {catalog}"
        hits = []
        for schema, table in tables:
            count = conn.execute(
                f'select count(*) from "{catalog}"."{schema}"."{table}" as t '
                "where regexp_matches(lower(cast(to_json(t) as varchar)), ?)",
                [pattern],
            ).fetchone()[0]
            if count:
                hits.append(f"{schema}.{table}")
        return hits

    with dbt_build.connect(attach_vault=True) as conn:
        main_catalog = conn.execute("select current_database()").fetchone()[0]
        assert tables_with_pii(conn, main_catalog) == []
        # The same scan does find the PII where it belongs.
        assert {"main.subscriber_vault", "main.quarantined_subscribers"} <= set(tables_with_pii(conn, "pii"))


def test_no_pii_in_the_main_warehouse_file_bytes(dbt_build: DbtBuild) -> None:
    def leaked(path) -> list[str]:
        data = path.read_bytes()
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            data += wal.read_bytes()
        return [
            value
            for value in dbt_build.expected["pii_strings"]
            if value.encode() in data or value.lower().encode() in data
        ]

    assert leaked(dbt_build.warehouse_path) == []
    # Control: the vault file holds them in a form this scan can see, all but the erased
    # person's (test_erasure_removes_email_and_name_from_every_vault_table).
    erased = set(dbt_build.expected["erased_pii_strings"])
    assert erased and set(leaked(dbt_build.vault_path)) == set(dbt_build.expected["pii_strings"]) - erased


def test_erasure_removes_email_and_name_from_every_vault_table(dbt_build: DbtBuild) -> None:
    erased = dbt_build.expected["erased_pii_strings"]
    with dbt_build.connect(attach_vault=True) as conn:
        relations = conn.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'pii'"
        ).fetchall()
        holding = {
            f"{schema}.{table}": value
            for schema, table in relations
            for value in erased
            if conn.execute(
                f"select count(*) from pii.{schema}.{table} t where contains(lower(cast(t as varchar)), lower(?))",
                [value],
            ).fetchone()[0]
        }
        # Control: the same query finds a person who was not erased.
        kept = conn.execute(
            "select count(*) from pii.main.subscriber_vault t where contains(lower(cast(t as varchar)), ?)",
            [dbt_build.expected["people"]["cordelia"]],
        ).fetchone()[0]
    assert len(relations) >= 3
    assert holding == {}
    assert kept == 1
    data = dbt_build.vault_path.read_bytes()
    assert [value for value in erased if value.encode() in data or value.lower().encode() in data] == []


def test_eligibility_reasons(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        rows = conn.execute("select subscriber_key, is_eligible, exclusion_reason, as_of from marts.subscriber_eligibility").fetchall()
    by_key = {key: (eligible, reason, as_of) for key, eligible, reason, as_of in rows}
    assert len(by_key) == len(dbt_build.expected["people"])
    for handle, reason in dbt_build.expected["expected_exclusions"].items():
        eligible, got_reason, as_of = by_key[key_of(dbt_build, handle)]
        assert (handle, got_reason, eligible) == (handle, reason, reason is None)
        assert str(as_of) == dbt_build.expected["extracted_at"]


def test_vault_holds_every_subscriber_but_the_erased_one(dbt_build: DbtBuild) -> None:
    with dbt_build.connect(attach_vault=True) as conn:
        vault = dict(conn.execute("select email, first_name from pii.subscriber_vault").fetchall())
    people = dbt_build.expected["people"]
    assert set(vault) == {email for handle, email in people.items() if handle != "eulalia"}
    assert vault[people["alice"]] == "Zephyrine"


def test_feature_marts_follow_the_feature_contract(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        training = [row[0] for row in conn.execute("describe marts.training_examples").fetchall()]
        scoring = [(row[0], row[1]) for row in conn.execute("describe marts.scoring_features").fetchall()]
        scoring_rows = conn.execute("select count(*), min(cutoff_at), max(cutoff_at) from marts.scoring_features").fetchone()
    assert training == [*ID_COLUMNS, *FEATURE_COLUMNS, *SEGMENT_COLUMNS, *LABEL_COLUMNS]
    assert [name for name, _ in scoring] == [*ID_COLUMNS, *FEATURE_COLUMNS]
    assert all(kind == "DOUBLE" for name, kind in scoring if name not in ("subscriber_key", "cutoff_at", "top_category_slot"))
    assert scoring_rows[0] == len(dbt_build.expected["people"])
    assert str(scoring_rows[1]) == str(scoring_rows[2]) == dbt_build.expected["extracted_at"]


def test_training_examples_cover_weekly_cutoffs_for_every_subscriber(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        rows, cutoffs, first, last = conn.execute(
            "select count(*), count(distinct cutoff_at), min(cutoff_at), max(cutoff_at) from marts.training_examples"
        ).fetchone()
    assert cutoffs == dbt_build.expected["expected_training_cutoffs"]
    assert rows == cutoffs * len(dbt_build.expected["people"])
    assert (str(first), str(last)) == ("2024-03-31 00:00:00", "2024-06-16 00:00:00")


def test_training_features_at_a_cutoff_ignore_events_at_or_after_it(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        cursor = conn.execute(
            "select * from marts.training_examples where subscriber_key = ? and cutoff_at = cast(? as timestamp)",
            [key_of(dbt_build, "alice"), dbt_build.expected["alice_cutoff"]],
        )
        rows = cursor.fetchall()
        names = [column[0] for column in cursor.description]
    assert len(rows) == 1
    row = dict(zip(names, rows[0]))
    for column, expected in dbt_build.expected["alice_features"].items():
        if isinstance(expected, str):
            assert row[column] == expected, column
        else:
            assert math.isclose(row[column], expected, rel_tol=1e-9, abs_tol=1e-9), (column, row[column], expected)
    for column, expected in dbt_build.expected["alice_labels"].items():
        assert row[column] == expected, column


def test_no_training_row_counts_an_order_or_click_from_its_own_label_window(dbt_build: DbtBuild) -> None:
    """Recompute order and click counts from the facts for every training row."""
    query = """
        select count(*)
        from marts.training_examples as t
        where t.orders_total <> (
                select count(*) from marts.fct_orders o
                where o.subscriber_key = t.subscriber_key and o.ordered_at < t.cutoff_at
            )
            or t.clicks_90d <> (
                select count(*) from marts.fct_email_events e
                where e.subscriber_key = t.subscriber_key and e.event_type = 'click'
                    and e.occurred_at < t.cutoff_at and e.occurred_at >= t.cutoff_at - interval 90 day
            )
            or t.label_purchase_14d <> (
                select count(*) > 0 from marts.fct_orders o
                where o.subscriber_key = t.subscriber_key
                    and o.ordered_at >= t.cutoff_at and o.ordered_at < t.cutoff_at + interval 14 day
            )::integer
    """
    with dbt_build.connect() as conn:
        mismatches = conn.execute(query).fetchone()[0]
        orders_in_windows = conn.execute("select sum(label_purchase_14d) from marts.training_examples").fetchone()[0]
    assert mismatches == 0
    assert orders_in_windows > 0  # the check above is not vacuous


def test_hillstrom_arm_outcomes_of_the_fixture_file(dbt_build: DbtBuild) -> None:
    with dbt_build.connect() as conn:
        arms = {row[0]: row[1:] for row in conn.execute("select * from experiments.hillstrom_arm_outcomes").fetchall()}
    assert arms == {
        "Mens E-Mail": (2, 0.5, 0.0, 0.0),
        "Womens E-Mail": (2, 0.5, 0.5, 14.995),
        "No E-Mail": (2, 0.5, 0.0, 0.0),
    }


NEW_EVENTS = pd.DataFrame(
    [("ev_new1", "sa6", "e1", "open", "2024-06-28 09:00:00"), ("ev_new2", "sa6", "e1", "click", "2024-06-28 09:05:00")],
    columns=["event_id", "send_id", "esp_id", "event_type", "occurred_at"],
)
FACT_ROWS = "select event_id, send_id, subscriber_key, event_type, campaign_category, occurred_at from marts.fct_email_events"


def test_incremental_run_inserts_only_a_new_batch_and_a_rerun_replaces_it_exactly(dbt_build: DbtBuild, tmp_path) -> None:
    # A copy of the finished build, so the shared one stays as the other tests expect it.
    shutil.copytree(dbt_build.landing_dir, tmp_path / "landing")
    shutil.copytree(dbt_build.warehouse_path.parent, tmp_path / "state")
    build = DbtBuild(dbt_build.result, tmp_path, tmp_path / "landing", tmp_path / "state" / "warehouse.duckdb",
                     tmp_path / "state" / "pii_vault.duckdb", dbt_build.expected)
    with build.connect() as conn:
        before = conn.execute(FACT_ROWS).df()
    # Mark every row older than the lookback window: a run that re-processed it would
    # overwrite the mark with the landing value. The mark goes in a free-text column:
    # event_type's CHECK constraint would refuse it.
    lookback_start = before["occurred_at"].max() - pd.Timedelta(days=3)
    with duckdb.connect(str(build.warehouse_path)) as conn:
        conn.execute("update marts.fct_email_events set campaign_category = 'untouched' where occurred_at < ?", [lookback_start])
    landed = pd.read_parquet(build.landing_dir / "email_events.parquet")
    pd.concat([landed, NEW_EVENTS.astype(landed.dtypes[NEW_EVENTS.columns].to_dict())], ignore_index=True).to_parquet(
        build.landing_dir / "email_events.parquet", index=False
    )

    assert build.invoke("run", "--select", "+fct_email_events").success
    with build.connect() as conn:
        after = conn.execute(FACT_ROWS).df()
    assert set(after["event_id"]) == set(before["event_id"]) | {"ev_new1", "ev_new2"}
    assert len(after) == len(before) + 2
    # Rows older than the lookback window kept their mark; the window was re-read from landing.
    is_old = after["occurred_at"] < lookback_start
    assert is_old.sum() >= 10
    assert (after.loc[is_old, "campaign_category"] == "untouched").all()
    assert (after.loc[~is_old, "campaign_category"] != "untouched").all()

    assert build.invoke("run", "--select", "fct_email_events").success
    with build.connect() as conn:
        rerun = conn.execute(FACT_ROWS).df()
    pd.testing.assert_frame_equal(
        rerun.sort_values("event_id", ignore_index=True), after.sort_values("event_id", ignore_index=True)
    )
    compiled = (tmp_path / "target" / "run" / "email_pipeline" / "models" / "marts" / "core" / "fct_email_events.sql").read_text()
    assert "delete from" in compiled.lower()  # the incremental (delete+insert) path ran


def test_plugin_loads_from_the_project_dir_and_warns_without_a_secret(tmp_path) -> None:
    """`dbt show` with cwd=dbt_project and no SUBSCRIBER_KEY_SECRET: development key, loud warning."""
    env = {name: value for name, value in os.environ.items() if name != "SUBSCRIBER_KEY_SECRET"}
    variables = {"landing_dir": str(tmp_path / "landing"), "warehouse_path": str(tmp_path / "state" / "warehouse.duckdb"),
                 "pii_vault_path": str(tmp_path / "state" / "pii_vault.duckdb")}
    completed = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "dbt"),
            "show",
            "--inline",
            "select subscriber_key(' Someone@Example.com ') as key",
            "--output",
            "json",
            "--log-format",
            "json",
            "--profiles-dir",
            ".",
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
            "--vars",
            json.dumps(variables),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    messages = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    warnings = [m["info"]["msg"] for m in messages if m["info"]["level"] == "warn"]
    assert any("SUBSCRIBER_KEY_SECRET is not set" in message for message in warnings)
    shown = [m["data"]["preview"] for m in messages if "preview" in m.get("data", {})]
    assert json.loads(shown[0]) == [{"key": subscriber_key("someone@example.com", DEVELOPMENT_ONLY_SECRET)}]
    assert (tmp_path / "state" / "warehouse.duckdb").exists()


@pytest.mark.parametrize("table", ["marts.subscriber_profiles", "marts.subscriber_eligibility", "marts.scoring_features"])
def test_one_row_per_canonical_subscriber(dbt_build: DbtBuild, table: str) -> None:
    with dbt_build.connect() as conn:
        rows, keys = conn.execute(f"select count(*), count(distinct subscriber_key) from {table}").fetchone()
    assert rows == keys == len(dbt_build.expected["people"])


def test_metadata_queries_beside_the_models_give_the_numbers_the_ui_shows(dbt_build: DbtBuild) -> None:
    """Each `meta.dagster_metadata` query of the manifest runs, and the main figures are right."""
    from orchestration.defs.warehouse import built_models, metadata_from_query

    models = built_models(dbt_build.work_dir / "target" / "manifest.json")
    shown: dict[str, dict] = {}
    with dbt_build.connect(attach_vault=True) as conn:
        for unique_id, model in models.items():
            shown[unique_id.split(".")[-1]] = {
                name: metadata_from_query(conn, sql.replace("{this}", model.relation))
                for name, sql in model.metadata_queries.items()
            }
        rows_in, staged, quarantined = conn.execute(
            "select sum(rows_in), sum(rows_staged), sum(rows_quarantined) from quality.landing_reconciliation"
        ).fetchone()
        eligible, excluded = conn.execute(
            "select count(*) filter (is_eligible), count(*) filter (not is_eligible) from marts.subscriber_eligibility"
        ).fetchone()
    assert shown["landing_reconciliation"]["rows_in"] == rows_in == staged + quarantined
    assert shown["landing_reconciliation"]["rows_quarantined"] == quarantined > 0
    assert shown["landing_reconciliation"]["all_files_conserved"] is True
    expected_reasons = dbt_build.expected["expected_reasons"]
    quarantine_reasons = dict(shown["quarantine_rows"]["quarantine_reasons"])
    for reason, n in shown["quarantined_subscribers"]["quarantine_reasons"].items():
        quarantine_reasons[reason] = quarantine_reasons.get(reason, 0) + n
    assert sum(quarantine_reasons.values()) == quarantined
    assert set(quarantine_reasons) == set(expected_reasons.values())
    assert (shown["subscriber_eligibility"]["eligible"], shown["subscriber_eligibility"]["excluded"]) == (eligible, excluded)
    assert sum(shown["subscriber_identity_crosswalk"]["people_by_source"].values()) == shown["subscriber_identity_crosswalk"]["canonical_subscribers"]


def test_a_crm_export_without_the_optional_audit_columns_builds_with_unknown_profiles(dbt_build: DbtBuild) -> None:
    """The tiny fixture's CRM export has neither birth_year nor gender (optional columns,
    docs/data_contract.md): the real build passes and every profile reads them as unknown."""
    import pyarrow.parquet as pq

    assert not {"birth_year", "gender"} & set(pq.read_schema(dbt_build.landing_dir / "crm_subscribers.parquet").names)
    assert dbt_build.result.success
    with dbt_build.connect() as conn:
        rows = conn.execute("select distinct age_band, gender from marts.subscriber_profiles").fetchall()
    assert rows == [("unknown", "unknown")]


def test_every_declared_column_has_the_type_its_built_relation_has(dbt_build: DbtBuild) -> None:
    """The `data_type` of every column in the `_<dir>__models.yml` files (Dagster's column
    schema shows them) is the type DuckDB built: a changed model cannot leave a stale type."""
    nodes = json.loads((dbt_build.work_dir / "target" / "manifest.json").read_text())["nodes"].values()
    declared = built = 0
    wrong = []
    with dbt_build.connect(attach_vault=True) as conn:
        for node in nodes:
            if node["resource_type"] not in ("model", "seed") or not node["columns"]:
                continue
            actual = {name: sql_type.lower() for name, sql_type, *_ in conn.execute(f"describe {node['relation_name']}").fetchall()}
            for column, info in node["columns"].items():
                declared += 1
                built += column in actual
                if (info.get("data_type") or "").lower() != actual.get(column):
                    wrong.append((node["name"], column, info.get("data_type"), actual.get(column)))
    assert declared > 350 and built == declared
    assert wrong == []


# A contract's column constraint as dbt declares it, and as DuckDB reports it on the table built.
CONSTRAINT_KINDS = {"not_null": "NOT NULL", "check": "CHECK"}


def declared_and_built_constraints(dbt_build: DbtBuild, kind: str) -> tuple[set, set]:
    """(database, schema, table, column) of every model column declaring a `kind` constraint,
    and of every such constraint on the tables built. A constraint is silently ignored on a
    view or without an enforced contract, so each declared one must be built."""
    nodes = json.loads((dbt_build.work_dir / "target" / "manifest.json").read_text())["nodes"]
    declared = set()
    for node in (node for node in nodes.values() if node["resource_type"] == "model"):
        for column in node["columns"].values():
            if any(constraint["type"] == kind for constraint in column.get("constraints", [])):
                assert node["config"]["contract"]["enforced"], (node["name"], column["name"])
                assert node["config"]["materialized"] in ("table", "incremental"), (node["name"], column["name"])
                declared.add((node["database"], node["schema"], node["alias"], column["name"]))
    with dbt_build.connect(attach_vault=True) as conn:
        built = {
            (database, schema, table, column)
            for database, schema, table, columns in conn.execute(
                "select database_name, schema_name, table_name, constraint_column_names "
                "from duckdb_constraints() where constraint_type = ?", [CONSTRAINT_KINDS[kind]]
            ).fetchall()
            for column in columns
        }
    return declared, built


def test_every_declared_not_null_constraint_is_enforced_by_the_built_table(dbt_build: DbtBuild) -> None:
    """Columns that must never be null carry a `not_null` constraint under an enforced
    contract, instead of a not_null data test: DuckDB then refuses the null while the model
    builds (one failed model naming table and column)."""
    declared, built = declared_and_built_constraints(dbt_build, "not_null")
    assert len(declared) >= 170
    assert sorted(declared - built) == []


def test_every_declared_check_constraint_is_enforced_by_the_built_table(dbt_build: DbtBuild) -> None:
    """Where a test would be accepted_values, a contracted model declares a `check` constraint
    (`<column> in (...)`, the list from the same var): DuckDB refuses any other value while
    the table builds."""
    declared, built = declared_and_built_constraints(dbt_build, "check")
    assert len(declared) >= 35
    assert sorted(declared - built) == []
    with dbt_build.connect() as conn:
        profiles = conn.execute(
            "select constraint_text from duckdb_constraints() "
            "where table_name = 'subscriber_profiles' and constraint_type = 'CHECK' and constraint_text like '%lifecycle_stage%'"
        ).fetchall()
    assert profiles == [("CHECK((lifecycle_stage IN ('new', 'active', 'at_risk', 'lapsed', 'never_engaged')))",)]
