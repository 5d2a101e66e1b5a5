"""Free-form product categories fill the models' generic category slots (marts.category_slots):
by the landing folder's category_mapping.csv, else by revenue before the feature warm-up ends;
every other category counts towards the other bucket, never dropped."""

from __future__ import annotations

from datetime import datetime

import pytest

from ml.landing.categories import CATEGORY_MAPPING_FILE
from ml.privacy import crm_record_key, subscriber_key
from ml.propensity.features import prepare_features
from ml.vocabulary import CATEGORY_SLOT_COUNT, SIMULATOR_CATEGORIES
from tests.dbt.conftest import TEST_SECRET
from tests.dbt.landing_builder import EXTRACTED_AT, base_landing, write_landing

# Eight free-form categories (none of the simulator's six), and the connector's placeholder.
CATEGORIES = {
    "P1": "Garden & Patio", "P2": "Kitchen", "P3": "Books", "P4": "Pet Supplies", "P5": "Tools",
    "P6": "Lighting", "P7": "Stationery", "P8": "Late Bloomers", "P9": "uncategorised",
}
# Orders before 2024-03-29 (first data 2024-03-01 + 28 days) rank; P8 sells only later.
SALES = [("P1", "50"), ("P2", "40"), ("P3", "30"), ("P4", "20"), ("P5", "10"), ("P6", "5"), ("P7", "5"), ("P9", "999")]


def customer(crm_id: str) -> dict:
    return {"crm_id": crm_id, "email": "", "first_name": "", "signup_at": "2024-02-01 09:00:00", "country": "GB"}


def order(order_id: str, crm_id: str, product_id: str, ordered_at: str, amount: str) -> dict:
    return {"order_id": order_id, "crm_id": crm_id, "product_id": product_id, "ordered_at": ordered_at,
            "amount": amount, "currency": "USD"}


def free_form_landing() -> dict:
    assert not set(CATEGORIES.values()) & set(SIMULATOR_CATEGORIES)
    landing = base_landing()
    landing["crm_subscribers"] += [customer("C2"), customer("C3")]
    landing["products"] = [{"product_id": p, "category": c, "price": 1.0, "currency": "USD"} for p, c in CATEGORIES.items()]
    landing["orders"] = [order(f"R{p}", "C3", p, "2024-03-10 12:00:00", amount) for p, amount in SALES] + [
        order("O1", "C00000001", "P6", "2024-04-02 12:00:00", "5"),  # Pat: Lighting, twice
        order("O2", "C00000001", "P6", "2024-04-03 12:00:00", "5"),
        order("O3", "C00000001", "P8", "2024-04-04 12:00:00", "900"),
        order("O4", "C2", "P8", "2024-04-05 12:00:00", "900"),  # C2: only outside the slots
        order("O5", "C2", "P7", "2024-04-06 12:00:00", "5"),
    ]
    return landing


def slots_of(connection) -> list[tuple]:
    return connection.execute(
        "select category, slot, slot_label, assigned_by, ranking_revenue_usd, ranked_before "
        "from marts.category_slots order by slot_position, category").fetchall()


def test_without_a_mapping_the_top_categories_by_revenue_before_the_warm_up_fill_the_slots(compiled_project) -> None:
    write_landing(compiled_project.landing_dir, free_form_landing())
    connection = compiled_project.run(["category_slots", "scoring_features", "subscriber_profiles"])
    cut = datetime(2024, 3, 29)
    assert slots_of(connection) == [
        ("Garden & Patio", "category_slot_1", "Garden & Patio", "top_revenue", 50.0, cut),
        ("Kitchen", "category_slot_2", "Kitchen", "top_revenue", 40.0, cut),
        ("Books", "category_slot_3", "Books", "top_revenue", 30.0, cut),
        ("Pet Supplies", "category_slot_4", "Pet Supplies", "top_revenue", 20.0, cut),
        ("Tools", "category_slot_5", "Tools", "top_revenue", 10.0, cut),
        ("Lighting", "category_slot_6", "Lighting", "top_revenue", 5.0, cut),  # ties Stationery: by name
        # Outside the slots, kept: the seventh, a category first sold after the cut (900 USD
        # later does not move the ranking), and the connector's placeholder (never ranked).
        ("Late Bloomers", "category_other", "other", "top_revenue", None, cut),
        ("Stationery", "category_other", "other", "top_revenue", 5.0, cut),
        ("uncategorised", "category_other", "other", "top_revenue", None, cut),
    ]
    assert len({row[1] for row in slots_of(connection)} - {"category_other"}) == CATEGORY_SLOT_COUNT
    features = dict(connection.execute("select subscriber_key, top_category_slot from marts.scoring_features").fetchall())
    profiles = dict(connection.execute("select subscriber_key, top_category from marts.subscriber_profiles").fetchall())
    pat, only_outside = subscriber_key("pat.example@example.com", TEST_SECRET), crm_record_key("C2", TEST_SECRET)
    # Pat's Lighting (2 orders) beats Late Bloomers (1): a category none of the simulator's six
    # gives a category feature, and the model input codes it as slot 6 (not 'none').
    assert (features[pat], profiles[pat]) == ("category_slot_6", "Lighting")
    assert prepare_features(connection.execute(
        "select * from marts.scoring_features where top_category_slot = 'category_slot_6'").df())["top_category_slot"].tolist() == [5.0]
    # Only categories outside the slots: the other bucket, not 'none'.
    assert (features[only_outside], profiles[only_outside]) == ("category_other", "other")


@pytest.fixture(scope="module")
def mapped_project(tmp_path_factory):
    """The project compiled against a landing folder that has category_mapping.csv (dbt reads
    the file the orchestration names in the var category_mapping_csv)."""
    from tests.dbt.compiled_sql import compile_project

    work_dir = tmp_path_factory.mktemp("dbt_mapped")
    landing = work_dir / "landing"
    landing.mkdir()
    (landing / CATEGORY_MAPPING_FILE).write_text(
        "category,model_category\n"
        "Garden & Patio, home\nKitchen,home\nLighting,home\nBooks,media\nStationery,media\n")
    return compile_project(work_dir, landing, EXTRACTED_AT, TEST_SECRET)


def test_a_mapping_file_decides_the_slots_and_the_unlisted_go_to_other(mapped_project) -> None:
    write_landing(mapped_project.landing_dir, free_form_landing())
    connection = mapped_project.run(["category_slots", "scoring_features", "subscriber_profiles"])
    assert [row[:4] for row in slots_of(connection)] == [
        ("Garden & Patio", "category_slot_1", "home", "mapping_file"),
        ("Kitchen", "category_slot_1", "home", "mapping_file"),
        ("Lighting", "category_slot_1", "home", "mapping_file"),
        ("Books", "category_slot_2", "media", "mapping_file"),
        ("Stationery", "category_slot_2", "media", "mapping_file"),
        ("Late Bloomers", "category_other", "other", "mapping_file"),
        ("Pet Supplies", "category_other", "other", "mapping_file"),
        ("Tools", "category_other", "other", "mapping_file"),
        ("uncategorised", "category_other", "other", "mapping_file"),
    ]
    profiles = dict(connection.execute("select subscriber_key, top_category from marts.subscriber_profiles").fetchall())
    assert profiles[subscriber_key("pat.example@example.com", TEST_SECRET)] == "home"
    # C2: Late Bloomers (other) and Stationery (media), one each: the tie goes to the slot.
    assert profiles[crm_record_key("C2", TEST_SECRET)] == "media"
