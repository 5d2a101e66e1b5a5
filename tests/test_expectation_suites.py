"""The GX suites in expectations/: real GX artifacts, complete, and behaving as intended.

Structure tests read the JSON; behaviour tests run each suite through `ml.quality` on small,
hand-made frames: a clean frame must pass every expectation, a violation of a contract or
consent rule must block, and landing-style mess at ~1% per kind must not.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import great_expectations as gx
import numpy as np
import pandas as pd
import pytest

from ml import vocabulary
from ml.propensity.features import FEATURE_COLUMNS, LABEL_COLUMNS, SEGMENT_COLUMNS, TOP_CATEGORY_SLOT_LEVELS
from ml.duckdb_settings import DuckDBSettings
from ml.landing.contract import LANDING_COLUMNS, OPTIONAL_COLUMNS, landing_file_for_suite
from ml.privacy import subscriber_key
from ml.quality import WarehouseTable, load_suite, validate_table

REPO = Path(__file__).resolve().parents[1]
EXPECTATIONS_DIR = REPO / "expectations"
HILLSTROM_CSV = REPO / "data" / "hillstrom" / "hillstrom.csv"

# Every landing file of docs/data_contract.md and every mart of docs/warehouse.md.
EXPECTED_LANDING = {
    "crm_subscribers", "esp_subscribers", "consent_events", "suppressions", "products",
    "campaigns", "sends", "email_events", "orders", "hillstrom",
}
EXPECTED_MARTS = {
    "subscriber_identity_crosswalk", "consent_history", "suppression_list", "subscriber_eligibility",
    "subscriber_profiles", "training_examples", "scoring_features", "quarantine_rows",
    "landing_reconciliation", "hillstrom_arm_outcomes", "fct_sends", "fct_email_events", "fct_orders",
    "consent_records_untied", "fct_send_outcomes", "subscriber_contact_policy", "fct_order_returns",
    "category_slots",
}
# Structural expectations: the only error-severity kinds allowed on the dirty landing files.
STRUCTURAL_TYPES = {"expect_column_to_exist", "expect_column_values_to_be_in_type_list"}
EMAIL_TYPE = "expect_column_values_to_not_match_regex"


def raw_suite(table: str) -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{table}.json").read_text())


def columns_of(expectation: dict) -> list[str]:
    kwargs = expectation["kwargs"]
    named = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"), *kwargs.get("column_list", [])]
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict) and "column" in condition:
        named.append(condition["column"]["name"])
    return [column for column in named if column]


def existing_columns(suite: dict) -> set[str]:
    return {e["kwargs"]["column"] for e in suite["expectations"] if e["type"] == "expect_column_to_exist"}


# ------------------------------------------------------------------ structure ---


def test_there_is_exactly_one_suite_per_table_and_no_orphans() -> None:
    files = {path.stem for path in EXPECTATIONS_DIR.glob("*.json")}
    assert files == EXPECTED_LANDING | EXPECTED_MARTS
    assert {path.suffix for path in EXPECTATIONS_DIR.iterdir() if path.is_file()} == {".json"}


@pytest.mark.parametrize("table", sorted(EXPECTED_LANDING | EXPECTED_MARTS))
def test_suite_is_a_gx_suite_in_gx_json_format(table: str) -> None:
    raw = raw_suite(table)
    suite = gx.ExpectationSuite(**raw)  # GX's own constructor, no project code
    assert suite.name == table
    assert len(suite.expectations) == len(raw["expectations"]) > 0
    # Byte-for-byte what GX itself serialises: a real artifact, not a look-alike format.
    assert load_suite(EXPECTATIONS_DIR / f"{table}.json").to_json_dict() == raw


@pytest.mark.parametrize("table", sorted(EXPECTED_LANDING | EXPECTED_MARTS))
def test_every_expectation_has_an_explicit_severity(table: str) -> None:
    for expectation in raw_suite(table)["expectations"]:
        # GX defaults a missing severity to critical; the files must say it explicitly.
        assert expectation.get("severity") in {"critical", "warning"}, expectation


@pytest.mark.parametrize("table", sorted(EXPECTED_LANDING | EXPECTED_MARTS))
def test_every_referenced_column_is_also_required_to_exist(table: str) -> None:
    suite = raw_suite(table)
    # An optional landing column may be absent from a file; the landing step validates the
    # file with it added as nulls (ml.landing.contract.with_optional_columns).
    required = existing_columns(suite) | set(OPTIONAL_COLUMNS.get(table, ()))
    for expectation in suite["expectations"]:
        assert set(columns_of(expectation)) <= required, (table, expectation["type"], columns_of(expectation))


@pytest.mark.parametrize("table", sorted(LANDING_COLUMNS))
def test_landing_suites_require_the_contract_columns(table: str) -> None:
    assert existing_columns(raw_suite(table)) == set(LANDING_COLUMNS[table])


@pytest.mark.parametrize("table", sorted(LANDING_COLUMNS))
def test_dirty_landing_suites_only_block_on_structure(table: str) -> None:
    errors = {e["type"] for e in raw_suite(table)["expectations"] if e["severity"] == "critical"}
    assert "expect_column_to_exist" in errors
    assert errors <= STRUCTURAL_TYPES


@pytest.mark.parametrize("table", ["training_examples", "scoring_features"])
def test_feature_suites_follow_the_feature_contract(table: str) -> None:
    expected = {"subscriber_key", "cutoff_at", *FEATURE_COLUMNS}
    if table == "training_examples":
        expected |= {*SEGMENT_COLUMNS, *LABEL_COLUMNS}
    assert existing_columns(raw_suite(table)) == expected


@pytest.mark.parametrize("table", sorted(EXPECTED_MARTS))
def test_every_mart_string_column_is_checked_for_emails_at_error_level(table: str) -> None:
    email_checks = [e for e in raw_suite(table)["expectations"] if e["type"] == EMAIL_TYPE]
    assert email_checks and all(e["severity"] == "critical" for e in email_checks)
    checked = {e["kwargs"]["column"] for e in email_checks}
    assert set(string_columns(good_frames()[table])) <= checked


# ----------------------------------------------------------- small good frames ---


def key(n: int) -> str:
    return subscriber_key(f"person{n}@example.com", "test-secret")


def ts(*values: str | None) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="object"))


def string_columns(frame: pd.DataFrame) -> list[str]:
    return [column for column in frame.columns if frame[column].dtype == object and frame[column].map(
        lambda v: v is None or isinstance(v, str)).all()]


def landing_frames() -> dict[str, pd.DataFrame]:
    return {
        "crm_subscribers": pd.DataFrame({
            "crm_id": ["c1", "c2", "c3", "c4"],
            "email": [" Alice@Example.com", "bob@example.org ", "carol.lee7@example.net", "dan@example.com"],
            "first_name": ["Alice", "Bob", "Carol", "Dan"],
            "signup_at": ["2026-01-01 10:00:00", "2026-01-02T11:30:00", "2026-01-03 09:15:00.250", "2026-02-01 00:00:00"],
            "timezone": ["Europe/Berlin", "America/New_York", "UTC", "America/Argentina/Buenos_Aires"],
            "country": ["DE", "US", "GB", "AR"],
        }),
        "esp_subscribers": pd.DataFrame({
            "esp_id": ["e1", "e2", "e3"],
            "email": ["ALICE@example.com ", "erin@example.org", "frank@example.net"],
            "first_name": ["Alice", "Erin", "Frank"],
            "created_at": ["2026-01-01 10:05:00", "2026-01-05 08:00:00", "2026-03-01 12:00:00"],
            "timezone": ["Europe/Berlin", "Asia/Tokyo", "Etc/GMT+5"],
        }),
        "consent_events": pd.DataFrame({
            "consent_event_id": ["ce1", "ce2", "ce3", "ce4"],
            "source_system": ["crm", "esp", "esp", "crm"],
            "source_subscriber_id": ["c1", "e1", "e2", "c2"],
            "status": ["subscribed", "subscribed", "unsubscribed", "erased"],
            "recorded_at": ["2026-01-01 10:00:00", "2026-01-01 10:05:00", "2026-02-01 10:00:00", "2026-03-01 10:00:00"],
            "consent_source": ["double_opt_in", "signup_form", "preference_center", "legal_request"],
            "proof": ["doi_ab12", None, None, "ticket-7"],
        }),
        "suppressions": pd.DataFrame({
            "suppression_id": ["s1", "s2"],
            "source_system": ["esp", "crm"],
            "source_subscriber_id": ["e3", "c4"],
            "reason": ["hard_bounce", "complaint"],
            "suppressed_at": ["2026-03-05 00:00:00", "2026-03-06 00:00:00"],
        }),
        "products": pd.DataFrame({
            "product_id": ["p1", "p2", "p3"],
            "category": ["apparel", "toys", "home"],
            "price": [49.9, 12.0, 230.5],
            "currency": ["USD", "USD", "EUR"],
        }),
        "campaigns": pd.DataFrame({
            "campaign_id": ["k1", "k2"],
            "campaign_name": ["Spring apparel", "Newsletter"],
            "category": ["apparel", "general"],
            "subject_line": ["New in: spring jackets", "What's new this week"],
            "launched_at": ["2026-03-01 09:00:00", "2026-03-03 09:00:00"],
        }),
        "sends": pd.DataFrame({
            "send_id": ["sd1", "sd2", "sd3"],
            "campaign_id": ["k1", "k1", "k2"],
            "esp_id": ["e1", "e2", "e1"],
            "sent_at": ["2026-03-01 09:00:00", "2026-03-01 09:00:01", "2026-03-03 09:00:00"],
        }),
        "email_events": pd.DataFrame({
            "event_id": ["ev1", "ev2", "ev3", "ev4"],
            "send_id": ["sd1", "sd1", "sd2", "sd3"],
            "esp_id": ["e1", "e1", "e2", "e1"],
            "event_type": ["delivered", "open", "unsubscribe", "click"],
            "occurred_at": ["2026-03-01 09:00:05", "2026-03-01 12:00:00", "2026-03-01 13:00:00", "2026-03-03 10:00:00"],
        }),
        "orders": pd.DataFrame({
            "order_id": ["o1", "o2", "o3"],
            "crm_id": ["c1", "c1", "c3"],
            "product_id": ["p1", "p2", "p3"],
            "ordered_at": ["2026-03-02 15:00:00", "2026-03-10 15:00:00", "2026-03-11 08:00:00"],
            "amount": ["49.90", "-12", None],
            "currency": ["USD", "GBP", "EUR"],
            # Contract v2 order lines: a return (negative) and a line valued by quantity x unit price.
            "line_number": ["1", "1", "2"],
            "quantity": [None, "-1", "3"],
            "unit_price": [None, "12", "76.83"],
            "returns_order_id": [None, "o9", None],
        }),
    }


def eligibility_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "subscriber_key": [key(i) for i in range(5)],
        "is_eligible": [True, False, False, False, False],
        "exclusion_reason": [None, "unsubscribed", "erased", "no_consent_record", "suppressed_complaint"],
        "consent_status": ["subscribed", "unsubscribed", "erased", None, "subscribed"],
        "consent_valid_from": ts("2026-01-01", "2026-02-01", "2026-03-01", None, "2026-01-05"),
        "consent_source": ["double_opt_in", "preference_center", "legal_request", None, "signup_form"],
        "consent_proof": ["doi_ab12", None, "ticket-7", None, None],
        "as_of": ts(*["2026-06-30"] * 5),
    })


def contact_policy_frame() -> pd.DataFrame:
    """Contactable, capped, too soon, backed off, and excluded for consent first."""
    return pd.DataFrame({
        "subscriber_key": [key(i) for i in range(5)],
        "send_day": pd.to_datetime(["2026-07-01"] * 5).date,
        "is_contactable": [True, False, False, False, False],
        "exclusion_reason": [None, "frequency_cap", "minimum_gap", "fatigue_backoff", "unsubscribed"],
        "exclusion_reasons": [[], ["frequency_cap"], ["minimum_gap"], ["fatigue_backoff"], ["unsubscribed", "fatigue_backoff"]],
        "has_consent": [True, True, True, True, False],
        "sends_in_last_7_days": [1, 3, 1, 0, 2],
        "last_sent_at": ts("2026-06-27 08:00:00", "2026-06-30 08:00:00", "2026-06-30 20:00:00", "2026-06-20 08:00:00", None),
        "hours_since_last_send": [96.0, 24.0, 12.0, 264.0, None],
        "unopened_streak": [0, 1, 0, 5, 6],
        "backed_off_until": ts(None, None, None, "2026-07-04 08:00:00", "2026-07-02 08:00:00"),
        "send_window_opens_at": ts(*["2026-07-01 08:00:00"] * 5),
        "contact_policy_version": ["contact-policy-v1"] * 5,
        "as_of": ts(*["2026-06-30 23:59:59"] * 5),
    })


def profiles_frame() -> pd.DataFrame:
    eligibility = eligibility_frame()
    return pd.DataFrame({
        "subscriber_key": eligibility["subscriber_key"],
        "source_systems": ["crm+esp", "esp", "crm", "crm", "esp"],
        "first_seen_at": ts("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"),
        "timezone": ["Europe/Berlin", "UTC", "Asia/Tokyo", "UTC", None],
        "country": ["DE", None, "JP", "US", None],
        "consent_status": eligibility["consent_status"],
        "consent_recorded_at": eligibility["consent_valid_from"],
        "is_suppressed": [False, False, False, False, True],
        "suppression_reason": [None, None, None, None, "complaint"],
        "is_eligible": eligibility["is_eligible"],
        "exclusion_reason": eligibility["exclusion_reason"],
        "recency_days": [3.0, np.nan, 40.0, np.nan, 100.0],
        "frequency_orders": [2, 0, 1, 0, 1],
        "monetary_total": [62.4, 0.0, 20.0, 0.0, 5.5],
        "sends_7d": [1, 0, 0, 0, 1],
        "sends_30d": [4, 2, 0, 0, 3],
        "sends_90d": [10, 6, 1, 0, 9],
        "opens_7d": [1, 0, 0, 0, 0],
        "opens_30d": [3, 0, 0, 0, 1],
        "opens_90d": [7, 1, 0, 0, 2],
        "clicks_7d": [0, 0, 0, 0, 0],
        "clicks_30d": [1, 0, 0, 0, 0],
        "clicks_90d": [2, 0, 0, 0, 1],
        "lifecycle_stage": ["active", "at_risk", "lapsed", "never_engaged", "new"],
        "age_band": ["18-24", "65+", "unknown", "35-44", "unknown"],
        "gender": ["female", "male", "unknown", "non_binary", "not_stated"],
        "top_category_slot": ["category_slot_1", "none", "category_other", "none", "category_slot_6"],
        "top_category": ["apparel", "none", "other", "none", "garden"],
        "as_of": eligibility["as_of"],
    })


def feature_frame(n_subscribers: int, cutoffs: list[str], with_labels: bool) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = len(cutoffs) * n_subscribers
    sends_7d = rng.integers(0, 3, rows)
    sends_30d = sends_7d + rng.integers(0, 5, rows)
    sends_90d = sends_30d + rng.integers(0, 10, rows)
    opens_7d = rng.integers(0, 2, rows)
    opens_30d = opens_7d + rng.integers(0, 3, rows)
    opens_90d = opens_30d + rng.integers(0, 3, rows)
    clicks_7d = np.zeros(rows, dtype=int)
    clicks_30d = clicks_7d + rng.integers(0, 2, rows)
    clicks_90d = clicks_30d + rng.integers(0, 2, rows)
    orders_90d = rng.integers(0, 3, rows)
    monetary_90d = orders_90d * 25.0
    frame = pd.DataFrame({
        "subscriber_key": [key(i) for _ in cutoffs for i in range(n_subscribers)],
        "cutoff_at": ts(*[c for c in cutoffs for _ in range(n_subscribers)]),
        "tenure_days": rng.integers(0, 400, rows).astype(float),
        "consent_age_days": np.where(rng.random(rows) < 0.2, np.nan, rng.integers(0, 300, rows)),
        "orders_total": (orders_90d + rng.integers(0, 3, rows)).astype(float),
        "monetary_total": monetary_90d + 10.0,
        "orders_90d": orders_90d.astype(float),
        "monetary_90d": monetary_90d,
        "days_since_last_order": np.where(orders_90d > 0, rng.integers(0, 90, rows), np.nan),
        "sends_7d": sends_7d.astype(float),
        "sends_30d": sends_30d.astype(float),
        "sends_90d": sends_90d.astype(float),
        "opens_7d": opens_7d.astype(float),
        "opens_30d": opens_30d.astype(float),
        "opens_90d": opens_90d.astype(float),
        "clicks_7d": clicks_7d.astype(float),
        "clicks_30d": clicks_30d.astype(float),
        "clicks_90d": clicks_90d.astype(float),
        "open_rate_30d": np.where(sends_30d > 0, rng.random(rows), np.nan),
        "click_rate_30d": np.where(sends_30d > 0, rng.random(rows) / 2, np.nan),
        "open_rate_90d": np.where(sends_90d > 0, rng.random(rows), np.nan),
        "click_rate_90d": np.where(sends_90d > 0, rng.random(rows) / 2, np.nan),
        "days_since_last_open": np.where(opens_90d > 0, rng.integers(0, 90, rows), np.nan),
        "days_since_last_click": np.where(clicks_90d > 0, rng.integers(0, 90, rows), np.nan),
        "preferred_send_hour": np.where(opens_90d > 0, rng.integers(0, 24, rows), np.nan),
        "fatigue_score": sends_30d / (1 + opens_30d + 2 * clicks_30d),
        "top_category_slot": rng.choice(list(TOP_CATEGORY_SLOT_LEVELS), rows),
    })
    # A customer from signup, but every fourth row newsletter-only (null); no draw, so the
    # columns above keep their values.
    frame.insert(3, "customer_tenure_days", frame["tenure_days"].where(np.arange(rows) % 4 != 3))
    if with_labels:
        frame["lifecycle_stage"] = rng.choice(list(vocabulary.LIFECYCLE_STAGES), rows)
        frame["tenure_band"] = rng.choice(list(vocabulary.TENURE_BANDS), rows)
        frame["source_systems"] = rng.choice(["crm", "esp", "crm+esp"], rows)
        frame["label_purchase_14d"] = (np.arange(rows) % 10 == 0).astype(int)
        frame["label_click_7d"] = (np.arange(rows) % 4 == 0).astype(int)
        frame["label_churn_28d"] = np.where(np.arange(rows) < n_subscribers, np.arange(rows) % 2, np.nan)
    return frame


def send_outcomes_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "send_id": ["s1", "s2", "s3", "s4"],
        "campaign_id": ["cp1", "cp1", "cp2", None],
        "subscriber_key": [key(0), key(1), key(0), key(2)],
        "sent_at": ts("2026-03-01 10:00:00", "2026-03-01 10:00:00", "2026-06-25 09:00:00", "2026-03-02 10:00:00"),
        "delivered": [True, True, True, False],
        "bounced": [False, False, False, True],
        "opened": [True, False, False, False],
        "clicked": [True, False, False, False],
        "unsubscribed": [False, True, False, False],
        "complained": [False, False, False, False],
        "purchased": [True, False, True, False],
        "attributed_orders": [2, 0, 1, 0],
        "attributed_revenue": [59.98, 0.0, 12.5, 0.0],
        "observed_days": [14.0, 14.0, 5.625, 14.0],
        "window_complete": [True, True, False, True],
    })


def arm_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per Hillstrom arm: customers and mean visit, conversion and spend (the mart, in pandas)."""
    summary = df.groupby("segment", sort=True).agg(
        customers=("segment", "size"), visit_rate=("visit", "mean"),
        conversion_rate=("conversion", "mean"), spend_per_customer=("spend", "mean"),
    ).reset_index()
    return summary.astype({"customers": "int64"})


