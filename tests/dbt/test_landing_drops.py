"""Daily drops (docs/data_contract.md, "Daily drops"): what a drop may hold and what it means.

The fast tests replay the compiled project in memory (tests/dbt/compiled_sql.py, as_of
2024-06-30 00:00:00) on the two-person world of tests/dbt/landing_builder.py plus drops
dated before it. tests/dbt/test_landing_drops_loop.py runs the real incremental dbt day by
day.
"""

from __future__ import annotations

from ml.privacy import subscriber_key
from tests.dbt.conftest import TEST_SECRET
from tests.dbt.landing_builder import PEOPLE, base_landing, write_landing

PAT, QUINN = (subscriber_key(PEOPLE[handle], TEST_SECRET) for handle in ("pat", "quinn"))
PAT_NEW = subscriber_key("pat.new@example.com", TEST_SECRET)


def run(compiled_project, landing, drops, models):
    write_landing(compiled_project.landing_dir, landing, drops=drops)
    return compiled_project.run(models)


def eligibility(connection) -> dict[str, tuple[bool, list[str]]]:
    rows = connection.execute("select subscriber_key, is_eligible, exclusion_reasons from marts.subscriber_eligibility")
    return {key: (eligible, list(reasons)) for key, eligible, reasons in rows.fetchall()}


def consent(event_id, record, status, at, source="preference_center", system="esp"):
    return {"consent_event_id": event_id, "source_system": system, "source_subscriber_id": record, "status": status,
            "recorded_at": at, "consent_source": source, "proof": ""}


def esp_row(esp_id, email, timezone="Europe/London", created_at="2024-01-12 09:00:00", first_name="Quinn"):
    return {"esp_id": esp_id, "email": email, "first_name": first_name, "created_at": created_at, "timezone": timezone}


def test_a_drop_adds_rows_and_a_later_drop_version_of_a_record_supersedes_the_earlier(compiled_project) -> None:
    drops = {
        "2024-06-01": {
            "esp_subscribers": [esp_row("E00000003", "rowan.example@example.com", "UTC", "2024-06-01 08:00:00", "Rowan")],
            "consent_events": [consent("CE4", "E00000003", "subscribed", "2024-06-01 08:00:00", "double_opt_in")],
            "sends": [{"send_id": "S3", "campaign_id": "K1", "esp_id": "E00000003", "sent_at": "2024-06-01 10:00:00"}],
        },
        # quinn moved: the ESP exports her record again, changed
        "2024-06-02": {"esp_subscribers": [esp_row("E00000002", "quinn.example@example.com", "Europe/Paris")]},
    }
    connection = run(compiled_project, base_landing(), drops, ["landing_reconciliation", "subscriber_eligibility", "fct_sends"])
    rowan = subscriber_key("rowan.example@example.com", TEST_SECRET)
    assert eligibility(connection) == {PAT: (True, []), QUINN: (True, []), rowan: (True, [])}
    assert connection.execute("select timezone from intermediate.int_subscribers_unified where subscriber_key = ?",
                              [QUINN]).fetchone() == ("Europe/Paris",)
    assert connection.execute(
        "select send_id, subscriber_key from marts.fct_sends where send_id = 'S3'").fetchall() == [("S3", rowan)]
    reconciliation = connection.execute(
        """select source_file, landing_batch, rows_in, rows_staged, rows_superseded, rows_quarantined, is_conserved
           from quality.landing_reconciliation
           where source_file in ('esp_subscribers', 'sends', 'consent_events') order by all"""
    ).fetchall()
    assert reconciliation == [
        ("consent_events", "2024-06-01", 1, 1, 0, 0, True),
        ("consent_events", "initial", 3, 3, 0, 0, True),
        ("esp_subscribers", "2024-06-01", 1, 1, 0, 0, True),
        ("esp_subscribers", "2024-06-02", 1, 1, 0, 0, True),
        ("esp_subscribers", "initial", 2, 1, 1, 0, True),
        ("sends", "2024-06-01", 1, 1, 0, 0, True),
        ("sends", "initial", 2, 2, 0, 0, True),
    ]


def test_a_drop_dated_after_as_of_is_not_read(compiled_project) -> None:
    drops = {"2024-07-01": {"consent_events": [consent("CE9", "E00000001", "unsubscribed", "2024-06-29 12:00:00")]}}
    connection = run(compiled_project, base_landing(), drops, ["landing_reconciliation", "subscriber_eligibility"])
    assert eligibility(connection)[PAT] == (True, [])
    batches = connection.execute("select distinct landing_batch from quality.landing_reconciliation").fetchall()
    assert batches == [("initial",)]


