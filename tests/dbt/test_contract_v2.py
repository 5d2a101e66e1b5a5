"""Contract v2 on the two-person world of tests/dbt/landing_builder.py: what real exports lack."""

from __future__ import annotations

from ml.privacy import crm_record_key, subscriber_key
from tests.dbt.conftest import TEST_SECRET
from tests.dbt.landing_builder import base_landing, write_landing


def crm_only_customer(crm_id: str = "C77", email: str | None = "") -> dict:
    return {"crm_id": crm_id, "email": email, "first_name": "", "signup_at": "2024-02-01 09:00:00", "country": "GB"}


def test_a_crm_record_without_an_email_is_a_person_keyed_by_its_id_with_its_orders(compiled_project) -> None:
    landing = base_landing()
    landing["crm_subscribers"] += [crm_only_customer("C77", ""), crm_only_customer("c77", None)]
    landing["orders"].append({"order_id": "O77", "crm_id": "C77", "product_id": "P1", "ordered_at": "2024-03-07 12:00:00",
                              "amount": "12.50", "currency": "USD"})
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["fct_orders", "subscriber_profiles", "subscriber_eligibility", "quarantined_subscribers"])
    key, other_case_key = crm_record_key("C77", TEST_SECRET), crm_record_key("c77", TEST_SECRET)
    assert key != other_case_key and key != subscriber_key("c77", TEST_SECRET)
    assert connection.execute("select subscriber_key, amount from marts.fct_orders where order_id = 'O77'").fetchall() == [(key, 12.5)]
    profiles = dict(connection.execute(
        "select subscriber_key, timezone || ' ' || timezone_source from marts.subscriber_profiles").fetchall())
    assert profiles[key] == "Europe/London country" and other_case_key in profiles
    # No consent record and no ESP contact: modelled, never emailed.
    eligibility = dict(connection.execute(
        "select subscriber_key, exclusion_reason from marts.subscriber_eligibility").fetchall())
    assert eligibility[key] == "no_consent_record"
    assert connection.execute("select count(*) from pii.quarantined_subscribers").fetchone() == (0,)


def test_a_crm_email_that_is_there_must_still_be_valid(compiled_project) -> None:
    landing = base_landing()
    landing["crm_subscribers"].append(crm_only_customer("C78", "not-an-email"))
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["quarantined_subscribers"])
    assert connection.execute("select source_record_id, reason_code from pii.quarantined_subscribers").fetchall() == [
        ("C78", "invalid_email")
    ]