def mart_frames() -> dict[str, pd.DataFrame]:
    hillstrom = pd.read_csv(HILLSTROM_CSV)
    landing_files = [f"{table}.parquet" for table in LANDING_COLUMNS]
    return {
        "subscriber_identity_crosswalk": pd.DataFrame({
            "source_system": ["crm", "esp", "crm", "esp"],
            "source_id": ["c1", "e1", "c2", "e2"],
            "subscriber_key": [key(0), key(0), key(1), key(2)],
        }),
        "consent_history": pd.DataFrame({
            "subscriber_key": [key(0), key(0), key(1), key(2)],
            "consent_status": ["subscribed", "unsubscribed", "subscribed", "erased"],
            "valid_from": ts("2026-01-01", "2026-02-01", "2026-01-05", "2026-03-01"),
            "valid_to": ts("2026-02-01", None, None, None),
            "is_current": [False, True, True, True],
            "consent_source": ["double_opt_in", "email_event", "signup_form", "legal_request"],
            "proof": ["doi_ab12", "ev3", None, "ticket-7"],
            "source_system": ["crm", "esp", "esp", "crm"],
            "source_record_id": ["ce1", "ev3", "ce2", "ce4"],
        }),
        "suppression_list": pd.DataFrame({
            "subscriber_key": [key(3), key(3), key(4)],
            "suppression_reason": ["hard_bounce", "complaint", "legal_request"],
            "suppressed_at": ts("2026-03-05", "2026-03-07", "2026-04-01"),
            "source_record_id": ["s1", "ev9", "s3"],
        }),
        "subscriber_eligibility": eligibility_frame(),
        "subscriber_contact_policy": contact_policy_frame(),
        "subscriber_profiles": profiles_frame(),
        "training_examples": feature_frame(20, ["2026-05-04", "2026-05-11"], with_labels=True),
        "scoring_features": feature_frame(20, ["2026-06-30"], with_labels=False),
        "quarantine_rows": pd.DataFrame({
            "source_file": ["orders.parquet", "orders.parquet", "email_events.parquet"],
            "landing_batch": ["initial", "initial", "2026-07-03"],
            "source_row_key": [3, 17, 3],
            "source_record_id": ["o4", None, "ev4"],
            "reason_code": ["invalid_amount", "missing_required_field", "exact_duplicate"],
            "raw_values": [
                json.dumps({"order_id": "o4", "amount": "-3"}),
                json.dumps({"order_id": None, "amount": "12"}),
                json.dumps({"event_id": "ev4", "event_type": "open"}),
            ],
        }),
        "landing_reconciliation": pd.DataFrame({
            "source_file": landing_files + ["sends.parquet", "crm_subscribers.parquet"],
            "landing_batch": ["initial"] * 9 + ["2026-07-03", "2026-07-03"],
            "rows_in": [100] * 9 + [20, 5],
            "rows_staged": [97] * 9 + [20, 5],
            "rows_superseded": [0] * 9 + [0, 0],
            "rows_quarantined": [3] * 9 + [0, 0],
            "rows_exact_duplicate": [1] * 9 + [0, 0],
            "is_conserved": [True] * 11,
        }),
        "hillstrom_arm_outcomes": arm_summary(hillstrom),
        "fct_sends": pd.DataFrame({
            "send_id": ["s1", "s2", "s3"],
            "campaign_id": ["cp1", "cp1", "cp2"],
            "campaign_category": ["toys", "toys", None],
            "subscriber_key": [key(0), key(1), key(0)],
            "sent_at": ts("2026-03-01 10:00:00", "2026-03-01 10:00:00", "2026-04-01 09:00:00"),
        }),
        "fct_email_events": pd.DataFrame({
            "event_id": ["ev1", "ev2", "ev3"],
            "send_id": ["s1", "s1", None],
            "campaign_id": ["cp1", "cp1", None],
            "campaign_category": ["toys", "toys", None],
            "subscriber_key": [key(0), key(0), key(1)],
            "event_type": ["delivered", "open", "unsubscribe"],
            "occurred_at": ts("2026-03-01 10:01:00", "2026-03-01 19:30:00", "2026-03-02 08:00:00"),
        }),
        "fct_orders": pd.DataFrame({
            "order_id": ["o1", "o2"],
            "subscriber_key": [key(0), key(2)],
            "product_id": ["p1", None],
            "product_category": ["toys", None],
            "ordered_at": ts("2026-03-03", "2026-03-04"),
            "amount": [19.99, 10.0],
            "currency": ["EUR", "USD"],
            "amount_usd": [21.59, 10.0],
            "line_count": [1, 3],
        }),
        "fct_order_returns": pd.DataFrame({
            "order_id": ["C9", "o1"],
            "line_number": ["1", ""],
            "subscriber_key": [key(0), key(2)],
            "product_id": ["p1", "p2"],
            "returned_at": ts("2026-03-05", "2026-03-06"),
            "returned_amount": [5.0, 2.5],
            "currency": ["EUR", "USD"],
            "returned_amount_usd": [5.4, 2.5],
            "netted_order_id": ["o1", "o1"],
            "matched_by": ["latest_order_with_product", "same_order"],
        }),
        "consent_records_untied": pd.DataFrame({
            "source_file": ["suppressions.parquet"],
            "landing_batch": ["2026-07-03"],
            "source_row_key": [4],
            "source_record_id": ["s9"],
            "record_kind": ["suppression"],
            "reason_code": ["unknown_subscriber"],
        }),
        "fct_send_outcomes": send_outcomes_frame(),
        "category_slots": pd.DataFrame({
            "category": ["Garden & Patio", "toys", "uncategorised"],
            "slot": ["category_slot_1", "category_slot_2", "category_other"],
            "slot_position": [1, 2, 7],
            "slot_label": ["Garden & Patio", "toys", "other"],
            "assigned_by": ["top_revenue"] * 3,
            "ranking_revenue_usd": [120.5, 80.0, None],
            "ranked_before": ts("2026-03-01", "2026-03-01", "2026-03-01"),
        }),
        "_hillstrom": hillstrom,
    }


