"""Empty is a state, not a crash: a day on which nobody is eligible (issue 13). Scoring writes
an empty slice and says why in reason codes and counts, assignment assigns nobody with the
sample-ratio check passing on nothing, and the experiment report records that no sends went
out yet. A tiny hand-made warehouse and a small registered champion, no dbt: a few seconds."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg
import pandas as pd
import pytest

from ml.propensity.promotion import CHAMPION_ALIAS
from ml.propensity.specs import PURCHASE, TrainingParams
from ml.propensity.training import train_model
from ml.tracking import MlflowTarget
from orchestration import tables
from orchestration.defs.campaign import NO_SENDS_YET, experiment_assignments, experiment_report
from orchestration.defs.scoring import propensity_scores
from orchestration.resources import PipelineSettings
from tests.ml.conftest import make_scoring_features, make_training_examples

DAY = "2026-07-01"
PEOPLE = 40


@pytest.fixture
def nobody_eligible(tmp_path):
    """A state whose 40 subscribers all lack a consent record, with a purchase champion."""
    return state_with_purchase_champion(tmp_path, eligible=False)


def state_with_purchase_champion(tmp_path, *, eligible: bool) -> PipelineSettings:
    """A state of 40 subscribers, all eligible or all lacking a consent record, with a small
    registered purchase champion and its training rows; no dbt."""
    settings = PipelineSettings(state_dir=str(tmp_path / "state"))
    settings.state_path().mkdir(parents=True, exist_ok=True)
    examples = make_training_examples(600, 3, seed=2)
    features = make_scoring_features(PEOPLE).drop(columns=lambda c: c.startswith("_"), errors="ignore")
    warehouse = settings.warehouse()
    warehouse.write_table(features, tables.SCORING_FEATURES)
    warehouse.write_table(examples.drop(columns=[c for c in examples if c.startswith("_")]), tables.TRAINING_EXAMPLES)
    warehouse.write_table(pd.DataFrame({
        "subscriber_key": features["subscriber_key"], "is_eligible": eligible,
        "exclusion_reason": None if eligible else "no_consent_record",
    }), tables.SUBSCRIBER_ELIGIBILITY)
    client = settings.mlflow_client()
    result = train_model(
        examples, replace(PURCHASE, params=TrainingParams(n_estimators=20, min_child_samples=20)),
        tracking=MlflowTarget(client=client, artifact_location=settings.mlflow_artifact_location(),
                              experiment_name=PURCHASE.experiment_name),
        dataset_name="training_examples", dataset_source="test",
    )
    client.set_registered_model_alias(PURCHASE.registered_model_name, CHAMPION_ALIAS, result.model_version)
    return settings


def test_a_day_with_nobody_eligible_scores_assigns_and_reads_nothing_and_says_why(nobody_eligible):
    settings = nobody_eligible
    instance = dg.DagsterInstance.ephemeral()
    run = dg.materialize(
        [propensity_scores, experiment_assignments, experiment_report],
        partition_key=DAY, resources={"settings": settings}, raise_on_error=False, instance=instance,
    )
    assert run.success, [event.event_specific_data for event in run.get_step_failure_events()]
    metadata = {
        key.to_user_string(): {name: value.value for name, value in event.materialization.metadata.items()}
        for event in run.get_asset_materialization_events()
        for key in [event.asset_key]
    }
    assert metadata["propensity_scores"]["dagster/row_count"] == 0
    assert metadata["propensity_scores"]["status"] == f"0 eligible of {PEOPLE}: no_consent_record {PEOPLE}"
    assert metadata["experiment_assignments"]["dagster/row_count"] == 0
    assert metadata["experiment_report"]["status"] == NO_SENDS_YET
    checks = {evaluation.check_name: evaluation.passed for evaluation in run.get_asset_check_evaluations()}
    assert checks["sample_ratio_matches_design"] and checks["guardrails_hold"]
    # The day's slices exist, empty and typed, for the steps after them.
    warehouse = settings.warehouse()
    scores = warehouse.read(f"select * from {tables.PROPENSITY_SCORES}")
    assert scores.empty and str(scores["propensity_score"].dtype) == "float64"
    assert warehouse.read(f"select count(*) as n from {tables.EXPERIMENT_ASSIGNMENTS}")["n"].iloc[0] == 0
    # The log names the reason, never a key.
    logs = " ".join(entry.user_message for entry in instance.all_logs(run.run_id))
    assert f"no_consent_record {PEOPLE}" in logs
    keys = warehouse.read(f"select subscriber_key from {tables.SUBSCRIBER_ELIGIBILITY}")["subscriber_key"]
    assert not any(key in logs for key in keys)
