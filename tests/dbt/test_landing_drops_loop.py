"""The living loop in dbt: the real incremental facts, day by day, on two hand-written drops.

One state folder, four dbt invocations (shared by every test here, in this order; "run"
is `dbt build` without tests, as the seed must load too):
  day 1    `dbt run`   as of 2024-07-01 23:59:59 on a fresh warehouse: the initial export
                       and drops/2024-07-01 (drops/2024-07-02 is already there, unread);
  day 2    `dbt build` as of 2024-07-02 23:59:59, incremental, with every data test;
  day 2    `dbt run`   again: every table must stay byte-identical;
  day 1    `dbt run`   again, on the day-2 warehouse: exactly the fresh day-1 tables.

The world: pat (CRM C00000001 + ESP E00000001) and quinn (ESP E00000002) of
tests/dbt/landing_builder.py; a July campaign on day 1 to both, rowan signing up on day 1
and mailed on day 2; pat buying after the July email on day 1 and day 2; quinn
unsubscribing from it on day 2 and moving time zone (a changed subscriber row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from ml.privacy import subscriber_key
from tests.dbt.conftest import TEST_SECRET, DbtRun, dbt_vars, run_dbt
from tests.dbt.landing_builder import PEOPLE, base_landing, write_landing
from tests.table_hashes import table_hashes

DAY_1, DAY_2 = "2024-07-01 23:59:59", "2024-07-02 23:59:59"
ROWAN_EMAIL = "rowan.example@example.com"
PAT, QUINN, ROWAN = (subscriber_key(email, TEST_SECRET) for email in (PEOPLE["pat"], PEOPLE["quinn"], ROWAN_EMAIL))


def event(event_id, send_id, esp_id, event_type, at):
    return {"event_id": event_id, "send_id": send_id, "esp_id": esp_id, "event_type": event_type, "occurred_at": at}


def order(order_id, at, amount, currency):
    return {"order_id": order_id, "crm_id": "C00000001", "product_id": "P1", "ordered_at": at, "amount": amount,
            "currency": currency}


DROPS = {
    "2024-07-01": {
        "campaigns": [{"campaign_id": "K2", "campaign_name": "July", "category": "apparel", "subject_line": "July",
                       "launched_at": "2024-07-01 08:00:00"}],
        "sends": [
            {"send_id": "S3", "campaign_id": "K2", "esp_id": "E00000001", "sent_at": "2024-07-01 09:00:00"},
            {"send_id": "S4", "campaign_id": "K2", "esp_id": "E00000002", "sent_at": "2024-07-01 09:00:00"},
        ],
        "email_events": [
            event("V2", "S3", "E00000001", "delivered", "2024-07-01 09:01:00"),
            event("V3", "S3", "E00000001", "open", "2024-07-01 10:00:00"),
            event("V4", "S3", "E00000001", "click", "2024-07-01 10:05:00"),
            event("V5", "S4", "E00000002", "delivered", "2024-07-01 09:01:00"),
            event("V6", "S4", "E00000002", "opened!", "2024-07-01 11:00:00"),  # row 4: unknown_event_type
        ],
        "orders": [order("O2", "2024-07-01 18:00:00", "20.00", "EUR")],
        "esp_subscribers": [{"esp_id": "E00000003", "email": ROWAN_EMAIL, "first_name": "Rowan",
                             "created_at": "2024-07-01 07:00:00", "timezone": "UTC"}],
        "consent_events": [{"consent_event_id": "CE4", "source_system": "esp", "source_subscriber_id": "E00000003",
                            "status": "subscribed", "recorded_at": "2024-07-01 07:00:00",
                            "consent_source": "double_opt_in", "proof": "doi-3"}],
    },
    "2024-07-02": {
        "campaigns": [{"campaign_id": "K3", "campaign_name": "Welcome", "category": "general", "subject_line": "Hi",
                       "launched_at": "2024-07-02 08:00:00"}],
        "sends": [{"send_id": "S5", "campaign_id": "K3", "esp_id": "E00000003", "sent_at": "2024-07-02 09:00:00"}],
        "email_events": [
            event("V7", "S5", "E00000003", "delivered", "2024-07-02 09:01:00"),
            event("V8", "S4", "E00000002", "unsubscribe", "2024-07-02 08:00:00"),
            event("V9", "S3", "E00000001", "open", "2024-07-02 12:00:00"),
        ],
        "orders": [order("O3", "2024-07-02 20:00:00", "10.00", "USD"),
                   order("O4", "2024-07-02 20:30:00", "0", "USD")],  # row 1: invalid_amount (zero)
        "esp_subscribers": [{"esp_id": "E00000002", "email": "quinn.example@example.com", "first_name": "Quinn",
                             "created_at": "2024-01-12 09:00:00", "timezone": "Europe/Paris"}],
    },
}




@dataclass
class Loop:
    state: Path
    runs: dict[str, DbtRun]
    hashes: dict[str, dict[str, str]]
    day_1: dict  # figures read after the fresh day-1 run
    day_2: dict  # figures read after the incremental day-2 build


def figures(state: Path) -> dict:
    connection = duckdb.connect(str(state / "warehouse.duckdb"), read_only=True)
    try:
        def rows(sql):
            return connection.execute(sql).fetchall()
        return {
            "sends": {r[0] for r in rows("select send_id from marts.fct_sends")},
            "events": {r[0] for r in rows("select event_id from marts.fct_email_events")},
            "orders": {r[0] for r in rows("select order_id from marts.fct_orders")},
            "outcomes": {r[0]: r[1:] for r in rows(
                """select send_id, subscriber_key, delivered, bounced, opened, clicked, unsubscribed, complained,
                          purchased, attributed_orders, attributed_revenue, round(observed_days, 6), window_complete
                   from marts.fct_send_outcomes""")},
            "eligibility": {r[0]: (r[1], r[2]) for r in rows(
                "select subscriber_key, is_eligible, exclusion_reason from marts.subscriber_eligibility")},
            "quarantine": set(rows("select source_file, landing_batch, source_row_key, reason_code from quality.quarantine_rows")),
            "reconciliation": {(r[0], r[1]): r[2:] for r in rows(
                """select source_file, landing_batch, rows_in, rows_staged, rows_superseded, rows_quarantined, is_conserved
                   from quality.landing_reconciliation""")},
            "quinn_timezone": rows(f"select timezone from intermediate.int_subscribers_unified where subscriber_key = '{QUINN}'"),
            "main_warehouse_text": " ".join(
                str(row) for schema, table in rows(
                    "select schema_name, table_name from duckdb_tables() where database_name = 'warehouse'")
                for row in rows(f'select * from "{schema}"."{table}"')
            ),
        }
    finally:
        connection.close()


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    work = tmp_path_factory.mktemp("drops_loop")
    write_landing(work / "landing", base_landing(), drops=DROPS)
    state = work / "state"

    def invoke(command: str, as_of: str) -> DbtRun:
        # "run": seeds and models only; "build": with every data test too (unit tests run in
        # the shared build of tests/dbt/conftest.py).
        excluded = ["resource_type:unit_test"] + (["resource_type:test"] if command == "run" else [])
        run = run_dbt(work, dbt_vars(work / "landing", state, as_of), TEST_SECRET, "build", "--exclude", *excluded)
        assert run.success, run.output[-3000:]
        return run

    runs, hashes = {}, {}
    runs["day_1"] = invoke("run", DAY_1)
    hashes["day_1"] = table_hashes(state)
    day_1 = figures(state)
    runs["day_2"] = invoke("build", DAY_2)
    hashes["day_2"] = table_hashes(state)
    day_2 = figures(state)
    runs["day_2_again"] = invoke("run", DAY_2)
    hashes["day_2_again"] = table_hashes(state)
    runs["day_1_again"] = invoke("run", DAY_1)
    hashes["day_1_again"] = table_hashes(state)
    return Loop(state, runs, hashes, day_1, day_2)


def test_every_run_succeeds_and_day_2_passes_every_data_test(loop: Loop) -> None:
    for name, run in loop.runs.items():
        failures = [(r["unique_id"], r["status"]) for r in run.results if r["status"] not in ("success", "pass")]
        assert run.success and failures == [], (name, failures, run.output[-2000:])
    tests = [r for r in loop.runs["day_2"].results if r["unique_id"].startswith("test.")]
    # 163 data tests: never-null columns and value lists are contract constraints, which the
    # models' own builds enforce (tests/dbt/test_dbt_build.py checks every one is built).
    assert len(tests) >= 150


def test_the_drop_rows_of_each_day_reach_the_facts(loop: Loop) -> None:
    assert loop.day_1["sends"] == {"S1", "S2", "S3", "S4"}
    assert loop.day_1["events"] == {"V1", "V2", "V3", "V4", "V5"}
    assert loop.day_1["orders"] == {"O1", "O2"}
    assert loop.day_2["sends"] == {"S1", "S2", "S3", "S4", "S5"}
    assert loop.day_2["events"] == {"V1", "V2", "V3", "V4", "V5", "V7", "V8", "V9"}
    assert loop.day_2["orders"] == {"O1", "O2", "O3"}


def test_a_run_as_of_a_day_before_a_drop_does_not_see_it(loop: Loop) -> None:
    assert loop.day_1["eligibility"] == {PAT: (True, None), QUINN: (True, None), ROWAN: (True, None)}
    assert loop.day_2["eligibility"] == {PAT: (True, None), QUINN: (False, "unsubscribed"), ROWAN: (True, None)}
    assert loop.day_1["quinn_timezone"] == [("Europe/London",)]
    assert loop.day_2["quinn_timezone"] == [("Europe/Paris",)]
    assert {batch for _, batch in loop.day_1["reconciliation"]} == {"initial", "2024-07-01"}


def test_quarantined_drop_rows_name_their_drop_file_and_row(loop: Loop) -> None:
    assert loop.day_1["quarantine"] == {("email_events", "2024-07-01", 4, "unknown_event_type")}
    assert loop.day_2["quarantine"] == {
        ("email_events", "2024-07-01", 4, "unknown_event_type"),
        ("orders", "2024-07-02", 1, "invalid_amount"),
    }


def test_every_row_of_every_batch_is_conserved(loop: Loop) -> None:
    reconciliation = loop.day_2["reconciliation"]
    assert all(row[-1] for row in reconciliation.values())
    # (rows_in, rows_staged, rows_superseded, rows_quarantined)
    assert reconciliation[("esp_subscribers", "initial")][:4] == (2, 1, 1, 0)
    assert reconciliation[("esp_subscribers", "2024-07-02")][:4] == (1, 1, 0, 0)
    assert reconciliation[("email_events", "2024-07-01")][:4] == (5, 4, 0, 1)
    assert reconciliation[("orders", "2024-07-02")][:4] == (2, 1, 0, 1)
    assert ("suppressions", "initial") in reconciliation  # an empty file keeps its row


def test_outcomes_and_last_touch_attribution_are_the_constructed_ones(loop: Loop) -> None:
    # (subscriber, delivered, bounced, opened, clicked, unsubscribed, complained,
    #  purchased, attributed_orders, attributed_revenue, observed_days, window_complete)
    day_2 = loop.day_2["outcomes"]
    assert day_2["S1"] == (PAT, True, False, False, False, False, False, True, 1, 30.0, 14.0, True)  # O1, 4 days after
    assert day_2["S2"] == (QUINN, False, False, False, False, False, False, False, 0, 0.0, 14.0, True)
    # O2 (20 EUR = 21.60 USD) and O3 (10 USD) follow S3, pat's latest send: S1 gets neither.
    observed = round((24 * 3600 + 14 * 3600 + 59 * 60 + 59) / 86400, 6)
    assert day_2["S3"] == (PAT, True, False, True, True, False, False, True, 2, 31.6, observed, False)
    assert day_2["S4"] == (QUINN, True, False, False, False, True, False, False, 0, 0.0, observed, False)
    assert day_2["S5"][:9] == (ROWAN, True, False, False, False, False, False, False, 0)
    assert loop.day_1["outcomes"]["S3"][7:10] == (True, 1, 21.6)
    assert loop.day_1["outcomes"]["S4"][5] is False  # the unsubscribe lands on day 2


def test_a_rerun_of_the_same_day_leaves_every_table_byte_identical(loop: Loop) -> None:
    assert len(loop.hashes["day_2"]) > 30
    assert loop.hashes["day_2_again"] == loop.hashes["day_2"]


def test_a_rerun_of_an_earlier_day_gives_exactly_that_days_tables(loop: Loop) -> None:
    assert loop.hashes["day_1"] != loop.hashes["day_2"]
    differing = {t for t in loop.hashes["day_1"] if loop.hashes["day_1"][t] != loop.hashes["day_1_again"].get(t)}
    assert differing == set()
    assert set(loop.hashes["day_1_again"]) == set(loop.hashes["day_1"])


def test_a_new_signup_from_a_drop_leaves_no_pii_in_the_main_warehouse(loop: Loop) -> None:
    text = loop.day_2["main_warehouse_text"].lower()
    assert ROWAN in text  # control: the scan sees rowan's rows
    assert not re.search(r"rowan\.example|rowan'", text)