_GOOD_FRAMES: dict[str, pd.DataFrame] = {}


def good_frames() -> dict[str, pd.DataFrame]:
    if not _GOOD_FRAMES:
        frames = {**landing_frames(), **mart_frames()}
        frames["hillstrom"] = frames.pop("_hillstrom")
        _GOOD_FRAMES.update(frames)
    return {table: frame.copy() for table, frame in _GOOD_FRAMES.items()}


def validate(table: str, frame: pd.DataFrame):
    """Each suite runs as the pipeline runs it: a landing suite on the frame written to a
    landing file (in DuckDB, or in pandas for VALIDATED_IN_PANDAS), a mart suite inside DuckDB
    on the frame written to a warehouse file."""
    folder = Path(tempfile.mkdtemp(prefix="suite-"))
    if table == "hillstrom":
        return validate_table(frame, EXPECTATIONS_DIR / f"{table}.json", table_name=table)
    if table not in EXPECTED_MARTS:
        frame.to_parquet(folder / f"{table}.parquet", index=False)
        data = landing_file_for_suite(folder / f"{table}.parquet", table, DuckDBSettings())
        return validate_table(data, EXPECTATIONS_DIR / f"{table}.json", table_name=table)
    database = folder / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema marts")
        connection.register("frame", frame)
        connection.execute(f"create table marts.{table} as select * from frame")
    relation = f'"warehouse"."marts"."{table}"'
    return validate_table(WarehouseTable(database, relation), EXPECTATIONS_DIR / f"{table}.json", table_name=table)


