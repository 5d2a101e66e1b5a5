"""The promotion gate, the alias moves (all or nothing) and the rollback, on a real local registry."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.propensity.metrics import (
    bootstrap_auc,
    calibration_bins,
    expected_calibration_error,
    paired_bootstrap_auc_difference,
    segment_aucs,
)
from ml.propensity.promotion import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DATA_AS_OF_TAG,
    GateCriteria,
    PromotionError,
    apply_gate_decision,
    champion_version,
    evaluate_gate,
    rollback_champion,
)

NOW = datetime(2026, 7, 1, 6, 0)


def world(n: int = 6000, seed: int = 0):
    """Labels drawn from a true probability; a good model sees it with noise."""
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-(rng.normal(size=n) * 1.5 - 2.5)))
    labels = (rng.random(n) < truth).astype(int)
    good = np.clip(truth + rng.normal(scale=0.02, size=n), 1e-4, 1 - 1e-4)
    segments = pd.DataFrame({
        "lifecycle_stage": np.where(np.arange(n) % 3 == 0, "active", "lapsed"),
        "tenure_band": np.where(np.arange(n) % 2 == 0, "0-89d", "730d+"),
    })
    return labels, truth, good, segments, rng


# --- metrics ------------------------------------------------------------------------------------------


def test_auc_interval_covers_the_point_and_is_exactly_one_for_a_perfect_ranking():
    labels = np.array([0] * 50 + [1] * 50)
    perfect = bootstrap_auc(labels, np.arange(100), n_boot=200)
    assert (perfect.auc, perfect.low, perfect.high) == (1.0, 1.0, 1.0)
    labels, truth, good, _, _ = world()
    estimate = bootstrap_auc(labels, good, n_boot=300)
    assert estimate.low < estimate.auc < estimate.high and estimate.high - estimate.low < 0.05
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_auc(np.zeros(10), np.arange(10))


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    labels, _, good, _, _ = world(2000)
    same = paired_bootstrap_auc_difference(labels, good, good, n_boot=200)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)


def test_calibration_bins_are_equal_frequency_and_ece_is_hand_computable():
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 1])
    scores = np.array([0.1, 0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8])
    bins = calibration_bins(labels, scores, n_bins=2)
    assert bins["n"].tolist() == [4, 4]
    assert bins["observed_rate"].tolist() == [0.5, 0.75]
    # |0.5 - 0.1| / 2 + |0.75 - 0.8| / 2
    assert expected_calibration_error(labels, scores, n_bins=2) == pytest.approx(0.225)


def test_segment_aucs_keep_small_groups_with_no_auc():
    labels, _, good, segments, _ = world(1000)
    segments = segments.assign(tiny=np.where(np.arange(1000) < 50, "few", "many"))
    table = segment_aucs(labels, good, segments[["tiny"]], min_rows=200, n_boot=100)
    few = table.set_index("group").loc["few"]
    assert few["n"] == 50 and np.isnan(few["auc"])
    assert table.set_index("group").loc["many", "auc"] > 0.7


# --- the gate -------------------------------------------------------------------------------------------


def test_the_gate_refuses_a_challenger_trained_on_shuffled_labels_and_passes_an_equal_one():
    labels, truth, good, segments, rng = world()
    kwargs = dict(model_name="m", challenger_version="2", champion_version="1")
    shuffled = rng.permutation(good)  # what a model of shuffled labels amounts to: scores unrelated to outcomes
    refused = evaluate_gate(labels, shuffled, good, segments, **kwargs)
    assert not refused.passed and refused.action == "refused"
    assert any(reason.startswith("AUC ") for reason in refused.reasons)
    assert refused.figures["auc_difference_high"] < -0.005
    equal = np.clip(truth + rng.normal(scale=0.02, size=len(truth)), 1e-4, 1 - 1e-4)
    passed = evaluate_gate(labels, equal, good, segments, **kwargs)
    assert passed.passed, passed.reasons
    assert passed.figures["auc_difference_low"] < 0 < passed.figures["auc_difference_high"]


def test_a_segment_regression_fails_the_gate_even_when_the_overall_auc_holds():
    labels, truth, good, segments, rng = world(9000)
    worse_in_active = good.copy()
    active = (segments["lifecycle_stage"] == "active").to_numpy()
    # Within 'active' only, scores are shuffled among themselves: the ranking there is lost.
    worse_in_active[active] = rng.permutation(good[active])
    decision = evaluate_gate(
        labels, worse_in_active, good, segments, model_name="m", challenger_version="2", champion_version="1",
        criteria=GateCriteria(max_auc_drop=0.2),  # the overall criterion alone would pass it
    )
    assert not decision.passed
    failed = set(zip(*decision.segments.loc[decision.segments["failed"], ["attribute", "group"]].T.to_numpy()))
    # The damaged group fails; the untouched one does not (the tenure bands, a third of
    # them 'active', lose ranking too and may fail as well).
    assert ("lifecycle_stage", "active") in failed and ("lifecycle_stage", "lapsed") not in failed
    assert any(reason.startswith("lifecycle_stage=active") for reason in decision.reasons)


def test_badly_calibrated_challenger_is_refused():
    labels, truth, good, segments, _ = world()
    inflated = np.clip(good * 3, 0, 1)  # same ranking, wrong probabilities
    decision = evaluate_gate(labels, inflated, good, segments, model_name="m", challenger_version="2", champion_version="1")
    assert not decision.passed and any("ECE" in reason for reason in decision.reasons)


def test_the_first_version_needs_the_bootstrap_rule():
    labels, truth, good, segments, rng = world()
    first = evaluate_gate(labels, good, None, segments, model_name="m", challenger_version="1", champion_version=None)
    assert first.passed and first.bootstrap and first.action == "bootstrap"
    noise = evaluate_gate(labels, rng.random(len(labels)) * 0.1, None, segments, model_name="m",
                          challenger_version="1", champion_version=None)
    assert not noise.passed and noise.action == "refused"


# --- alias moves on a real registry ------------------------------------------------------------------------


@pytest.fixture
def registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    for k in (1, 2, 3):
        client.create_model_version("m", source=str(tmp_path / f"artifacts{k}"))
    return client


def decision_for(version: str, champion: str | None, *, passed: bool = True):
    labels, truth, good, segments, rng = world(3000)
    challenger = good if passed else rng.permutation(good)
    return evaluate_gate(labels, challenger, None if champion is None else good, segments, model_name="m",
                         challenger_version=version, champion_version=champion)


def aliases(client) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model("m").aliases.items()}


def test_promotion_moves_the_champion_and_records_the_decision(registry):
    first = apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    assert (first.action, first.previous_champion, first.champion_after) == ("bootstrap", None, "1")
    refused = apply_gate_decision(registry, decision_for("2", "1", passed=False), decided_at=NOW)
    assert (refused.action, refused.champion_after) == ("refused", "1")
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}
    tags = registry.get_model_version("m", "2").tags
    assert tags["gate.decision"] == "refused" and tags["gate.applied"] == "true"
    assert float(tags["gate.challenger_auc"]) < float(tags["gate.champion_auc"])
    loop_day = datetime(2026, 7, 3, 23, 59, 59)
    promoted = apply_gate_decision(registry, decision_for("3", "1"), decided_at=NOW, data_as_of=loop_day)
    assert (promoted.action, promoted.previous_champion, promoted.champion_after) == ("promoted", "1", "3")
    assert promoted.data_as_of == loop_day and refused.data_as_of is None
    assert registry.get_model_version("m", "3").tags[DATA_AS_OF_TAG] == "2026-07-03T23:59:59"
    assert DATA_AS_OF_TAG not in tags
    assert aliases(registry) == {CHAMPION_ALIAS: "3", CHALLENGER_ALIAS: "3"}
    assert champion_version(registry, "m") == "3"
    assert set(promoted.to_row()) == set(promoted.COLUMNS)


def test_rollback_restores_the_previous_champion_and_records_why(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    apply_gate_decision(registry, decision_for("2", "1"), decided_at=NOW)
    record = rollback_champion(registry, "m", "1", reason="v2 mis-scores new signups", decided_at=NOW,
                               data_as_of=datetime(2026, 7, 5))
    assert (record.action, record.previous_champion, record.champion_after) == ("rollback", "2", "1")
    assert record.to_row()["data_as_of"] == datetime(2026, 7, 5)
    assert champion_version(registry, "m") == "1"
    tags = registry.get_model_version("m", "1").tags
    assert tags["gate.rollback_reason"] == "v2 mis-scores new signups" and tags["gate.rolled_back_from"] == "2"
    assert tags["gate.rolled_back_as_of"] == "2026-07-05T00:00:00"
    with pytest.raises(ValueError, match="already the champion"):
        rollback_champion(registry, "m", "1", reason="again", decided_at=NOW)
    with pytest.raises(ValueError, match="needs a reason"):
        rollback_champion(registry, "m", "2", reason=" ", decided_at=NOW)


class FlakyRegistry:
    """The real client, but MLflow becomes unreachable at one call."""

    def __init__(self, client: MlflowClient, fail_on: str, after: int = 0):
        self._client, self._fail_on, self._after = client, fail_on, after

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name != self._fail_on:
            return attribute

        def flaky(*args, **kwargs):
            if self._after == 0:
                raise MlflowException("connection refused")
            self._after -= 1
            return attribute(*args, **kwargs)

        return flaky


def test_an_mlflow_outage_during_the_champion_move_leaves_the_aliases_unchanged(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    before = aliases(registry)
    flaky = FlakyRegistry(registry, "set_registered_model_alias", after=0)
    with pytest.raises(PromotionError, match=r"moving alias 'champion' failed \(connection refused\); the aliases are as they were"):
        apply_gate_decision(flaky, decision_for("2", "1"), decided_at=NOW)
    assert aliases(registry) == before == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "1"}
    assert "gate.applied" not in registry.get_model_version("m", "2").tags


def test_when_the_outage_also_stops_the_restore_the_error_says_what_to_fix_by_hand(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    # The champion moves (call 1), the challenger alias fails, and so does putting the champion back.
    flaky = FlakyRegistry(registry, "set_registered_model_alias", after=1)
    with pytest.raises(PromotionError, match=r"RESTORING THE ALIASES ALSO FAILED .* set 'champion' back by hand; the champion was v1"):
        apply_gate_decision(flaky, decision_for("2", "1"), decided_at=NOW)


def test_a_failure_after_the_champion_moved_puts_it_back(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    # Both aliases move to v2, then tagging fails: the move must be undone.
    flaky = FlakyRegistry(registry, "set_model_version_tag", after=0)
    with pytest.raises(PromotionError, match="tagging the version with the gate decision failed"):
        apply_gate_decision(flaky, decision_for("2", "1"), decided_at=NOW)
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "1"}


def test_an_outage_during_a_rollback_leaves_the_champion(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    apply_gate_decision(registry, decision_for("2", "1"), decided_at=NOW)
    flaky = FlakyRegistry(registry, "set_registered_model_alias", after=0)
    with pytest.raises(PromotionError, match="aliases are as they were"):
        rollback_champion(flaky, "m", "1", reason="test", decided_at=NOW)
    assert champion_version(registry, "m") == "2"
