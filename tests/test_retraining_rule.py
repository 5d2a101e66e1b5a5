"""When a failed model check retrains the models: which checks count, and the cooldown."""

from __future__ import annotations

from datetime import date

import dagster as dg

from orchestration.defs.automation import (
    RETRAIN_COOLDOWN_DAYS,
    RETRAINING_CHECKS,
    TRAINING_CADENCE_DAYS,
    automation,
    last_trained_day,
    loop_training_reasons,
    retraining_due,
    retraining_reasons,
)


def evaluation(asset: str, check: str, passed: bool, description: str = "") -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset), check_name=check, passed=passed, description=description or None
    )


def test_only_failed_drift_and_decay_checks_are_reasons_to_retrain():
    evaluations = [
        evaluation("feature_drift_report", "feature_drift_share", True),
        evaluation("propensity_scores", "live_auc_decay", False, "AUC 0.70 against 0.78 at promotion"),
        evaluation("fct_send_outcomes", "segment_open_rate_shift", False, "1 of 9 segments changed"),
        evaluation("fct_send_outcomes", "every_planned_send_has_an_outcome", False),  # data, not the model
        evaluation("subscriber_profiles", "gx_subscriber_profiles", False),  # data quality: not a model reason
        evaluation("purchase_propensity_model", "bias_audit", False),  # retraining would not fix it
    ]
    assert retraining_reasons(evaluations) == [
        "fct_send_outcomes.segment_open_rate_shift failed: 1 of 9 segments changed",
        "propensity_scores.live_auc_decay failed: AUC 0.70 against 0.78 at promotion",
    ]
    assert len(RETRAINING_CHECKS) == 5


def test_retraining_waits_out_the_cooldown():
    reasons = ["feature_drift_report.feature_drift_share failed"]
    day = date(2026, 7, 10)
    assert retraining_due(reasons, day, None)
    assert not retraining_due([], day, None)
    assert not retraining_due(reasons, day, date(2026, 7, 10 - RETRAIN_COOLDOWN_DAYS + 1))
    assert retraining_due(reasons, day, date(2026, 7, 10 - RETRAIN_COOLDOWN_DAYS))


def test_the_loop_trains_on_failed_checks_after_the_cooldown_and_else_weekly_as_the_schedule_does():
    schedules, _ = automation(running=False)
    weekly = next(s for s in schedules if s.name == "weekly_training_schedule")
    assert weekly.cron_schedule == "0 3 * * 1"  # once a week
    assert TRAINING_CADENCE_DAYS == 7
    failed = ["propensity_scores.live_auc_decay failed"]
    day = date(2026, 7, 20)
    assert loop_training_reasons(failed, day, None) == failed  # no training yet: the checks decide
    assert loop_training_reasons([], day, None) == []
    assert loop_training_reasons(failed, day, date(2026, 7, 18)) == []  # in the cooldown
    assert loop_training_reasons(failed, day, date(2026, 7, 17)) == failed
    assert loop_training_reasons([], day, date(2026, 7, 14)) == []  # six days: not yet
    assert loop_training_reasons([], day, date(2026, 7, 13)) == [
        "weekly cadence: last trained on 2026-07-13, 7 or more days before"]
    assert loop_training_reasons(failed, day, date(2026, 7, 13)) == failed  # the checks' reasons win


def test_the_last_training_day_comes_from_the_latest_successful_training_run():
    @dg.op
    def noop():
        return None

    @dg.job(name="train_models_job")
    def train_models_job():
        noop()

    instance = dg.DagsterInstance.ephemeral()
    assert last_trained_day(instance) is None
    train_models_job.execute_in_process(instance=instance, tags={"email_pipeline/loop_day": "2026-07-01"})
    train_models_job.execute_in_process(instance=instance, tags={"email_pipeline/loop_day": "2026-07-04"})
    assert last_trained_day(instance) == date(2026, 7, 4)