# ------------------------------------------------------------------ behaviour ---


@pytest.mark.parametrize("table", sorted(EXPECTED_LANDING | EXPECTED_MARTS))
def test_a_clean_frame_passes_every_expectation(table: str) -> None:
    outcome = validate(table, good_frames()[table])
    assert outcome.error_failures == () and outcome.warning_failures == (), outcome.to_metadata()
    assert outcome.success and not outcome.blocking_failed
    assert outcome.evaluated_expectations == len(raw_suite(table)["expectations"])


def corrupt(frame: pd.DataFrame, column: str, rows: np.ndarray, value) -> None:
    frame.loc[rows, column] = value


def test_landing_mess_at_about_one_percent_per_kind_neither_blocks_nor_warns() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    crm = pd.DataFrame({
        "crm_id": [f"c{i}" for i in range(n)],
        "email": [f"person{i}@example.com" for i in range(n)],
        "first_name": ["Alex"] * n,
        "signup_at": ["2026-01-01 10:00:00"] * n,
        "timezone": ["Europe/Berlin"] * n,
        "country": ["DE"] * n,
    })
    kinds = np.array_split(rng.permutation(n)[: 6 * 20], 6)  # 1% of rows per kind, disjoint
    corrupt(crm, "email", kinds[0], "not-an-email")
    corrupt(crm, "signup_at", kinds[1], "2026-13-45 25:61:00")
    corrupt(crm, "timezone", kinds[2], "GMT+25")
    corrupt(crm, "crm_id", kinds[3], None)
    crm.loc[kinds[4], "crm_id"] = crm.loc[kinds[4] - 1, "crm_id"].to_numpy()  # reused ids
    exact_copies = crm.loc[kinds[5]]
    crm = pd.concat([crm, exact_copies], ignore_index=True)
    outcome = validate("crm_subscribers", crm)
    assert not outcome.blocking_failed
    assert outcome.warning_failures == (), outcome.to_metadata()


