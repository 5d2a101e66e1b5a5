"""The promotion gate and the alias moves, on a real local MLflow registry (SQLite)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.propensity.promotion import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    GateCriteria,
    GateDecision,
    PromotionError,
    PromotionRecord,
    apply_gate_decision,
    champion_version,
    evaluate_gate,
    rollback_champion,
)

NOW = datetime(2026, 7, 1, 6, 0)
MODEL = "purchase_propensity"


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def world(n: int = 8000, seed: int = 0):
    """Labels drawn from a true probability; the champion sees its logit with noise."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(size=n) * 1.3 - 2.2
    labels = (rng.random(n) < sigmoid(logit)).astype(int)
    champion = sigmoid(logit + rng.normal(scale=0.3, size=n))
    segments = pd.DataFrame({
        "lifecycle_stage": rng.choice(["active", "lapsed"], size=n),
        "tenure_band": np.where(rng.random(n) < 0.1, "0-89d", "90d+"),
    })
    return rng, logit, labels, champion, segments


def gate(labels, challenger, champion, segments, *, version="2", champion_v="1", **criteria):
    return evaluate_gate(
        labels, challenger, champion, segments, model_name=MODEL, challenger_version=version,
        champion_version=None if champion is None else champion_v, criteria=GateCriteria(**criteria),
    )


# --- the gate ------------------------------------------------------------------------------------


def test_a_challenger_of_shuffled_labels_is_refused_on_auc_and_an_equally_good_one_passes():
    rng, logit, labels, champion, segments = world()
    # A model trained on shuffled labels learns nothing about the outcome: its scores are
    # unrelated to the labels. Only the AUC criterion is left active, so it alone refuses.
    shuffled = sigmoid(rng.normal(size=len(labels)) * 1.3 - 2.2)
    auc_only = dict(max_ece=1.0, max_ece_increase=1.0, max_segment_auc_drop=1.0)
    refused = gate(labels, shuffled, champion, segments, **auc_only)
    assert not refused.passed and refused.action == "refused" and not refused.bootstrap
    assert len(refused.reasons) == 1 and refused.reasons[0].startswith("AUC 0.")
    assert "95% CI of the difference" in refused.reasons[0] and "is below -0.005" in refused.reasons[0]
    assert refused.figures["auc_difference_high"] < -0.005
    assert refused.figures["challenger_auc"] == pytest.approx(0.5, abs=0.03)

    # A retrain as good as the champion (its own noise, same size) passes every default criterion.
    equal = sigmoid(logit + rng.normal(scale=0.3, size=len(labels)))
    passed = gate(labels, equal, champion, segments)
    assert passed.passed and passed.action == "promoted" and passed.reasons == ()
    assert passed.figures["auc_difference_low"] < 0 < passed.figures["auc_difference_high"]
    assert passed.figures["n_rows"] == len(labels)
    assert set(passed.figures) >= {
        "challenger_auc", "champion_auc", "auc_difference", "auc_difference_low", "auc_difference_high",
        "challenger_ece", "champion_ece", "n_rows", "worst_segment_auc_drop",
    }


def test_the_first_version_passes_only_by_the_bootstrap_rule():
    rng, logit, labels, champion, segments = world()
    first = gate(labels, champion, None, segments, version="1")
    assert first.passed and first.bootstrap and first.action == "bootstrap" and first.champion_version is None
    assert first.figures["challenger_auc_low"] > 0.5 and np.isnan(first.figures["champion_auc"])
    assert "no champion yet" in first.summary()

    chance = gate(labels, sigmoid(rng.normal(size=len(labels)) * 1.3 - 2.2), None, segments, version="1")
    assert not chance.passed and chance.bootstrap and chance.action == "refused"
    assert chance.reasons[0].startswith("AUC 0.") and "does not lie above 0.5" in chance.reasons[0]

    overconfident = gate(labels, np.clip(champion * 2.5, 0, 1), None, segments, version="1")  # right order, wrong odds
    assert not overconfident.passed and [r.split(" ")[0] for r in overconfident.reasons] == ["ECE"]


