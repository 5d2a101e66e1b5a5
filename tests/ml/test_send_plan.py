"""The send plan: consent is the gate, the holdout gets nothing, every send carries its trace."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.copy.approval import AutoApproval, approved_block_ids, new_variant_records, with_approval_states
from ml.copy.blocks import load_approved_blocks
from ml.copy.email_blocks import load_email_blocks
from ml.copy.variants import compose_variants
from ml.decisioning.policy import RANDOM_CONTROL, SELECTED_BY_SCORE, SELECTED_BY_UPLIFT, TargetingPolicy, target
from ml.decisioning.uplift.decision import BEYOND_BUDGET, NOT_WORTH_THE_COST
from ml.decisioning.send_plan import DECISION_COLUMNS, DECISIONS, PLANNED_SEND_COLUMNS, plan_sends, send_plan_id

BLOCKS = Path(__file__).resolve().parents[2] / "data" / "copy" / "approved_subject_lines.v1.json"
EMAIL_BLOCKS = BLOCKS.with_name("approved_email_blocks.v1.json")
PLANNED_AT = datetime(2025, 6, 1, 6, 0)
PLANNED_FOR = date(2025, 6, 2)
KEYS = [f"k{i}" for i in range(8)]
ESP_CONTACTS = pd.DataFrame({"subscriber_key": KEYS, "esp_id": [f"E{i}" for i in range(8)]})


@pytest.fixture(scope="module")
def variants():
    segments = pd.DataFrame({"top_category": ["toys", "beauty"], "lifecycle_stage": ["active", "lapsed"]})
    blocks, email_blocks = load_approved_blocks(BLOCKS), load_email_blocks(EMAIL_BLOCKS)
    composed = compose_variants(blocks, segments, email_blocks=email_blocks)
    # Approved as the pipeline approves them: auto-approval of approved_blocks compositions.
    log = new_variant_records(composed, pd.Series(dtype="object"), auto=AutoApproval(approved_blocks=True),
                              at=PLANNED_AT, approved_block_ids=approved_block_ids(blocks, email_blocks))
    return with_approval_states(composed, log)


def inputs(**eligibility_overrides):
    arms = ["holdout", "control", "treatment", "treatment", "control", "treatment", "control", "treatment"]
    assignments = pd.DataFrame({"subscriber_key": KEYS, "experiment_id": "exp", "arm": arms})
    scores = pd.DataFrame(
        {"subscriber_key": KEYS, "propensity_score": [0.1 * i for i in range(8)], "model_name": "m",
         "model_version": "3", "model_run_id": "mlflow-run-3", "cutoff_at": pd.Timestamp("2025-05-31")}
    )
    profiles = pd.DataFrame(
        {"subscriber_key": KEYS, "top_category": ["toys", "beauty"] * 4, "lifecycle_stage": ["active", "lapsed"] * 4}
    )
    eligibility = pd.DataFrame(
        {"subscriber_key": KEYS, "is_eligible": True, "consent_status": "subscribed",
         "consent_valid_from": pd.Timestamp("2025-01-01"), "consent_source": "esp", "consent_proof": "form:1",
         "is_contactable": True, "exclusion_reasons": [[] for _ in KEYS], "contact_policy_version": "contact-policy-test"}
    )
    for key, (column, value) in eligibility_overrides.items():
        eligibility[column] = eligibility[column].astype(object)
        eligibility.loc[eligibility["subscriber_key"] == key, column] = value
    return assignments, scores, profiles, eligibility


EVERYONE = TargetingPolicy(top_share=1.0, random_control_share=0.0)


def plan(variants, assignments, scores, profiles, eligibility, policy=EVERYONE, esp_contacts=ESP_CONTACTS,
         planned_for=PLANNED_FOR):
    return plan_sends(
        assignments, scores, profiles, eligibility, variants, esp_contacts, planned_for=planned_for,
        feature_list_sha256="abc", planned_at=PLANNED_AT, policy=policy,
    )


def test_every_sendable_member_outside_the_holdout_gets_one_traced_send(variants):
    result = plan(variants, *inputs())
    sends = result.sends
    assert list(sends.columns) == list(PLANNED_SEND_COLUMNS)
    assert sorted(sends["subscriber_key"]) == KEYS[1:]
    assert (result.held_out, result.not_sendable) == (1, 0)
    assert sends.set_index("subscriber_key").loc["k5", "propensity_score"] == pytest.approx(0.5)
    assert (sends["campaign_id"] == "exp:2025-06-02").all() and (sends["planned_for"] == pd.Timestamp(PLANNED_FOR)).all()
    assert sends.set_index("subscriber_key").loc["k5", "esp_id"] == "E5"
    # From a send, and from everyone's decision, to the MLflow run that trained the scoring model.
    assert set(sends["model_run_id"]) == {"mlflow-run-3"}
    scored = result.decisions["propensity_score"].notna()
    assert scored.sum() == 8 and set(result.decisions.loc[scored, "model_run_id"]) == {"mlflow-run-3"}
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


def test_send_ids_are_unique_per_day_and_stable_when_a_day_is_planned_again(variants):
    today = plan(variants, *inputs()).sends
    again = plan(variants, *inputs()).sends
    tomorrow = plan(variants, *inputs(), planned_for=date(2025, 6, 3)).sends
    assert today["send_plan_id"].tolist() == again["send_plan_id"].tolist()
    assert today["send_plan_id"].is_unique and not set(today["send_plan_id"]) & set(tomorrow["send_plan_id"])
    assert today["send_plan_id"].str.len().max() <= 27
    assert send_plan_id("exp", PLANNED_FOR, "k1") in set(today["send_plan_id"])


def test_a_sendable_member_without_an_esp_contact_is_counted_not_sent(variants):
    result = plan(variants, *inputs(), esp_contacts=ESP_CONTACTS[ESP_CONTACTS["subscriber_key"] != "k4"])
    assert "k4" not in set(result.sends["subscriber_key"])
    assert (result.no_esp_contact, result.not_sendable, len(result.sends)) == (1, 0, 6)


# --- the targeting policy -----------------------------------------------------------------


def scored_members(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"subscriber_key": [f"key{i:05d}" for i in range(n)], "propensity_score": rng.random(n)})


def test_the_policy_emails_the_top_share_by_score_and_a_random_control():
    members = scored_members(20_000)
    targeted = target(members, TargetingPolicy(top_share=0.3, random_control_share=0.1))
    control = targeted["targeting_group"] == RANDOM_CONTROL
    assert abs(control.mean() - 0.1) < 0.01
    assert (targeted.loc[control, "selected_by"] == "random_control").all()
    # Random control: its scores look like everybody's.
    assert abs(targeted.loc[control, "propensity_score"].mean() - 0.5) < 0.02
    scored = targeted[~control]
    chosen = scored["selected_by"] == SELECTED_BY_SCORE
    assert chosen.sum() == int(0.3 * len(scored))
    assert scored.loc[chosen, "propensity_score"].min() > scored.loc[~chosen, "propensity_score"].max()


def test_the_random_control_is_stable_and_independent_of_scores_and_order():
    members = scored_members(5_000)
    first = target(members, TargetingPolicy()).set_index("subscriber_key")["targeting_group"]
    again = target(members.sample(frac=1, random_state=3).assign(propensity_score=0.5), TargetingPolicy())
    assert again.set_index("subscriber_key")["targeting_group"].reindex(first.index).equals(first)


def test_ties_are_cut_by_key_so_the_plan_is_reproducible():
    members = pd.DataFrame({"subscriber_key": ["d", "b", "a", "c"], "propensity_score": [0.5] * 4})
    targeted = target(members, TargetingPolicy(top_share=0.5, random_control_share=0.0))
    assert sorted(targeted.loc[targeted["selected_by"] == SELECTED_BY_SCORE, "subscriber_key"]) == ["a", "b"]


def test_policy_shares_are_validated():
    with pytest.raises(ValueError, match="top_share"):
        TargetingPolicy(top_share=1.5)
    with pytest.raises(ValueError, match="random_control_share"):
        TargetingPolicy(random_control_share=-0.1)


def test_the_plan_applies_the_policy_after_the_consent_gate(variants):
    assignments, scores, profiles, eligibility = inputs(k7=("is_eligible", False))
    result = plan(variants, assignments, scores, profiles, eligibility, TargetingPolicy(0.5, random_control_share=0.0))
    # k1..k6 are sendable (k0 holdout, k7 ineligible): the top 3 scores are k6, k5, k4.
    assert sorted(result.sends["subscriber_key"]) == ["k4", "k5", "k6"]
    assert (result.held_out, result.not_sendable, result.not_selected) == (1, 1, 3)
    assert (result.sends["selected_by"] == SELECTED_BY_SCORE).all()


def test_the_contact_policy_is_the_second_gate_and_its_reasons_are_counted(variants):
    assignments, scores, profiles, eligibility = inputs(k3=("is_contactable", False), k4=("is_contactable", None))
    eligibility.loc[eligibility["subscriber_key"] == "k3", "exclusion_reasons"] = pd.Series(
        [["frequency_cap", "minimum_gap"]], index=eligibility.index[eligibility["subscriber_key"] == "k3"]
    )
    eligibility.loc[eligibility["subscriber_key"] == "k4", "exclusion_reasons"] = pd.Series(
        [["fatigue_backoff"]], index=eligibility.index[eligibility["subscriber_key"] == "k4"]
    )
    result = plan(variants, assignments, scores, profiles, eligibility)
    assert sorted(result.sends["subscriber_key"]) == ["k1", "k2", "k5", "k6", "k7"]
    assert (result.not_sendable, result.not_contactable) == (0, 2)
    assert result.contact_exclusions == {"fatigue_backoff": 1, "frequency_cap": 1, "minimum_gap": 1}
    assert (result.sends["contact_policy_version"] == "contact-policy-test").all()


# --- the decision record ------------------------------------------------------------------


def set_reasons(eligibility: pd.DataFrame, key: str, reasons: list[str]) -> None:
    at = eligibility.index[eligibility["subscriber_key"] == key]
    eligibility.loc[at, "exclusion_reasons"] = pd.Series([reasons], index=at)


def test_every_person_gets_one_decision_at_the_first_gate_that_stopped_them(variants):
    assignments, scores, profiles, eligibility = inputs(
        k0=("consent_status", "unsubscribed"), k2=("is_eligible", False), k3=("is_contactable", False),
    )
    set_reasons(eligibility, "k0", ["unsubscribed", "fatigue_backoff"])
    set_reasons(eligibility, "k2", ["suppressed_complaint"])
    set_reasons(eligibility, "k3", ["minimum_gap"])
    # Outside the day's experiment: one consented (k8), one erased (k9); k5 has no profile.
    extra = pd.DataFrame({"subscriber_key": ["k8", "k9"], "is_eligible": [True, False],
                          "consent_status": ["subscribed", "erased"], "is_contactable": [True, False],
                          "exclusion_reasons": [[], ["erased"]], "contact_policy_version": "contact-policy-test"})
    eligibility = pd.concat([eligibility, extra], ignore_index=True)
    result = plan(variants, assignments, scores, profiles[profiles["subscriber_key"] != "k5"], eligibility,
                  TargetingPolicy(top_share=0.5, random_control_share=0.0),
                  esp_contacts=ESP_CONTACTS[ESP_CONTACTS["subscriber_key"] != "k4"])
    decisions = result.decisions.set_index("subscriber_key")
    assert list(result.decisions.columns) == list(DECISION_COLUMNS)
    assert decisions["decision"].to_dict() == {
        "k0": "held_out", "k1": "not_selected", "k2": "not_consented", "k3": "not_contactable",
        "k4": "no_esp_contact", "k5": "not_scored", "k6": "not_selected", "k7": "planned",
        "k8": "not_assigned", "k9": "not_consented",
    }
    # Every reason that applies, whatever stopped the person first.
    assert decisions.loc["k0", "exclusion_reasons"] == ["unsubscribed", "fatigue_backoff"]
    assert decisions.loc["k9", "exclusion_reasons"] == ["erased"] and decisions.loc["k7", "exclusion_reasons"] == []
    # The counts of the plan are the record's counts.
    counts = result.decisions["decision"].value_counts()
    assert (result.held_out, result.not_contactable, result.no_esp_contact, result.not_selected) == (
        counts["held_out"], counts["not_contactable"], counts["no_esp_contact"], counts["not_selected"])
    assert result.not_sendable == counts["not_consented"] - 1 + counts["not_scored"]  # k9 was never assigned
    assert counts["planned"] == len(result.sends)
    # Planned rows carry their send; the cut is the lowest score the policy chose.
    planned = decisions[decisions["decision"] == "planned"]
    assert set(planned["send_plan_id"]) == set(result.sends["send_plan_id"]) and planned["variant_id"].notna().all()
    assert decisions["propensity_cut"].tolist() == pytest.approx([0.7] * 10)  # of k1, k6, k7 the top half: k7
    assert (decisions.loc[["k1", "k6"], "propensity_score"] < decisions.loc["k1", "propensity_cut"]).all()
    assert decisions["targeting_policy"].eq(
        "propensity-top-share-v1(top_share=0.5, random_control_share=0)").all()
    assert (decisions["decided_for"] == PLANNED_FOR).all() and (decisions["decided_at"] == pd.Timestamp(PLANNED_AT)).all()


def test_a_missing_verdict_is_recorded_as_the_reason(variants):
    assignments, scores, profiles, eligibility = inputs(k3=("is_contactable", None))
    eligibility.loc[eligibility["subscriber_key"] == "k3", "exclusion_reasons"] = None
    result = plan(variants, assignments, scores, profiles, eligibility[eligibility["subscriber_key"] != "k2"])
    decisions = result.decisions.set_index("subscriber_key")
    assert decisions.loc["k2", ["decision", "exclusion_reasons"]].tolist() == ["not_consented", ["no_eligibility_verdict"]]
    assert decisions.loc["k3", ["decision", "exclusion_reasons"]].tolist() == ["not_contactable", ["no_contact_policy_verdict"]]
    assert set(DECISIONS) >= set(decisions["decision"])


def test_sends_and_decisions_carry_the_day_s_recommendations_in_rank_order(variants):
    recommendations = pd.DataFrame({
        "subscriber_key": ["k1", "k1", "k1", "k0"], "rank": [2, 1, 3, 1], "product_id": ["p9", "p4", "p7", "p1"],
        "source": ["collaborative"] * 3 + ["popularity"], "mlflow_run_id": "run-1",
    })
    result = plan_sends(*inputs()[:4], variants, ESP_CONTACTS, planned_for=PLANNED_FOR, feature_list_sha256="abc",
                        planned_at=PLANNED_AT, policy=EVERYONE, recommendations=recommendations)
    sends = result.sends.set_index("subscriber_key")
    assert sends.loc["k1", ["recommended_product_ids", "recommendation_source", "recommendation_run_id"]].tolist() == [
        ["p4", "p9", "p7"], "collaborative", "run-1"]
    assert sends.loc["k2", "recommended_product_ids"] == [] and pd.isna(sends.loc["k2", "recommendation_run_id"])
    decisions = result.decisions.set_index("subscriber_key")
    assert decisions.loc["k0", ["decision", "recommended_product_ids"]].tolist() == ["held_out", ["p1"]]
    with pytest.raises(ValueError, match="recommendations lack columns"):
        plan_sends(*inputs()[:4], variants, ESP_CONTACTS, planned_for=PLANNED_FOR, feature_list_sha256="abc",
                   planned_at=PLANNED_AT, recommendations=recommendations.drop(columns="mlflow_run_id"))


def test_planned_send_types_cover_the_chosen_variant_columns():
    from ml.copy.variants import CHOICE_COLUMNS
    from ml.decisioning.send_plan import PLANNED_SEND_COLUMN_TYPES

    assert set(CHOICE_COLUMNS) <= set(PLANNED_SEND_COLUMN_TYPES)


def test_a_planned_send_carries_its_scheduled_time_and_reason_and_nobody_else_does(variants):
    times = pd.DataFrame({
        "subscriber_key": KEYS, "scheduled_send_at": pd.Timestamp("2025-06-02 07:00"), "send_local_hour": 9,
        "send_time_source": "own_history", "send_time_confidence": 0.8, "send_time_arm": "optimised",
        "send_time_policy": "send-time-test",
    })
    result = plan_sends(*inputs()[:4], variants, ESP_CONTACTS, planned_for=PLANNED_FOR, feature_list_sha256="abc",
                        planned_at=PLANNED_AT, policy=EVERYONE, send_times=times)
    assert (result.sends["scheduled_send_at"] == pd.Timestamp("2025-06-02 07:00")).all()
    assert (result.sends["send_time_source"] == "own_history").all() and len(result.sends) == 7
    decisions = result.decisions.set_index("subscriber_key")
    assert pd.isna(decisions.loc["k0", "scheduled_send_at"]) and decisions.loc["k0", "decision"] == "held_out"
    assert decisions.loc["k1", ["send_local_hour", "send_time_policy"]].tolist() == [9, "send-time-test"]
    with pytest.raises(ValueError, match="send_times lack columns"):
        plan_sends(*inputs()[:4], variants, ESP_CONTACTS, planned_for=PLANNED_FOR, feature_list_sha256="abc",
                   planned_at=PLANNED_AT, send_times=times.drop(columns="send_time_arm"))


def test_ranked_by_uplift_the_budget_goes_to_the_highest_net_value_above_cost():
    members = pd.DataFrame({
        "subscriber_key": ["a", "b", "c", "d", "e", "f"],
        # Propensity would pick f, e, d; the uplift estimates disagree.
        "propensity_score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "uplift_estimate": [0.010, 0.020, -0.01, 0.0010, 0.004, 0.0005],
    })
    # A send costs 0.05; a conversion is worth 40: worth it above an uplift of 0.00125.
    policy = TargetingPolicy(top_share=0.5, random_control_share=0.0, rank_by="uplift", value_per_conversion=40,
                             cost_per_send=0.05)
    targeted = target(members, policy).set_index("subscriber_key")["selected_by"]
    assert targeted.to_dict() == {
        "a": SELECTED_BY_UPLIFT, "b": SELECTED_BY_UPLIFT, "e": SELECTED_BY_UPLIFT,
        "c": NOT_WORTH_THE_COST, "d": NOT_WORTH_THE_COST, "f": NOT_WORTH_THE_COST,
    }
    # A budget of 2 (top_share 1/3 of 6) keeps the two best and says why e is left out.
    tighter = target(members, TargetingPolicy(top_share=1 / 3, random_control_share=0.0, rank_by="uplift"))
    assert tighter.set_index("subscriber_key").loc["e", "selected_by"] == BEYOND_BUDGET
    assert "uplift-net-value-v1" in policy.describe() and "cost_per_send=0.05" in policy.describe()
    with pytest.raises(ValueError, match="uplift_estimate"):
        target(members.drop(columns="uplift_estimate"), policy)


def test_a_plan_ranked_by_uplift_records_estimates_cut_and_reasons(variants):
    assignments, scores, profiles, eligibility = inputs()
    # k1..k7 are sendable; uplift ranks them in reverse of propensity.
    uplift = pd.DataFrame({"subscriber_key": KEYS, "uplift_estimate": [0.01 * (8 - i) for i in range(8)],
                           "uplift_run_id": "run-u"})
    result = plan_sends(
        assignments, scores, profiles, eligibility, variants, ESP_CONTACTS, planned_for=PLANNED_FOR,
        feature_list_sha256="abc", planned_at=PLANNED_AT, uplift=uplift,
        policy=TargetingPolicy(top_share=3 / 7, random_control_share=0.0, rank_by="uplift"),
    )
    assert sorted(result.sends["subscriber_key"]) == ["k1", "k2", "k3"]
    assert (result.sends["uplift_run_id"] == "run-u").all()
    decisions = result.decisions.set_index("subscriber_key")
    assert decisions.loc["k4", "decision"] == "not_selected" and decisions.loc["k4", "selected_by"] == BEYOND_BUDGET
    assert decisions["uplift_cut"].iloc[0] == pytest.approx(0.05)
    assert decisions.loc["k0", "uplift_estimate"] == pytest.approx(0.08)  # held out, still recorded
    assert decisions["propensity_cut"].isna().all()


def test_the_uplift_ranking_pays_each_person_s_priced_opt_out_risk(variants):
    from ml.decisioning.uplift.send_cost import OptOutRates

    assignments, scores, profiles, eligibility = inputs()
    # Everyone has the same uplift; k2 had 3 sends this week, whose measured opt-out risk makes
    # the email cost more than it brings.
    eligibility["sends_in_last_7_days"] = [3 if key == "k2" else 0 for key in KEYS]
    uplift = pd.DataFrame({"subscriber_key": KEYS, "uplift_estimate": 0.01, "uplift_run_id": "run-u"})
    rates = OptOutRates(by_band={0: 0.001, 1: 0.002, 2: 0.005, 3: 0.03}, delivered_by_band={}, overall=0.002)
    result = plan_sends(
        assignments, scores, profiles, eligibility, variants, ESP_CONTACTS, planned_for=PLANNED_FOR,
        feature_list_sha256="abc", planned_at=PLANNED_AT, uplift=uplift, opt_out=rates,
        policy=TargetingPolicy(top_share=1.0, random_control_share=0.0, rank_by="uplift", value_per_conversion=40,
                               cost_per_send=0.05, subscriber_value=20),
    )
    decisions = result.decisions.set_index("subscriber_key")
    # 0.01 x 40 = 0.40 of value; k2 costs 0.05 + 0.03 x 20 = 0.65, the others 0.05 + 0.02 = 0.07.
    assert decisions.loc["k2", "send_cost"] == pytest.approx(0.65)
    assert decisions.loc["k2", "selected_by"] == NOT_WORTH_THE_COST
    assert decisions.loc["k3", "send_cost"] == pytest.approx(0.07) and decisions.loc["k3", "decision"] == "planned"
    with pytest.raises(ValueError, match="sends_in_last_7_days"):
        plan_sends(assignments, scores, profiles, eligibility.drop(columns="sends_in_last_7_days"), variants,
                   ESP_CONTACTS, planned_for=PLANNED_FOR, feature_list_sha256="abc", planned_at=PLANNED_AT,
                   uplift=uplift, opt_out=rates)


def test_a_stopped_arm_is_sent_control_s_generic_copy(variants):
    assignments, scores, profiles, eligibility = inputs()
    running = plan(variants, assignments, scores, profiles, eligibility).sends.set_index("subscriber_key")
    stopped = plan_sends(
        assignments, scores, profiles, eligibility, variants, ESP_CONTACTS, planned_for=PLANNED_FOR,
        feature_list_sha256="abc", planned_at=PLANNED_AT, policy=EVERYONE, stopped_arms=frozenset({"treatment"}),
    ).sends.set_index("subscriber_key")
    treated = running.index[running["arm"] == "treatment"]
    generic = set(running.loc[running["arm"] == "control", "variant_id"])
    assert set(running.loc[treated, "variant_id"]) - generic  # personalised while running
    assert set(stopped.loc[treated, "variant_id"]) <= generic  # control's copy once stopped
    assert stopped.index.equals(running.index)  # still emailed: the arm's copy stops, not its members' mail


def test_nobody_assigned_plans_no_sends_and_the_status_says_why(variants):
    """Empty is a state: with nobody eligible, nobody is scored or assigned; the plan is empty
    with the usual columns, everyone still gets a decision, and the status counts them."""
    assignments, scores, profiles, eligibility = inputs()
    eligibility = eligibility.assign(is_eligible=False, consent_status=None)
    usual = plan(variants, *inputs())
    result = plan(variants, assignments.iloc[:0], scores.iloc[:0], profiles, eligibility)
    assert result.sends.empty and list(result.sends.columns) == list(PLANNED_SEND_COLUMNS)
    assert list(result.decisions.columns) == list(usual.decisions.columns)
    assert sorted(result.decisions["subscriber_key"]) == KEYS and set(result.decisions["decision"]) == {"not_consented"}
    assert result.status() == "0 sends planned: not_consented 8"
    assert usual.status() == f"{len(usual.sends)} sends planned"
    assert plan(variants, *(frame.iloc[:0] for frame in inputs())).status() == "0 sends planned: nobody to decide about"


def test_a_send_whose_segment_s_generated_copy_failed_gets_the_approved_default_and_records_why(variants):
    failed = variants.iloc[[0]].assign(
        top_category="toys", lifecycle_stage="active", variant_id="g_failed", provider="openai_compatible",
        subject_line=None, guardrail_passed=False, rejection_reason="timeout", approval_state=None, is_fallback=False)
    sends = plan(pd.concat([variants, failed], ignore_index=True), *inputs()).sends.set_index("subscriber_key")
    toys_treated = sends[(sends["arm"] == "treatment") & (sends["top_category"] == "toys")]
    others = sends.drop(toys_treated.index)
    assert len(toys_treated) == 1 and set(toys_treated["copy_fallback_reason"]) == {"timeout"}
    assert len(others) == 6  # control (generic copy) and the beauty segment, which had no generated copy
    assert set(toys_treated["copy_provider"]) == {"approved_blocks"}
    assert others["copy_fallback_reason"].isna().all()
