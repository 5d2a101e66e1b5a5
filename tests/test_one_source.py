"""One source for every list: where a copy must remain (SQL cannot import Python, a GX suite
is JSON, the docs are prose), this proves the copy equals the source, ml/vocabulary.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from ml import vocabulary

REPO = Path(__file__).resolve().parents[1]
DBT_VARS = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]

# Python list -> the dbt var that is its SQL side.
DBT_COPIES = {
    "REASON_CODES": "reason_codes",
    "EXCLUSION_REASONS": "exclusion_reasons",
    "CONTACT_EXCLUSION_REASONS": "contact_exclusion_reasons",
    "CONSENT_STATUSES": "consent_statuses",
    "SUPPRESSION_REASONS": "suppression_reasons",
    "EMAIL_EVENT_TYPES": "email_event_types",
    "CURRENCIES": "accepted_currencies",
    "CATEGORY_SLOTS": "category_slots",
    "CATEGORY_SLOT_SOURCES": "category_slot_sources",
    "LIFECYCLE_STAGES": "lifecycle_stages",
    "TENURE_BANDS": "tenure_bands",
    "AGE_BANDS": "age_bands",
    "GENDERS": "genders",
    "SOURCE_SYSTEMS": "source_systems",
    "RETURN_MATCHES": "return_matches",
}

# (suite, column) -> the value set it must hold. Every in-set expectation on one of these
# columns is listed, so a new suite cannot hold a private copy unnoticed.
TOP_SLOT_LEVELS = (*vocabulary.CATEGORY_SLOTS, vocabulary.OTHER_CATEGORY_SLOT, "none")
GX_COPIES = {
    ("quarantine_rows", "reason_code"): vocabulary.REASON_CODES,
    ("consent_records_untied", "reason_code"): vocabulary.REASON_CODES,
    ("subscriber_eligibility", "exclusion_reason"): vocabulary.EXCLUSION_REASONS,
    ("subscriber_profiles", "exclusion_reason"): vocabulary.EXCLUSION_REASONS,
    ("subscriber_contact_policy", "exclusion_reason"): (*vocabulary.EXCLUSION_REASONS, *vocabulary.CONTACT_EXCLUSION_REASONS),
    ("consent_events", "status"): vocabulary.CONSENT_STATUSES,
    ("consent_history", "consent_status"): vocabulary.CONSENT_STATUSES,
    ("subscriber_eligibility", "consent_status"): vocabulary.CONSENT_STATUSES,
    ("subscriber_profiles", "consent_status"): vocabulary.CONSENT_STATUSES,
    ("suppressions", "reason"): vocabulary.SUPPRESSION_REASONS,
    ("suppression_list", "suppression_reason"): vocabulary.SUPPRESSION_REASONS,
    ("subscriber_profiles", "suppression_reason"): vocabulary.SUPPRESSION_REASONS,
    ("email_events", "event_type"): vocabulary.EMAIL_EVENT_TYPES,
    ("fct_email_events", "event_type"): vocabulary.EMAIL_EVENT_TYPES,
    ("orders", "currency"): vocabulary.CURRENCIES,
    ("fct_orders", "currency"): vocabulary.CURRENCIES,
    ("fct_order_returns", "currency"): vocabulary.CURRENCIES,
    ("fct_order_returns", "matched_by"): vocabulary.RETURN_MATCHES,
    ("subscriber_profiles", "top_category_slot"): TOP_SLOT_LEVELS,
    ("training_examples", "top_category_slot"): TOP_SLOT_LEVELS,
    ("scoring_features", "top_category_slot"): TOP_SLOT_LEVELS,
    ("category_slots", "slot"): (*vocabulary.CATEGORY_SLOTS, vocabulary.OTHER_CATEGORY_SLOT),
    ("category_slots", "assigned_by"): vocabulary.CATEGORY_SLOT_SOURCES,
    ("subscriber_profiles", "lifecycle_stage"): vocabulary.LIFECYCLE_STAGES,
    ("training_examples", "lifecycle_stage"): vocabulary.LIFECYCLE_STAGES,
    ("subscriber_profiles", "age_band"): vocabulary.AGE_BANDS,
    ("subscriber_profiles", "gender"): vocabulary.GENDERS,
    ("training_examples", "tenure_band"): vocabulary.TENURE_BANDS,
    ("consent_events", "source_system"): vocabulary.SOURCE_SYSTEMS,
    ("suppressions", "source_system"): vocabulary.SOURCE_SYSTEMS,
    ("consent_history", "source_system"): vocabulary.SOURCE_SYSTEMS,
    ("subscriber_identity_crosswalk", "source_system"): vocabulary.SOURCE_SYSTEMS,
}
# Columns whose in-set expectations are deliberate subsets (a rule, not a copy of the list).
SUBSET_RULES = {"consent_status", "exclusion_reason"}
VOCABULARY_COLUMNS = {column for _, column in GX_COPIES}


def in_set_expectations():
    for path in sorted((REPO / "expectations").glob("*.json")):
        for expectation in json.loads(path.read_text())["expectations"]:
            if expectation["type"] == "expect_column_values_to_be_in_set":
                yield path.stem, expectation["kwargs"]["column"], expectation["kwargs"]["value_set"]


@pytest.mark.parametrize("name, var", sorted(DBT_COPIES.items()))
def test_every_dbt_var_list_equals_its_python_source(name: str, var: str) -> None:
    assert DBT_VARS[var] == list(getattr(vocabulary, name))


def test_the_category_slots_are_one_definition_in_python_dbt_and_the_feature_contract() -> None:
    """The slot count and names (ml.vocabulary) are dbt's vars, and the model's feature
    levels; the simulator's categories fill the slots one to one."""
    from ml.propensity.features import TOP_CATEGORY_SLOT_LEVELS

    assert len(vocabulary.CATEGORY_SLOTS) == vocabulary.CATEGORY_SLOT_COUNT == len(DBT_VARS["category_slots"])
    assert DBT_VARS["category_other_slot"] == vocabulary.OTHER_CATEGORY_SLOT
    assert DBT_VARS["category_other_label"] == vocabulary.OTHER_CATEGORY_LABEL
    assert DBT_VARS["uncategorised_category"] == vocabulary.UNCATEGORISED
    assert TOP_CATEGORY_SLOT_LEVELS == TOP_SLOT_LEVELS
    assert len(vocabulary.SIMULATOR_CATEGORIES) == vocabulary.CATEGORY_SLOT_COUNT
    assert "product_categories" not in DBT_VARS  # no closed list of category names left in SQL


