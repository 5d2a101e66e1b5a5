"""The declared multi-arm experiment: three subject-line variants, control and the holdout,
assigned by a stable hash, each variant sent its own copy slot, and every readout piece per arm."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from ml.copy.blocks import load_approved_blocks
from ml.copy.email_blocks import load_email_blocks
from ml.copy.variants import choose_variant_per_subscriber, compose_variants
from ml.decisioning.policy import TargetingPolicy
from ml.decisioning.send_plan import plan_sends
from ml.experiments.design import VARIANT_ARMS, ExperimentDesign, assign_arms, multi_arm_design
from ml.experiments.readout import summarise_experiment
from ml.experiments.sequential import rate_difference_sequence
from ml.reports.experiment_report import render_experiment_report
from tests.ml.test_experiment import members_with_outcomes
from tests.report_reader import arm_figures, arm_sizes, verdicts

DESIGN = multi_arm_design("multi-arm-test")
COPY = Path(__file__).resolve().parents[2] / "data" / "copy"


def keys(n: int) -> pd.Series:
    return pd.Series([hashlib.sha256(f"m{i}".encode()).hexdigest() for i in range(n)])


def members(n: int, rates: dict[str, float]) -> pd.DataFrame:
    return members_with_outcomes(n, rates, design=DESIGN, unsubscribe_rates={arm: 0.003 for arm in DESIGN.arms})


def test_the_declared_design_has_three_variants_control_and_the_holdout():
    assert DESIGN.arms == {"holdout": 0.10, "control": 0.225, "variant_a": 0.225, "variant_b": 0.225, "variant_c": 0.225}
    assert DESIGN.personalised_arms == {"variant_a": 0, "variant_b": 1, "variant_c": 2}
    assert DESIGN.comparisons() == (
        ("control", "holdout"), *((arm, "holdout") for arm in VARIANT_ARMS), *((arm, "control") for arm in VARIANT_ARMS),
    )
    # The persistent holdout is the same people as under the two-arm design of the same id.
    people = keys(20_000)
    two_arm = assign_arms(people, ExperimentDesign(DESIGN.experiment_id))
    assert (assign_arms(people, DESIGN)["arm"].eq("holdout") == two_arm["arm"].eq("holdout")).all()
    with pytest.raises(ValueError, match="personalised"):
        multi_arm_design("x", personalised_arms={"control": 0})


def test_a_multi_arm_readout_reads_every_arm_against_control_with_holm_across_the_variants(tmp_path):
    rates = {"holdout": 0.02, "control": 0.03, "variant_a": 0.03, "variant_b": 0.045, "variant_c": 0.031}
    frame = members(60_000, rates)
    summary = summarise_experiment(frame, DESIGN)
    counts = frame.groupby("arm")["converted"].agg(["sum", "size"])
    sequential = [rate_difference_sequence(counts.loc[arm, "sum"], counts.loc[arm, "size"], counts.loc["control", "sum"],
                                           counts.loc["control", "size"], planned_sample_size=DESIGN.planned_members)
                  for arm in VARIANT_ARMS]
    holm = multipletests([float(s.p_value) for s in sequential], method="holm")[1]
    for arm, expected in zip(VARIANT_ARMS, holm):
        assert summary.comparison(arm, "control").rates["converted"].sequential_p_value_holm == pytest.approx(expected)
    decided = {v.arm: v.decision.verdict for v in summary.verdicts}
    assert decided == {"variant_a": "keep_running", "variant_b": "ship", "variant_c": "keep_running"}
    sizes = frame["arm"].value_counts().reindex(list(DESIGN.arms)).to_numpy()
    assert summary.sample_ratio["p_value"] == pytest.approx(
        chisquare(sizes, np.array(list(DESIGN.arms.values())) * len(frame)).pvalue)
    # CUPED is per comparison too (no pre-period column here, so none) and the metrics name every arm.
    metrics = summary.to_metrics()
    assert {f"{arm}_vs_control.verdict" for arm in VARIANT_ARMS} <= set(metrics)
    page = render_experiment_report(summary, tmp_path / "r.html", context={}).read_text()
    assert arm_sizes(page) == frame["arm"].value_counts().to_dict()
    shown = arm_figures(page)
    for arm in DESIGN.arms:
        successes, n = int(counts.loc[arm, "sum"]), int(counts.loc[arm, "size"])
        low, high = proportion_confint(successes, n, method="wilson")
        assert shown[(arm, "converted")] == (f"{successes / n:.2%}", f"{low:.2%}", f"{high:.2%}")
    assert {arm for arm, baseline in verdicts(page)} == set(VARIANT_ARMS)


@pytest.fixture(scope="module")
def variants():
    segments = pd.DataFrame({"top_category": ["toys", "beauty"], "lifecycle_stage": ["active", "lapsed"]})
    composed = compose_variants(load_approved_blocks(COPY / "approved_subject_lines.v1.json"), segments,
                                email_blocks=load_email_blocks(COPY / "approved_email_blocks.v1.json"))
    return composed.assign(approval_state="approved")


def test_a_copy_slot_gives_everyone_of_a_segment_the_same_variant_in_variant_id_order(variants):
    people = pd.DataFrame({"subscriber_key": [f"p{i}" for i in range(40)], "top_category": "toys",
                           "lifecycle_stage": "active"})
    composed = sorted(variants.loc[(variants["top_category"] == "toys") & ~variants["is_fallback"], "variant_id"])
    assert len(composed) == 3
    for slot in range(4):
        chosen = choose_variant_per_subscriber(people, variants, personalised=True, slot=slot)
        assert set(chosen["variant_id"]) == {composed[slot % 3]}
    spread = choose_variant_per_subscriber(people, variants, personalised=True)
    assert set(spread["variant_id"]) == set(composed)  # without a slot: spread over all three by hash


def test_each_variant_arm_is_sent_its_own_slot_and_control_the_generic_line(variants):
    arms = ["holdout", "control", *VARIANT_ARMS] * 4
    people = [f"k{i}" for i in range(len(arms))]
    assignments = pd.DataFrame({"subscriber_key": people, "experiment_id": "exp", "arm": arms})
    scores = pd.DataFrame({"subscriber_key": people, "propensity_score": 0.5, "model_name": "m", "model_version": "1",
                           "model_run_id": "r1", "cutoff_at": pd.Timestamp("2025-05-31")})
    profiles = pd.DataFrame({"subscriber_key": people, "top_category": "toys", "lifecycle_stage": "active"})
    eligibility = pd.DataFrame({
        "subscriber_key": people, "is_eligible": True, "consent_status": "subscribed",
        "consent_valid_from": pd.Timestamp("2025-01-01"), "consent_source": "esp", "consent_proof": "form:1",
        "is_contactable": True, "exclusion_reasons": [[] for _ in people], "contact_policy_version": "v"})
    esp = pd.DataFrame({"subscriber_key": people, "esp_id": [f"E{i}" for i in range(len(people))]})

    def sends(**kwargs):
        return plan_sends(assignments, scores, profiles, eligibility, variants, esp, planned_for=date(2025, 6, 2),
                          feature_list_sha256="abc", planned_at=datetime(2025, 6, 1, 6),
                          policy=TargetingPolicy(top_share=1.0, random_control_share=0.0),
                          personalised_arms=DESIGN.personalised_arms, **kwargs).sends

    by_arm = sends().groupby("arm")["variant_id"].agg(set)
    composed = sorted(variants.loc[(variants["top_category"] == "toys") & ~variants["is_fallback"], "variant_id"])
    assert {arm: by_arm[arm] for arm in VARIANT_ARMS} == {arm: {composed[slot]} for arm, slot in
                                                          DESIGN.personalised_arms.items()}
    generic = by_arm["control"]
    assert len(generic) == 1 and not generic & set(composed)
    stopped = sends(stopped_arms=frozenset({"variant_b"})).groupby("arm")["variant_id"].agg(set)
    assert stopped["variant_b"] == generic and stopped["variant_a"] == {composed[0]}