def test_unusually_high_landing_mess_warns_without_blocking() -> None:
    orders = good_frames()["orders"]
    orders = pd.concat([orders] * 10, ignore_index=True)
    orders["order_id"] = [f"o{i}" for i in range(len(orders))]
    orders.loc[:9, "amount"] = "12,50"  # a third of all amounts: a decimal comma
    outcome = validate("orders", orders)
    assert not outcome.blocking_failed
    (warning,) = outcome.warning_failures
    assert (warning["column"], warning["unexpected_count"]) == ("amount", 10)


def test_a_missing_contract_column_blocks_landing() -> None:
    outcome = validate("orders", good_frames()["orders"].drop(columns=["currency"]))
    assert outcome.blocking_failed
    assert ("expect_column_to_exist", "currency") in {
        (f["expectation_type"], f["column"]) for f in outcome.error_failures
    }


def test_a_text_price_blocks_products() -> None:
    products = good_frames()["products"]
    products["price"] = products["price"].astype(str)
    outcome = validate("products", products)
    assert [f["expectation_type"] for f in outcome.error_failures] == ["expect_column_values_to_be_in_type_list"]


def error_pairs(outcome) -> set[tuple[str, str | None, str | None]]:
    return {(f["expectation_type"], f["column"], f["condition"]) for f in outcome.error_failures}