def test_the_category_ranking_waits_for_the_feature_warm_up() -> None:
    """marts.category_slots ranks on orders before the first data day + FEATURE_WARM_UP_DAYS,
    the earliest training cutoff, so no cutoff's label window feeds the ranking."""
    from ml.propensity.features import FEATURE_WARM_UP_DAYS

    sql = (REPO / "dbt_project" / "models" / "marts" / "features" / "category_slots.sql").read_text()
    assert re.findall(r"first_data_day\(\) \}\} \+ to_days\((\d+)\)", sql) == [str(FEATURE_WARM_UP_DAYS)]


def test_the_accepted_timestamp_shapes_are_one_list_in_python_and_dbt() -> None:
    from ml.landing.contract import TIMESTAMP_PATTERNS

    assert DBT_VARS["timestamp_patterns"] == TIMESTAMP_PATTERNS


def test_every_gx_value_set_of_a_vocabulary_column_equals_its_source() -> None:
    seen = set()
    for suite, column, value_set in in_set_expectations():
        if column not in VOCABULARY_COLUMNS:
            continue
        if column in SUBSET_RULES and (suite, column) in GX_COPIES and len(value_set) < len(GX_COPIES[(suite, column)]):
            assert set(value_set) < set(GX_COPIES[(suite, column)]), (suite, column)
            continue
        assert (suite, column) in GX_COPIES, f"{suite}.{column} holds a value set that no source backs"
        assert value_set == list(GX_COPIES[(suite, column)]), (suite, column)
        seen.add((suite, column))
    assert seen == set(GX_COPIES), set(GX_COPIES) - seen


def test_the_attribution_window_is_one_number_in_python_dbt_and_the_outcome_suite() -> None:
    """ATTRIBUTION_WINDOW_DAYS is the dbt var marts.fct_send_outcomes attributes with, and
    every bound on observed_days in that mart's GX suite."""
    assert DBT_VARS["attribution_window_days"] == vocabulary.ATTRIBUTION_WINDOW_DAYS
    suite = json.loads((REPO / "expectations" / "fct_send_outcomes.json").read_text())
    bounds = []
    for expectation in suite["expectations"]:
        kwargs = expectation["kwargs"]
        if kwargs.get("column") == "observed_days" and "max_value" in kwargs:
            bounds.append(kwargs["max_value"])
        condition = kwargs.get("row_condition")
        if isinstance(condition, dict) and condition["column"]["name"] == "observed_days":
            bounds.append(condition["parameter"])
    assert len(bounds) >= 2 and set(bounds) == {vocabulary.ATTRIBUTION_WINDOW_DAYS}, bounds