def test_a_quarantined_drop_row_names_its_drop_file_and_row(compiled_project) -> None:
    drops = {"2024-06-01": {"orders": [
        {"order_id": "O2", "crm_id": "C00000001", "product_id": "P1", "ordered_at": "2024-06-01 12:00:00",
         "amount": "12.00", "currency": "USD"},
        {"order_id": "O3", "crm_id": "C00000001", "product_id": "P1", "ordered_at": "2024-06-01 13:00:00",
         "amount": "0", "currency": "USD"},
    ]}}
    connection = run(compiled_project, base_landing(), drops, ["quarantine_rows", "fct_orders"])
    assert connection.execute(
        "select source_file, landing_batch, source_row_key, source_record_id, reason_code from quality.quarantine_rows"
    ).fetchall() == [("orders", "2024-06-01", 1, "O3", "invalid_amount")]
    assert sorted(row[0] for row in connection.execute("select order_id from marts.fct_orders").fetchall()) == ["O1", "O2"]


def test_an_event_redelivered_by_a_drop_is_an_exact_duplicate_and_a_changed_one_a_duplicate_id(compiled_project) -> None:
    landing = base_landing()
    redelivered = dict(landing["email_events"][0])
    changed = {**landing["email_events"][0], "event_type": "open"}
    drops = {"2024-06-01": {"email_events": [redelivered]}, "2024-06-02": {"email_events": [changed]}}
    connection = run(compiled_project, landing, drops, ["quarantine_rows", "fct_email_events"])
    assert connection.execute(
        "select landing_batch, source_row_key, reason_code from quality.quarantine_rows order by all"
    ).fetchall() == [("2024-06-01", 0, "exact_duplicate"), ("2024-06-02", 0, "duplicate_event_id")]
    assert connection.execute("select event_id, event_type from marts.fct_email_events").fetchall() == [("V1", "delivered")]


def test_a_drop_reusing_a_consent_event_id_still_fails_closed(compiled_project) -> None:
    drops = {"2024-06-01": {"consent_events": [consent("CE2", "E00000001", "unsubscribed", "2024-06-01 12:00:00")]}}
    connection = run(compiled_project, base_landing(), drops, ["subscriber_eligibility"])
    assert eligibility(connection)[PAT] == (False, ["consent_record_quarantined"])


def test_a_quarantined_drop_version_of_a_record_supersedes_nothing(compiled_project) -> None:
    drops = {"2024-06-01": {"esp_subscribers": [esp_row("E00000002", "quinn.example@example.com", "Europe/Atlantis")]}}
    connection = run(compiled_project, base_landing(), drops, ["landing_reconciliation", "subscriber_eligibility"])
    assert eligibility(connection)[QUINN] == (True, [])
    assert connection.execute(
        """select landing_batch, rows_staged, rows_superseded, rows_quarantined from quality.landing_reconciliation
           where source_file = 'esp_subscribers' order by all"""
    ).fetchall() == [("2024-06-01", 0, 0, 1), ("initial", 2, 0, 0)]


def test_a_revocation_is_not_lost_when_a_drop_changes_the_records_email(compiled_project) -> None:
    # pat unsubscribed on her ESP record; then the ESP record's email changed. Her CRM
    # record (same old email) alone would make her eligible again: it must not.
    landing = base_landing()
    landing["consent_events"].append(consent("CE9", "E00000001", "unsubscribed", "2024-05-01 12:00:00"))
    drops = {"2024-06-01": {"esp_subscribers": [esp_row("E00000001", "pat.new@example.com", "Europe/Berlin",
                                                         "2024-01-11 09:00:00", "Pat")]}}
    connection = run(compiled_project, landing, drops, ["subscriber_eligibility", "consent_history"])
    found = eligibility(connection)
    assert found[PAT] == (False, ["unsubscribed"])
    assert found[PAT_NEW] == (False, ["unsubscribed"])  # the record's consent follows it
    assert found[QUINN] == (True, [])
    # Control: without the revocation, both are eligible (pat_new has no consent record).
    connection = run(compiled_project, base_landing(), drops, ["subscriber_eligibility"])
    assert eligibility(connection)[PAT] == (True, [])
