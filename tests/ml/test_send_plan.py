"""The send plan: consent is the gate, the holdout gets nothing, every send carries its trace."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from ml.copy.blocks import load_approved_blocks
from ml.copy.variants import compose_variants
from ml.decisioning.send_plan import PLANNED_SEND_COLUMNS, plan_sends
from ml.experiments.outcomes import MEMBER_COLUMNS, with_source_ids

BLOCKS = Path(__file__).resolve().parents[2] / "data" / "copy" / "approved_subject_lines.v1.json"
PLANNED_AT = datetime(2025, 6, 1, 6, 0)
KEYS = [f"k{i}" for i in range(8)]


@pytest.fixture(scope="module")
def variants():
    segments = pd.DataFrame({"top_category": ["toys", "beauty"], "lifecycle_stage": ["active", "lapsed"]})
    return compose_variants(load_approved_blocks(BLOCKS), segments)


def inputs(**eligibility_overrides):
    arms = ["holdout", "control", "treatment", "treatment", "control", "treatment", "control", "treatment"]
    assignments = pd.DataFrame({"subscriber_key": KEYS, "experiment_id": "exp", "arm": arms})
    scores = pd.DataFrame(
        {"subscriber_key": KEYS, "propensity_score": [0.1 * i for i in range(8)], "model_name": "m",
         "model_version": "3", "cutoff_at": pd.Timestamp("2025-05-31")}
    )
    profiles = pd.DataFrame(
        {"subscriber_key": KEYS, "top_category": ["toys", "beauty"] * 4, "lifecycle_stage": ["active", "lapsed"] * 4}
    )
    eligibility = pd.DataFrame(
        {"subscriber_key": KEYS, "is_eligible": True, "consent_status": "subscribed",
         "consent_valid_from": pd.Timestamp("2025-01-01"), "consent_source": "esp", "consent_proof": "form:1"}
    )
    for key, (column, value) in eligibility_overrides.items():
        eligibility[column] = eligibility[column].astype(object)
        eligibility.loc[eligibility["subscriber_key"] == key, column] = value
    return assignments, scores, profiles, eligibility


def plan(variants, assignments, scores, profiles, eligibility):
    return plan_sends(assignments, scores, profiles, eligibility, variants, feature_list_sha256="abc", planned_at=PLANNED_AT)


def test_every_sendable_member_outside_the_holdout_gets_one_traced_send(variants):
    result = plan(variants, *inputs())
    sends = result.sends
    assert list(sends.columns) == list(PLANNED_SEND_COLUMNS)
    assert sorted(sends["subscriber_key"]) == KEYS[1:]
    assert (result.held_out, result.not_sendable) == (1, 0)
    assert sends.set_index("subscriber_key").loc["k5", "propensity_score"] == pytest.approx(0.5)
    assert (sends["send_plan_id"] == "exp:" + sends["subscriber_key"]).all()
    assert sends["subject_line"].notna().all() and (sends["blocks_version"] != "").all()
    # Control gets the generic fallback; treatment a segment line.
    assert sends.loc[sends["arm"] == "control", "is_fallback"].all()
    assert not sends.loc[sends["arm"] == "treatment", "is_fallback"].all()


@pytest.mark.parametrize(
    "override",
    [("is_eligible", False), ("consent_status", "unsubscribed"), ("consent_status", None), ("is_eligible", None)],
)
def test_consent_is_the_gate(variants, override):
    assignments, scores, profiles, eligibility = inputs(k3=override)
    result = plan(variants, assignments, scores, profiles, eligibility)
    assert "k3" not in set(result.sends["subscriber_key"])
    assert result.not_sendable == 1


def test_a_member_missing_from_the_consent_mart_is_never_planned(variants):
    assignments, scores, profiles, eligibility = inputs()
    result = plan(variants, assignments, scores, profiles, eligibility[eligibility["subscriber_key"] != "k2"])
    assert "k2" not in set(result.sends["subscriber_key"]) and result.not_sendable == 1


def test_nobody_sendable_gives_an_empty_plan(variants):
    assignments, scores, profiles, eligibility = inputs()
    result = plan(variants, assignments, scores, profiles, eligibility.assign(is_eligible=False))
    assert result.sends.empty and list(result.sends.columns) == list(PLANNED_SEND_COLUMNS)
    assert result.not_sendable == 7


def test_duplicate_inputs_are_refused(variants):
    assignments, scores, profiles, eligibility = inputs()
    with pytest.raises(ValueError, match="eligibility have more than one row"):
        plan(variants, assignments, scores, profiles, pd.concat([eligibility, eligibility.head(1)]))


def test_members_get_the_smallest_source_id_per_system_or_none():
    members = pd.DataFrame({"subscriber_key": ["a", "b", "c"], "arm": "control", "is_sent": True,
                            "subject_line": "Hi", "variant_category": "general"})
    crosswalk = pd.DataFrame(
        {"subscriber_key": ["a", "a", "a", "b"], "source_system": ["crm", "esp", "esp", "esp"],
         "source_id": ["C1", "E9", "E2", "E5"]}
    )
    joined = with_source_ids(members, crosswalk)
    assert list(joined.columns) == list(MEMBER_COLUMNS)
    assert joined[["crm_id", "esp_id"]].values.tolist() == [["C1", "E2"], [None, "E5"], [None, None]]
