"""Consent fails closed: each probe that once let a revoked person through, as a named test.

Every test starts from the clean two-person world of tests/dbt/landing_builder.py, where pat
and quinn are both eligible, makes the one edit a hostile or sloppy feed made, and asserts
that pat is no longer eligible (quinn, untouched, stays eligible).
"""

from __future__ import annotations

import pytest

from ml.privacy import subscriber_key
from tests.dbt.conftest import TEST_SECRET
from tests.dbt.landing_builder import PEOPLE, base_landing, write_landing


def eligibility(compiled_project, landing) -> dict[str, tuple[bool, list[str]]]:
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["subscriber_eligibility"])
    rows = connection.execute(
        "select subscriber_key, is_eligible, exclusion_reasons from marts.subscriber_eligibility"
    ).fetchall()
    by_key = {key: (eligible, list(reasons or [])) for key, eligible, reasons in rows}
    return {handle: by_key.get(subscriber_key(email, TEST_SECRET)) for handle, email in PEOPLE.items()}


def unsubscribe(**overrides) -> dict:
    row = {"consent_event_id": "CE9", "source_system": "esp", "source_subscriber_id": "E00000001",
           "status": "unsubscribed", "recorded_at": "2024-05-01 12:00:00",
           "consent_source": "preference_center", "proof": ""}
    return {**row, **overrides}


def suppression(**overrides) -> dict:
    row = {"suppression_id": "SP1", "source_system": "esp", "source_subscriber_id": "E00000001",
           "reason": "hard_bounce", "suppressed_at": "2024-05-01 12:00:00"}
    return {**row, **overrides}


def assert_pat_excluded(result, *reasons: str) -> None:
    assert result["quinn"] == (True, []), result
    eligible, found = result["pat"]
    assert eligible is False, result
    for reason in reasons:
        assert reason in found, result


def test_the_base_world_has_both_people_eligible(compiled_project) -> None:
    result = eligibility(compiled_project, base_landing())
    assert result == {"pat": (True, []), "quinn": (True, [])}


def test_a_clean_unsubscribe_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe())
    assert_pat_excluded(eligibility(compiled_project, landing), "unsubscribed")


@pytest.mark.parametrize(
    "recorded_at", ["2024-05-01T12:00:00+00:00", "2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00Z"],
    ids=["utc_offset", "other_offset", "zulu"],
)
def test_an_unsubscribe_with_an_iso_offset_is_a_clean_unsubscribe(compiled_project, recorded_at) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(recorded_at=recorded_at))
    assert_pat_excluded(eligibility(compiled_project, landing), "unsubscribed")
    assert "consent_record_quarantined" not in eligibility(compiled_project, landing)["pat"][1]


@pytest.mark.parametrize(
    "recorded_at",
    ["2024-05-01 12:00", "1714564800", "01/05/2024 12:00", "2024-05-01T12:00:00+25:00"],
    ids=["no_seconds", "epoch_text", "day_first", "impossible_offset"],
)
def test_an_unsubscribe_with_an_unreadable_timestamp_excludes(compiled_project, recorded_at) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(recorded_at=recorded_at))
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_an_unsubscribe_dated_after_the_export_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(recorded_at="2024-07-15 00:00:00"))
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_a_suppression_with_a_lowercase_subscriber_id_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["suppressions"].append(suppression(source_subscriber_id="e00000001"))
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_a_suppression_from_system_ESP_in_capitals_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["suppressions"].append(suppression(source_system="ESP"))
    assert_pat_excluded(eligibility(compiled_project, landing), "suppressed_hard_bounce")


def test_a_suppression_reason_in_other_case_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["suppressions"].append(suppression(reason="Hard_Bounce"))
    assert_pat_excluded(eligibility(compiled_project, landing), "suppressed_hard_bounce")


def test_a_consent_status_in_other_case_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(status="Unsubscribed"))
    assert_pat_excluded(eligibility(compiled_project, landing), "unsubscribed")


def test_an_unknown_consent_status_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(status="opted-out-of-everything"))
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_an_unsubscribe_reusing_an_event_id_excludes(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(consent_event_id="CE2"))
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_an_unsubscribe_on_a_quarantined_esp_record_excludes_the_person(compiled_project) -> None:
    # The ESP record fails on its time zone; the CRM record alone would keep pat eligible.
    landing = base_landing()
    landing["esp_subscribers"][0]["timezone"] = "Europe/Atlantis"
    landing["consent_events"].append(unsubscribe())
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


@pytest.mark.parametrize("space", ["\t", "\u00a0", "\u2003", "\n", "\ufeff"], ids=["tab", "nbsp", "em_space", "newline", "bom"])
def test_an_email_with_odd_surrounding_whitespace_keeps_its_unsubscribe(compiled_project, space) -> None:
    landing = base_landing()
    landing["esp_subscribers"][0]["email"] = f"{space}pat.example@example.com{space}"
    landing["consent_events"].append(unsubscribe())
    assert_pat_excluded(eligibility(compiled_project, landing), "unsubscribed")


def test_unsubscribe_email_events_with_epoch_timestamps_still_exclude(compiled_project) -> None:
    landing = base_landing()
    landing["email_events"].append(
        {"event_id": "V2", "send_id": "S1", "esp_id": "E00000001", "event_type": "unsubscribe",
         "occurred_at": "1714564800"}
    )
    for row in landing["email_events"]:
        row["occurred_at"] = "1714564800"
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_an_unsubscribe_email_event_with_an_unknown_esp_id_is_tied_through_its_send(compiled_project) -> None:
    landing = base_landing()
    landing["email_events"].append(
        {"event_id": "V2", "send_id": "S1", "esp_id": "E99999999", "event_type": "unsubscribe",
         "occurred_at": "2024-05-01 12:00:00"}
    )
    assert_pat_excluded(eligibility(compiled_project, landing), "consent_record_quarantined")