def test_a_segment_regression_fails_the_gate_while_the_overall_auc_holds():
    rng, logit, labels, _, segments = world(12000, seed=1)
    champion = sigmoid(logit + rng.normal(scale=0.6, size=len(labels)))
    new = (segments["tenure_band"] == "0-89d").to_numpy()
    # Sharper than the champion on the bulk, but it has lost the new subscribers.
    challenger = sigmoid(logit + rng.normal(size=len(labels)) * np.where(new, 2.0, 0.0))
    segments = segments.assign(source=np.where(np.arange(len(labels)) < 150, "partner", "web"))
    decision = gate(labels, challenger, champion, segments)
    assert decision.figures["auc_difference_low"] > -0.005  # overall: not even close to failing
    assert not decision.passed and len(decision.reasons) == 1
    assert decision.reasons[0].startswith("tenure_band=0-89d: AUC ")
    table = decision.segments.set_index(["attribute", "group"])
    assert table.columns.tolist() == ["n", "challenger_auc", "champion_auc", "auc_drop", "drop_low", "failed"]
    assert table.loc[("tenure_band", "0-89d"), "drop_low"] > 0.03  # confident of the drop, not only its point
    assert table.loc[("tenure_band", "0-89d"), "failed"] and not table.loc[("tenure_band", "90d+"), "failed"]
    assert decision.figures["worst_segment_auc_drop"] == table.loc[("tenure_band", "0-89d"), "auc_drop"] > 0.03
    # Too small to judge: shown with no AUC, never failed.
    partner = table.loc[("source", "partner")]
    assert partner["n"] == 150 and np.isnan(partner["challenger_auc"]) and not partner["failed"]


def test_calibration_worse_than_the_champion_is_refused():
    rng, logit, labels, champion, segments = world()
    shifted = sigmoid(logit + 0.35 + rng.normal(scale=0.3, size=len(labels)))  # same ranking quality, odds too high
    decision = gate(labels, shifted, champion, segments, max_ece=0.2)
    assert not decision.passed and len(decision.reasons) == 1 and "above the champion's" in decision.reasons[0]
    assert decision.figures["challenger_ece"] > decision.figures["champion_ece"] + 0.01


def test_the_ece_ceiling_holds_while_the_champion_meets_it_and_a_drifted_champion_can_be_replaced():
    rng, logit, labels, champion, segments = world()
    # Labels drifted under both models: each over-predicts by the same odds.
    drifted_champion = sigmoid(logit + 0.6 + rng.normal(scale=0.3, size=len(labels)))
    drifted_challenger = sigmoid(logit + 0.6 + rng.normal(scale=0.3, size=len(labels)))
    both = gate(labels, drifted_challenger, drifted_champion, segments)
    assert both.figures["champion_ece"] > 0.03 and both.figures["challenger_ece"] > 0.03
    assert abs(both.figures["challenger_ece"] - both.figures["champion_ece"]) < 0.01
    assert both.passed and both.action == "promoted", both.reasons
    # The same challenger beside a champion within the ceiling is refused, for its ECE only.
    kept = gate(labels, drifted_challenger, champion, segments, max_ece_increase=1.0)
    assert kept.figures["champion_ece"] <= 0.03
    assert not kept.passed and len(kept.reasons) == 1 and kept.reasons[0].endswith("is above the maximum 0.03")


def test_inputs_that_do_not_fit_are_refused():
    _, _, labels, champion, segments = world(1000)
    with pytest.raises(ValueError, match="both be given or both be None"):
        evaluate_gate(labels, champion, champion, segments, model_name=MODEL, challenger_version="2",
                      champion_version=None)
    for bad in (dict(max_auc_drop=-0.01), dict(confidence=1.0), dict(n_boot=10), dict(min_segment_rows=0)):
        with pytest.raises(ValueError):
            GateCriteria(**bad)


def test_tags_carry_the_decision_every_figure_and_criterion():
    _, _, labels, champion, segments = world(3000)
    decision = gate(labels, champion, champion, segments)
    tags = decision.to_tags()
    assert (tags["gate.passed"], tags["gate.decision"], tags["gate.champion_version"]) == ("true", "promoted", "1")
    assert tags["gate.reasons"] == "none" and tags["gate.auc_difference"] == "0.0"
    assert tags["gate.challenger_auc"] == str(round(decision.figures["challenger_auc"], 4))
    assert {f"gate.{k}" for k in decision.figures} | {f"gate.criteria.{k}" for k in GateCriteria().to_dict()} <= set(tags)
    assert tags["gate.criteria.max_auc_drop"] == "0.005" and all(isinstance(v, str) for v in tags.values())
    long = GateDecision(**{**decision.__dict__, "passed": False, "reasons": ("x" * 3000, "y" * 3000)})
    assert len(long.to_tags()["gate.reasons"]) == 5000 and long.to_tags()["gate.decision"] == "refused"