def test_an_eligible_but_unsubscribed_subscriber_blocks() -> None:
    frame = good_frames()["subscriber_eligibility"]
    frame.loc[1, ["is_eligible", "exclusion_reason"]] = [True, None]  # consent_status stays unsubscribed
    outcome = validate("subscriber_eligibility", frame)
    assert outcome.blocking_failed
    assert error_pairs(outcome) == {("expect_column_values_to_be_in_set", "consent_status", "is_eligible == True")}
    (failure,) = outcome.error_failures
    assert failure["unexpected_count"] == 1 and failure["unexpected_percent"] == pytest.approx(50.0)


@pytest.mark.parametrize("table", ["subscriber_eligibility", "subscriber_profiles"])
def test_an_erased_ledger_must_exclude_as_erased_but_a_sticky_erasure_may_outrank_the_ledger(table: str) -> None:
    # A person erased in a quarantined or future-dated record: excluded as erased while the
    # clean ledger still says subscribed (seen at 20,000 generated people). Valid.
    frame = good_frames()[table]
    frame.loc[4, ["exclusion_reason", "consent_status"]] = ["erased", "subscribed"]
    assert not validate(table, frame).blocking_failed
    # An erased ledger excluded for anything but erasure: blocks.
    frame = good_frames()[table]
    frame.loc[2, "exclusion_reason"] = "unsubscribed"
    outcome = validate(table, frame)
    assert ("expect_column_values_to_be_in_set", "exclusion_reason", "consent_status == erased") in error_pairs(outcome)