def test_a_revocation_on_one_record_is_not_undone_by_a_later_subscription_on_another(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(source_system="crm", source_subscriber_id="C00000001"))
    landing["consent_events"].append(
        unsubscribe(consent_event_id="CE10", status="subscribed", recorded_at="2024-05-02 12:00:00",
                    consent_source="signup_form", proof="form-again")
    )
    assert_pat_excluded(eligibility(compiled_project, landing), "unsubscribed")


def test_a_revocation_is_undone_by_a_later_clean_subscription_on_the_same_record(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe())
    landing["consent_events"].append(
        unsubscribe(consent_event_id="CE10", status="subscribed", recorded_at="2024-05-02 12:00:00",
                    consent_source="double_opt_in", proof="doi-again")
    )
    assert eligibility(compiled_project, landing)["pat"] == (True, [])


def test_a_quarantined_record_is_superseded_by_a_later_clean_subscription(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe(consent_event_id="CE2"))  # duplicate id, 2024-05-01
    landing["consent_events"].append(
        unsubscribe(consent_event_id="CE10", status="subscribed", recorded_at="2024-05-02 12:00:00",
                    consent_source="double_opt_in", proof="doi-again")
    )
    assert eligibility(compiled_project, landing)["pat"] == (True, [])


def test_every_reason_that_applies_is_listed(compiled_project) -> None:
    landing = base_landing()
    landing["consent_events"].append(unsubscribe())
    landing["suppressions"].append(suppression(reason="complaint"))
    landing["suppressions"].append(suppression(suppression_id="SP2", reason="legal_request"))
    landing["suppressions"].append(suppression(suppression_id="SP3", suppressed_at="someday"))
    _, reasons = eligibility(compiled_project, landing)["pat"]
    assert reasons == ["suppressed_legal_request", "suppressed_complaint", "unsubscribed", "consent_record_quarantined"]


def test_a_one_megabyte_value_in_any_text_column_is_quarantined_as_value_too_long(compiled_project) -> None:
    import time

    from ml.landing.contract import LANDING_COLUMNS, NUMERIC_COLUMNS, OPTIONAL_COLUMNS

    landing = base_landing()
    planted = {}
    # Every contract column but the audit attributes, which read as unknown whatever they hold.
    every_column = {
        table: (*columns, *(c for c in OPTIONAL_COLUMNS.get(table, ()) if c not in ("birth_year", "gender")))
        for table, columns in LANDING_COLUMNS.items()
    }
    for table, columns in every_column.items():
        template = landing[table][0] if landing[table] else None
        if template is None:
            template = {"suppression_id": "SPX", "source_system": "esp", "source_subscriber_id": "E00000002",
                        "reason": "hard_bounce", "suppressed_at": "2024-05-01 12:00:00"}
        for column in columns:
            if column in NUMERIC_COLUMNS:
                continue
            planted[(table, len(landing[table]))] = column
            landing[table].append({**template, column: "x" * 1_000_000 + "@example.com"})
    write_landing(compiled_project.landing_dir, landing)
    started = time.monotonic()
    connection = compiled_project.run(["quarantine_rows", "quarantined_subscribers"])
    rows = connection.execute(
        """
        select source_file, source_row_key, reason_code, length(cast(raw_values as varchar)) from quality.quarantine_rows
        union all
        select source_file, source_row_key, reason_code, length(cast(raw_values as varchar)) from pii.main.quarantined_subscribers
        """
    ).fetchall()
    seconds = time.monotonic() - started
    found = {(file, row): (reason, size) for file, row, reason, size in rows}
    assert len(planted) == sum(len(c) for c in every_column.values()) - len(NUMERIC_COLUMNS) == 50
    assert {key: found.get(key, (None, 0))[0] for key in planted} == {key: "value_too_long" for key in planted}
    # The quarantine keeps a cut preview, never the megabyte.
    assert max(found[key][1] for key in planted) < 2_000
    assert seconds < 60, seconds


def test_sql_and_python_strip_the_same_surrounding_space_character_by_character() -> None:
    """ml.privacy.SURROUNDING_SPACE and the dbt macro surrounding_space_class are twins."""
    import re

    import duckdb

    from ml.privacy import SURROUNDING_SPACE
    from tests.dbt.compiled_sql import DBT_PROJECT_DIR

    macros = (DBT_PROJECT_DIR / "macros" / "parsing.sql").read_text()
    sql_class = re.search(r"macro surrounding_space_class\(\) -%}\n(.*?)\n\{%- endmacro", macros, re.S).group(1)
    characters = [chr(code) for code in range(0, 0x3100) if not 0xD800 <= code <= 0xDFFF] + ["\ufeff", "\u2060"]
    sql = duckdb.connect().execute(
        f"select c, regexp_full_match(c, '{sql_class}') from unnest(?) t(c)", [characters]
    ).fetchall()
    python = re.compile(SURROUNDING_SPACE)
    differ = [hex(ord(c)) for c, matched in sql if matched != bool(python.fullmatch(c))]
    assert differ == []
    assert sum(matched for _, matched in sql) >= 30  # tab, NBSP, em space, BOM, ... not an empty class