def test_the_documented_reason_codes_are_the_codes_in_priority_order() -> None:
    contract = (REPO / "docs" / "data_contract.md").read_text()
    table = contract.split("## Reason codes", 1)[1].split("| code |", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)
    assert documented == list(vocabulary.REASON_CODES)


def test_per_model_reason_code_tests_only_name_known_codes() -> None:
    """Staging and intermediate models accept a subset each; none may invent a code."""
    for path in (REPO / "dbt_project" / "models").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for column in model.get("columns", []):
                if column["name"] not in ("reason_code", "row_issue"):
                    continue
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test:
                        values = test["accepted_values"]["arguments"]["values"]
                        if isinstance(values, list):
                            assert set(values) <= set(vocabulary.REASON_CODES), (path.name, model["name"], values)


def test_the_simulator_injects_every_code_but_value_too_long_in_priority_order() -> None:
    from ml.simulator import CORRUPTION_KINDS

    assert CORRUPTION_KINDS == tuple(c for c in vocabulary.REASON_CODES if c != "value_too_long")


def test_the_training_cutoff_rule_in_sql_uses_the_python_numbers() -> None:
    """training_examples.sql's weekly cadence, feature warm-up and label lag are the constants
    that ml.propensity.training.history_days_needed reads (the failure message's days)."""
    from ml.propensity.features import CUTOFF_EVERY_DAYS, EXAMPLE_LABEL_DAYS, FEATURE_WARM_UP_DAYS

    sql = (REPO / "dbt_project" / "models" / "marts" / "features" / "training_examples.sql").read_text()
    cutoffs = sql.split("cutoffs as (", 1)[1].split("),", 1)[0]
    assert set(re.findall(r"(\d+) \* weeks_back\.k", cutoffs)) == {str(CUTOFF_EVERY_DAYS)}
    assert re.findall(r"// (\d+) \+ 1", cutoffs) == [str(CUTOFF_EVERY_DAYS)]
    assert re.findall(r"\+ to_days\((\d+)\) <= bounds\.as_of", cutoffs) == [str(EXAMPLE_LABEL_DAYS)]
    assert re.findall(r">= bounds\.first_data_day \+ to_days\((\d+)\)", cutoffs) == [str(FEATURE_WARM_UP_DAYS)]


def test_a_dbt_build_by_hand_gets_the_pipelines_duckdb_memory_limit_and_spill_folder() -> None:
    from ml.duckdb_settings import DuckDBSettings
    from orchestration.resources import DUCKDB_SPILL_DIRNAME

    settings = yaml.safe_load((REPO / "dbt_project" / "profiles.yml").read_text())
    profile = settings["email_pipeline"]["outputs"]["dev"]["config_options"]
    default = lambda name: re.search(r"var\('duckdb_" + name + r"', '([^']*)'\)", profile[name]).group(1)  # noqa: E731
    assert default("memory_limit") == DuckDBSettings().memory_limit
    assert Path(default("temp_directory")).name == DUCKDB_SPILL_DIRNAME
    assert default("threads") == str(settings["email_pipeline"]["outputs"]["dev"]["threads"])


def test_the_landing_verdicts_default_share_is_the_pipelines() -> None:
    from orchestration.resources import PipelineSettings

    models = yaml.safe_load((REPO / "dbt_project" / "models" / "intermediate" / "_intermediate__models.yml").read_text())
    (judged,) = [m for m in models["models"] if m["name"] == "int_landing_files_judged"]
    default = re.search(r"var\('max_quarantine_share', ([0-9.]+)\)", judged["config"]["max_quarantine_share"]).group(1)
    assert float(default) == PipelineSettings().max_quarantine_share


def test_the_revoking_email_event_types_are_the_ones_dbt_reads_as_revocations():
    fragments = DBT_VARS["revocation_event_type_fragments"]
    revoking = tuple(t for t in vocabulary.EMAIL_EVENT_TYPES if any(f in t for f in fragments))
    assert revoking == vocabulary.REVOKING_EMAIL_EVENT_TYPES