def test_an_excluded_subscriber_without_a_reason_blocks() -> None:
    frame = good_frames()["subscriber_eligibility"]
    frame.loc[4, "exclusion_reason"] = None
    outcome = validate("subscriber_eligibility", frame)
    assert ("expect_column_values_to_not_be_null", "exclusion_reason", "is_eligible == False") in error_pairs(outcome)


def test_an_eligible_but_suppressed_profile_blocks() -> None:
    frame = good_frames()["subscriber_profiles"]
    frame.loc[0, ["is_suppressed", "suppression_reason"]] = [True, "complaint"]
    outcome = validate("subscriber_profiles", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_in_set", "is_suppressed", "is_eligible == True")}


def test_two_current_consent_rows_for_one_subscriber_block() -> None:
    frame = good_frames()["consent_history"]
    frame.loc[0, ["is_current", "valid_to"]] = [True, pd.NaT]
    outcome = validate("consent_history", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_unique", "subscriber_key", "is_current == True")}


def test_a_window_ending_before_it_starts_blocks() -> None:
    frame = good_frames()["consent_history"]
    frame.loc[0, "valid_to"] = pd.Timestamp("2025-12-01")
    outcome = validate("consent_history", frame)
    assert ("expect_column_pair_values_a_to_be_greater_than_b", "valid_to,valid_from", None) in error_pairs(outcome)


def test_a_rate_above_one_blocks_training() -> None:
    frame = good_frames()["training_examples"]
    frame.loc[0, "open_rate_30d"] = 1.5
    outcome = validate("training_examples", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_between", "open_rate_30d", None)}


def test_a_category_in_a_slot_the_models_do_not_have_blocks() -> None:
    frame = good_frames()["category_slots"]
    frame.loc[0, "slot"] = "garden"
    outcome = validate("category_slots", frame)
    assert outcome.blocking_failed
    assert [f["expectation_type"] for f in outcome.error_failures] == ["expect_column_values_to_be_in_set"]


def test_scoring_features_must_have_one_cutoff_and_unique_subscribers() -> None:
    frame = good_frames()["scoring_features"]
    frame.loc[0, "cutoff_at"] = pd.Timestamp("2026-06-29")
    frame.loc[1, "subscriber_key"] = frame.loc[2, "subscriber_key"]
    outcome = validate("scoring_features", frame)
    assert {f["expectation_type"] for f in outcome.error_failures} == {
        "expect_column_unique_value_count_to_be_between",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
    }


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("subscriber_identity_crosswalk", "source_id"),
        ("consent_history", "proof"),
        ("subscriber_eligibility", "consent_proof"),
        ("quarantine_rows", "raw_values"),
    ],
)
def test_an_email_anywhere_in_a_mart_blocks_and_is_not_echoed(table: str, column: str) -> None:
    frame = good_frames()[table]
    leaked = "leaked.person@example.com"
    frame.loc[0, column] = json.dumps({"email": leaked}) if column == "raw_values" else leaked
    outcome = validate(table, frame)
    assert (EMAIL_TYPE, column, None) in error_pairs(outcome)
    assert "leaked.person" not in json.dumps(outcome.to_metadata()) + repr(outcome)


def test_quarantine_of_a_subscriber_file_in_the_main_warehouse_blocks() -> None:
    frame = good_frames()["quarantine_rows"]
    frame.loc[0, "source_file"] = "crm_subscribers.parquet"
    outcome = validate("quarantine_rows", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_match_regex", "source_file", None)}


def test_an_unconserved_landing_file_blocks() -> None:
    frame = good_frames()["landing_reconciliation"]
    frame.loc[2, "is_conserved"] = False
    outcome = validate("landing_reconciliation", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_in_set", "is_conserved", None)}


def test_hillstrom_outcomes_off_the_published_means_block() -> None:
    frame = good_frames()["hillstrom_arm_outcomes"]
    frame.loc[frame["segment"] == "No E-Mail", "visit_rate"] += 0.001
    outcome = validate("hillstrom_arm_outcomes", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_between", "visit_rate", "segment == No E-Mail")}


def test_a_purchase_without_an_attributed_order_blocks_send_outcomes() -> None:
    frame = good_frames()["fct_send_outcomes"]
    frame.loc[1, "purchased"] = True  # attributed_orders stays 0
    outcome = validate("fct_send_outcomes", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_between", "attributed_orders", "purchased == True")}


def test_a_window_observed_longer_than_the_attribution_window_blocks_send_outcomes() -> None:
    frame = good_frames()["fct_send_outcomes"]
    frame.loc[0, "observed_days"] = 14.5
    outcome = validate("fct_send_outcomes", frame)
    assert error_pairs(outcome) == {("expect_column_values_to_be_between", "observed_days", None)}


def test_an_incomplete_window_observed_whole_blocks_send_outcomes() -> None:
    frame = good_frames()["fct_send_outcomes"]
    frame.loc[2, "observed_days"] = 14.0  # window_complete stays False
    outcome = validate("fct_send_outcomes", frame)
    assert error_pairs(outcome) == {
        ("expect_column_values_to_be_in_set", "window_complete", "observed_days == 14.0"),
        ("expect_column_values_to_be_between", "observed_days", "window_complete == False"),
    }


@pytest.mark.parametrize("table", ["quarantine_rows", "landing_reconciliation", "consent_records_untied"])
def test_a_landing_batch_that_is_neither_initial_nor_a_day_blocks(table: str) -> None:
    frame = good_frames()[table]
    frame.loc[0, "landing_batch"] = "2026-7-3"
    outcome = validate(table, frame)
    assert error_pairs(outcome) == {("expect_column_values_to_match_regex", "landing_batch", None)}


def test_one_row_twice_in_the_quarantine_blocks_but_the_same_row_number_in_another_batch_does_not() -> None:
    frame = good_frames()["quarantine_rows"]
    frame.loc[2, ["source_file", "landing_batch", "source_row_key"]] = ["orders.parquet", "2026-07-03", 3]
    assert not validate("quarantine_rows", frame).blocking_failed
    frame.loc[2, "landing_batch"] = "initial"
    outcome = validate("quarantine_rows", frame)
    assert error_pairs(outcome) == {
        ("expect_compound_columns_to_be_unique", "source_file,landing_batch,source_row_key", None)
    }


def test_a_quarantined_row_whose_raw_values_are_not_json_blocks() -> None:
    frame = good_frames()["quarantine_rows"]
    frame.loc[1, "raw_values"] = '{"order_id": "A1", "amount": '  # cut short
    outcome = validate("quarantine_rows", frame)
    (failure,) = outcome.error_failures
    assert failure["expectation_type"] == "unexpected_rows_expectation"
    assert failure["observed_value"] == 1
