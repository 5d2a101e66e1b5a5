"""A subscriber's time zone: their own (ESP, else CRM), else their country's, else the default."""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from ml.privacy import subscriber_key
from tests.dbt.conftest import TEST_SECRET
from tests.dbt.landing_builder import PEOPLE, base_landing, write_landing

SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "country_timezones.csv"


def zones(compiled_project, landing) -> dict[str, tuple[str, str]]:
    write_landing(compiled_project.landing_dir, landing)
    connection = compiled_project.run(["subscriber_profiles"])
    rows = connection.execute("select subscriber_key, timezone, timezone_source from marts.subscriber_profiles").fetchall()
    by_key = {key: (zone, source) for key, zone, source in rows}
    return {handle: by_key[subscriber_key(email, TEST_SECRET)] for handle, email in PEOPLE.items()}


def without_timezones(landing, tables=("crm_subscribers", "esp_subscribers")):
    for table in tables:
        for row in landing[table]:
            row.pop("timezone")
    return landing


def test_a_subscriber_s_own_zone_comes_first_the_esp_s_before_the_crm_s(compiled_project) -> None:
    landing = base_landing()
    landing["crm_subscribers"][0]["timezone"] = "Europe/Paris"
    assert zones(compiled_project, landing) == {
        "pat": ("Europe/Berlin", "subscriber"), "quinn": ("Europe/London", "subscriber")
    }


def test_without_a_zone_column_the_country_s_zone_then_the_default_applies(compiled_project) -> None:
    # pat has a CRM record in DE; quinn is known only to the ESP, which carries no country.
    assert zones(compiled_project, without_timezones(base_landing())) == {
        "pat": ("Europe/Berlin", "country"), "quinn": ("UTC", "default")
    }


def test_a_blank_esp_zone_falls_back_to_the_crm_s_own(compiled_project) -> None:
    landing = base_landing()
    landing["esp_subscribers"][0]["timezone"] = "  "
    landing["crm_subscribers"][0]["timezone"] = "Europe/Paris"
    assert zones(compiled_project, landing)["pat"] == ("Europe/Paris", "subscriber")


def test_a_country_code_in_any_case_finds_its_most_populous_zone(compiled_project) -> None:
    landing = without_timezones(base_landing())
    landing["crm_subscribers"][0]["country"] = "us"
    assert zones(compiled_project, landing)["pat"] == ("America/New_York", "country")


def test_every_seeded_zone_is_an_iana_zone_python_and_duckdb_know() -> None:
    with open(SEED, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 240 and len({row["country_code"] for row in rows}) == len(rows)
    known = {name for (name,) in duckdb.connect().execute("select name from pg_timezone_names()").fetchall()}
    for row in rows:
        ZoneInfo(row["timezone"])
        assert row["timezone"] in known, row
