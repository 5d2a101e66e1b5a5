"""What users see in the Dagster UI (issue 14): every asset of the ML tail and every mart is
guarded by a check, groups have the names people use, Python assets carry a code version,
and MLflow pages are links."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from orchestration.dbt_project import email_dbt_project, mart_relations

# The groups of the graph, as a person would name them.
GROUPS = {"landing", "staging", "marts", "quality", "models", "campaign"}
# The ML tail: everything the models, scoring, decisioning and experiments produce, and the
# outcomes they are judged on.
ML_TAIL_GROUPS = {"models", "campaign"}
OUTCOMES = dg.AssetKey("fct_send_outcomes")


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from orchestration.definitions import defs as build_defs

    return build_defs()


@pytest.fixture(scope="module")
def checked(defs) -> dict[dg.AssetKey, set[str]]:
    found: dict[dg.AssetKey, set[str]] = {}
    for key in defs.resolve_asset_graph().asset_check_keys:
        found.setdefault(key.asset_key, set()).add(key.name)
    return found


def test_every_asset_of_the_ml_tail_has_a_check(defs, checked):
    tail = {spec.key for spec in defs.resolve_all_asset_specs() if spec.group_name in ML_TAIL_GROUPS} | {OUTCOMES}
    assert len(tail) >= 15
    assert {key.to_user_string() for key in tail if not checked.get(key)} == set()
    # The checks the issue asked for, by name.
    assert {"scores_in_range", "one_score_per_eligible_person", "scores_not_collapsed"} <= checked[
        dg.AssetKey("propensity_scores")]
    assert "evidently_tests" in checked[dg.AssetKey("feature_drift_report")]
    assert "every_planned_send_has_an_outcome" in checked[OUTCOMES]
    assert "sample_ratio_matches_the_design" in checked[dg.AssetKey("experiment_report")]


def test_every_mart_of_the_manifest_has_its_great_expectations_check(checked):
    marts = mart_relations(email_dbt_project().manifest_path)
    assert len(marts) >= 14
    missing = [mart for mart in marts if f"gx_{mart}" not in checked.get(dg.AssetKey(mart), set())]
    assert missing == []


def test_groups_read_as_people_say_them(defs):
    groups = {spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups == GROUPS


def test_every_python_asset_carries_the_commit_as_code_version(defs):
    from orchestration.resources import code_version

    commit = code_version()
    specs = list(defs.resolve_all_asset_specs())
    python = [spec for spec in specs if "dbt" not in spec.kinds]
    assert len(python) > 20
    assert {spec.key.to_user_string() for spec in python if spec.code_version != commit} == set()
    # dbt models keep dagster-dbt's checksum of their SQL, one per model.
    dbt_versions = [spec.code_version for spec in specs if "dbt" in spec.kinds]
    assert all(dbt_versions) and commit not in dbt_versions


def test_mlflow_pages_are_links():
    from orchestration.links import key_figures_table, mlflow_run_url, model_version_url

    assert mlflow_run_url("3", "abc") == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert model_version_url("purchase_propensity", 2) == "http://127.0.0.1:5000/#/models/purchase_propensity/versions/2"
    table = key_figures_table({"test AUC": "0.7833", "gate": "a|b"})
    assert table.value == "| figure | value |\n|---|---|\n| test AUC | 0.7833 |\n| gate | a/b |"


def test_a_failing_evidently_test_is_named_in_the_check():
    from ml.propensity.drift import ColumnDrift, DriftSummary
    from orchestration.defs.drift import evidently_test_failures

    def summary(drifted: dict[str, bool], dataset_drift: bool) -> DriftSummary:
        columns = {name: ColumnDrift("wasserstein", 0.1, 0.25 if flag else 0.01, flag) for name, flag in drifted.items()}
        share = sum(drifted.values()) / len(drifted)
        return DriftSummary(len(columns), sum(drifted.values()), share, 0.3, dataset_drift, columns, {},
                            Path("r.html"), 10, 10, 10, 10)

    assert evidently_test_failures(summary({"a": False, "b": False}, False)) == []
    assert evidently_test_failures(summary({"a": True, "b": False, "c": False}, False)) == [
        "a: wasserstein 0.2500 (threshold 0.1)"]
    assert evidently_test_failures(summary({"a": True, "b": True}, True))[0] == "share of drifted columns 100% >= 30%"


def test_the_planned_sends_page_plots_the_sends_of_each_day_up_to_the_send_day(tmp_path):
    from datetime import date

    import pandas as pd

    from orchestration import tables
    from orchestration.defs.campaign import PLOTTED_SEND_DAYS, sends_per_day
    from orchestration.resources import PipelineSettings

    warehouse = PipelineSettings(state_dir=str(tmp_path)).warehouse()
    def plan(planned: dict) -> None:
        warehouse.write_table(pd.DataFrame({"planned_for": [pd.Timestamp(day) for day, n in planned.items() for _ in range(n)]}),
                              tables.PLANNED_SENDS)

    july = {date(2026, 7, 1): 3, date(2026, 7, 2): 2, date(2026, 7, 4): 1, date(2026, 7, 5): 4}
    plan(july)
    # A young state: from the first plan on, a day without sends as zero, nothing after the send day.
    days, counts = sends_per_day(warehouse, date(2026, 7, 4))
    assert [day.day for day in days] == [1, 2, 3, 4] and counts == [3, 2, 0, 1]
    plan({date(2026, 5, 1): 9, **july})
    # Never more than PLOTTED_SEND_DAYS days back.
    days, counts = sends_per_day(warehouse, date(2026, 5, 20))
    assert (days[0], len(days), counts[0], sum(counts)) == (date(2026, 5, 1), 20, 9, 9)
    days, counts = sends_per_day(warehouse, date(2026, 7, 5))
    assert len(days) == PLOTTED_SEND_DAYS and days[-1] == date(2026, 7, 5) and sum(counts) == 10