# --- alias moves on a real registry --------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_registry_db(tmp_path_factory):
    """One migrated SQLite store per module; each test gets a copy (migrating takes seconds)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return path


@pytest.fixture
def registry(tmp_path, empty_registry_db):
    shutil.copy(empty_registry_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    for k in (1, 2, 3):
        client.create_model_version(MODEL, source=str(tmp_path / "artifacts" / f"m{k}"), run_id=None)
    return client


def aliases(client: MlflowClient) -> dict[str, str]:
    return {alias: str(v) for alias, v in client.get_registered_model(MODEL).aliases.items()}


def decision_for(version: str, champion: str | None, *, passed: bool = True) -> GateDecision:
    rng, logit, labels, good, segments = world(3000, seed=int(version))
    challenger = good if passed else sigmoid(rng.normal(size=len(labels)) - 2.2)
    return gate(labels, challenger, None if champion is None else good, segments, version=version,
                champion_v=champion)


def with_champion_1_and_challenger_2(client: MlflowClient) -> None:
    apply_gate_decision(client, decision_for("1", None), decided_at=NOW)
    client.set_registered_model_alias(MODEL, CHALLENGER_ALIAS, "2")  # as training leaves a new version


def test_decisions_move_the_aliases_and_leave_a_record(registry):
    assert champion_version(registry, MODEL) is None and champion_version(registry, "never_registered") is None
    first = apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    assert (first.action, first.previous_champion, first.champion_after, first.passed) == ("bootstrap", None, "1", True)
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "1"}

    refused = apply_gate_decision(registry, decision_for("2", "1", passed=False), decided_at=NOW)
    assert (refused.action, refused.previous_champion, refused.champion_after) == ("refused", "1", "1")
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}
    tags = registry.get_model_version(MODEL, "2").tags
    assert (tags["gate.decision"], tags["gate.passed"], tags["gate.applied"]) == ("refused", "false", "true")
    assert tags["gate.reasons"].startswith("AUC ") and float(tags["gate.auc_difference_high"]) < -0.005

    promoted = apply_gate_decision(registry, decision_for("3", "1"), decided_at=NOW)
    assert (promoted.action, promoted.previous_champion, promoted.champion_after) == ("promoted", "1", "3")
    assert aliases(registry) == {CHAMPION_ALIAS: "3", CHALLENGER_ALIAS: "3"} and champion_version(registry, MODEL) == "3"
    row = promoted.to_row()
    assert tuple(row) == PromotionRecord.COLUMNS and row["decided_by"] == "gate" and row["decided_at"] == NOW
    assert json.loads(row["criteria_json"])["max_auc_drop"] == 0.005
    assert json.loads(first.to_row()["figures_json"])["champion_auc"] is None  # NaN is not JSON


def test_a_decision_made_against_another_champion_is_not_applied(registry):
    with_champion_1_and_challenger_2(registry)
    stale = decision_for("3", None)  # judged as if there were no champion: it must not replace v1 unexamined
    with pytest.raises(PromotionError, match="decided against champion vnone, but the champion is now v1"):
        apply_gate_decision(registry, stale, decided_at=NOW)
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}
    assert "gate.decision" not in registry.get_model_version(MODEL, "3").tags


def test_the_first_version_refused_by_the_bootstrap_rule_leaves_no_champion(registry):
    record = apply_gate_decision(registry, decision_for("1", None, passed=False), decided_at=NOW)
    assert (record.action, record.previous_champion, record.champion_after) == ("refused", None, None)
    assert aliases(registry) == {CHALLENGER_ALIAS: "1"} and champion_version(registry, MODEL) is None


def test_rollback_restores_the_previous_champion_and_records_why(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    apply_gate_decision(registry, decision_for("2", "1"), decided_at=NOW)
    assert champion_version(registry, MODEL) == "2"
    record = rollback_champion(registry, MODEL, "1", reason="v2 mis-scores new signups", decided_at=NOW,
                               decided_by="rollback: ops")
    assert (record.action, record.version, record.previous_champion, record.champion_after, record.passed) == (
        "rollback", "1", "2", "1", None)
    assert record.decided_by == "rollback: ops" and record.reasons == "v2 mis-scores new signups"
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}
    tags = registry.get_model_version(MODEL, "1").tags
    assert tags["gate.rollback_reason"] == "v2 mis-scores new signups" and tags["gate.rolled_back_from"] == "2"

    with pytest.raises(ValueError, match="v1 is already the champion"):
        rollback_champion(registry, MODEL, "1", reason="again", decided_at=NOW)
    with pytest.raises(ValueError, match="has no version 7"):
        rollback_champion(registry, MODEL, "7", reason="typo", decided_at=NOW)
    with pytest.raises(ValueError, match="needs a reason"):
        rollback_champion(registry, MODEL, "2", reason="  ", decided_at=NOW)
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}


class Outage:
    """The real client, except that MLflow becomes unreachable for one method: its calls
    succeed ``after`` times, then raise (every later call too, unless ``blip``: only that
    one). With ``lands=True`` the failing call reaches the server before the error (a lost
    response: the move happened, the caller hears it failed)."""

    def __init__(self, client: MlflowClient, method: str, *, after: int = 0, blip: bool = False, lands: bool = False):
        self._client, self._method, self._after, self._blip, self._lands = client, method, after, blip, lands
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        real = getattr(self._client, name)
        if name != self._method:
            return real

        def call(*args, **kwargs):
            self.calls.append(args)
            if len(self.calls) <= self._after or (self._blip and len(self.calls) > self._after + 1):
                return real(*args, **kwargs)
            if self._lands:
                real(*args, **kwargs)
            raise MlflowException("connection refused")

        return call


def test_an_outage_at_the_champion_move_leaves_the_aliases_unchanged(registry):
    with_champion_1_and_challenger_2(registry)
    before = aliases(registry)
    outage = Outage(registry, "set_registered_model_alias")
    with pytest.raises(PromotionError) as error:
        apply_gate_decision(outage, decision_for("2", "1"), decided_at=NOW)
    assert str(error.value) == (
        f"{MODEL} v2: moving alias 'champion' failed (connection refused); the aliases are as they were (champion: v1)"
    )
    assert outage.calls == [(MODEL, CHAMPION_ALIAS, "2")]  # no restore was needed: nothing had moved
    assert aliases(registry) == before == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}
    assert "gate.applied" not in registry.get_model_version(MODEL, "2").tags


def test_a_champion_move_that_landed_although_the_call_failed_is_undone(registry):
    with_champion_1_and_challenger_2(registry)
    outage = Outage(registry, "set_registered_model_alias", after=0, blip=True, lands=True)
    with pytest.raises(PromotionError, match="moving alias 'champion' failed .*; the aliases are as they were"):
        apply_gate_decision(outage, decision_for("2", "1"), decided_at=NOW)
    # The failed call had moved the champion; reading the aliases back found it and put it back.
    assert outage.calls == [(MODEL, CHAMPION_ALIAS, "2"), (MODEL, CHAMPION_ALIAS, "1")]
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}


def test_a_failure_after_the_champion_moved_puts_both_aliases_back(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    before = aliases(registry)  # champion and challenger on v1
    # Both aliases move to v2, then MLflow fails while the version is tagged.
    outage = Outage(registry, "set_model_version_tag", after=3)
    with pytest.raises(PromotionError, match=rf"^{MODEL} v2: tagging the version with the gate decision failed "
                                             r"\(connection refused\); the aliases are as they were"):
        apply_gate_decision(outage, decision_for("2", "1"), decided_at=NOW)
    assert aliases(registry) == before == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "1"}
    tags = registry.get_model_version(MODEL, "2").tags
    assert len([k for k in tags if k.startswith("gate.")]) == 3 and "gate.applied" not in tags


def test_when_the_restore_fails_too_the_error_says_so_and_names_the_champion_to_restore(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    # The champion moves (first call), the challenger alias fails, and so does putting the champion back.
    outage = Outage(registry, "set_registered_model_alias", after=1)
    with pytest.raises(PromotionError) as error:
        apply_gate_decision(outage, decision_for("2", "1"), decided_at=NOW)
    message = str(error.value)
    assert message.startswith(f"{MODEL} v2: moving alias 'challenger' failed (connection refused); RESTORING")
    assert "set 'champion' back by hand; the champion was v1" in message
    assert aliases(registry) == {CHAMPION_ALIAS: "2", CHALLENGER_ALIAS: "1"}  # the half state the message describes


def test_an_unreachable_registry_before_anything_moved_changes_nothing(registry):
    with_champion_1_and_challenger_2(registry)
    with pytest.raises(PromotionError, match="reading the aliases before moving them failed .*nothing was changed"):
        apply_gate_decision(Outage(registry, "get_registered_model"), decision_for("2", "1"), decided_at=NOW)
    with pytest.raises(MlflowException, match="connection refused"):  # not mistaken for "no champion"
        champion_version(Outage(registry, "get_registered_model"), MODEL)
    assert aliases(registry) == {CHAMPION_ALIAS: "1", CHALLENGER_ALIAS: "2"}


def test_an_outage_during_a_rollback_keeps_the_current_champion(registry):
    apply_gate_decision(registry, decision_for("1", None), decided_at=NOW)
    apply_gate_decision(registry, decision_for("2", "1"), decided_at=NOW)
    with pytest.raises(PromotionError, match="v1: moving alias 'champion' failed .*as they were"):
        rollback_champion(Outage(registry, "set_registered_model_alias"), MODEL, "1", reason="r", decided_at=NOW)
    assert champion_version(registry, MODEL) == "2"
    # The champion moved back, then tagging the rollback failed: it is moved forward again.
    with pytest.raises(PromotionError, match="tagging the version with the rollback failed .*as they were"):
        rollback_champion(Outage(registry, "set_model_version_tag"), MODEL, "1", reason="r", decided_at=NOW)
    assert champion_version(registry, MODEL) == "2"
    assert "gate.rollback_reason" not in registry.get_model_version(MODEL, "1").tags
