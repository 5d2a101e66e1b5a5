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


def line(order_id, line_number, product_id, ordered_at, quantity, unit_price, returns_order_id=None) -> dict:
    return {"order_id": order_id, "line_number": line_number, "crm_id": "C00000001", "product_id": product_id,
            "ordered_at": ordered_at, "quantity": quantity, "unit_price": unit_price, "currency": "GBP",
            "returns_order_id": returns_order_id}


def test_order_lines_make_orders_as_placed_and_returns_are_netted_against_their_orders(compiled_project) -> None:
    landing = base_landing()
    landing["products"].append({"product_id": "P2", "category": "home", "price": 10.0, "currency": "GBP"})
    landing["products"].append({"product_id": "P3", "category": "toys", "price": 4.0, "currency": "GBP"})
    landing["orders"] = [
        line("I1", "1", "P1", "2024-03-05T12:00:00+01:00", "3", "2.50"),
        line("I1", "2", "P2", "2024-03-05T12:00:00+01:00", "1", "10"),
        line("I2", "1", "P1", "2024-03-10 09:00:00", "2", "2.50"),
        line("I2", "2", "P1", "2024-03-10 09:30:00", "-1", "2.50"),  # a cancelled unit of the same order
        line("R1", "1", "P2", "2024-03-12 09:00:00", "-1", "10", returns_order_id="I1"),
        line("C9", "1", "P1", "2024-03-20 09:00:00", "-2", "2.50"),  # UCI style: no reference
        line("C10", "1", "P3", "2024-03-21 09:00:00", "-1", "4"),  # nothing with P3 was ever bought
    ]
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["fct_orders", "fct_order_returns"])
    orders = connection.execute(
        "select order_id, product_id, product_category, ordered_at, amount, line_count from marts.fct_orders order by order_id"
    ).fetchall()
    from datetime import datetime
    assert orders == [
        ("I1", "P2", "home", datetime(2024, 3, 5, 11, 0), 17.5, 2),
        ("I2", "P1", "apparel", datetime(2024, 3, 10, 9, 0), 5.0, 1),
    ]
    returns = connection.execute(
        "select order_id, returned_amount, netted_order_id, matched_by from marts.fct_order_returns order by order_id"
    ).fetchall()
    assert returns == [
        ("C10", 4.0, None, None),
        ("C9", 5.0, "I2", "latest_order_with_product"),
        ("I2", 2.5, "I2", "same_order"),
        ("R1", 10.0, "I1", "returns_order_id"),
    ]
