"""Champion and challenger: the promotion gate, the alias moves, the rollback.

A new version gets the alias ``challenger``. The gate compares it with ``champion`` on the
same rows (the most recent matured window, which neither trained on) and passes it unless:

- AUC: the upper bound of the paired-bootstrap interval of (challenger - champion) AUC is
  below ``-max_auc_drop``, i.e. we are confident it is worse by more than the tolerance.
  Refusing unless the lower bound clears ``-max_auc_drop`` (non-inferiority) refused 72-82%
  of simulated retrains exactly as good as the champion on 5k-20k rows (the interval is
  0.015-0.03 wide there): the champion would go stale. Shuffled labels are refused by either.
- calibration: its ECE is above ``max_ece`` while the champion's is within it, or more than
  ``max_ece_increase`` above the champion's (so a champion whose calibration drifted past
  ``max_ece`` can be replaced by a challenger no worse than it);
- segments: in some group (e.g. lifecycle stage, tenure band) with at least
  ``min_segment_rows`` rows and both classes, we are confident its AUC is more than
  ``max_segment_auc_drop`` below the champion's: the paired-bootstrap interval of the
  group's drop lies wholly above the tolerance (a model can hold overall and fail a group).

Without a champion the bootstrap rule applies: the first version becomes champion when its
own AUC interval lies above 0.5 and its ECE is within ``max_ece``.

Alias moves are all-or-nothing: if an MLflow call fails halfway, the aliases are put back
to what they were and `PromotionError` says which step failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from ml.propensity.metrics import (
    bootstrap_auc,
    expected_calibration_error,
    paired_bootstrap_auc_difference,
    segment_aucs,
    segment_groups,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
# Written last by apply_gate_decision: gate tags on a version without it come from an
# attempt that failed (its aliases were put back).
APPLIED_TAG = "gate.applied"
# The warehouse as-of moment (loop day) a gate decision was taken on.
DATA_AS_OF_TAG = "gate.data_as_of"
MAX_TAG_CHARS = 5000
SEGMENT_TABLE_COLUMNS = ["attribute", "group", "n", "challenger_auc", "champion_auc", "auc_drop", "drop_low", "failed"]


class PromotionError(RuntimeError):
    """An alias move failed; the message says which step and what state the aliases are in."""


@dataclass(frozen=True)
class GateCriteria:
    """Tolerances of the gate; AUC and ECE are on the evaluation rows, in absolute units."""

    max_auc_drop: float = 0.005  # refused when the whole CI of (challenger - champion) is below minus this
    max_ece: float = 0.03  # the challenger's expected calibration error (10 equal-frequency bins)
    max_ece_increase: float = 0.01  # over the champion's ECE
    max_segment_auc_drop: float = 0.03  # champion AUC - challenger AUC, in any judged segment group
    min_segment_rows: int = 200  # smaller groups (or single-class ones) are shown but not judged
    n_boot: int = 500  # bootstrap resamples for the AUC intervals
    confidence: float = 0.95  # of those intervals
    seed: int = 0  # of the resampling, so a decision can be reproduced

    def __post_init__(self) -> None:
        tolerances = (self.max_auc_drop, self.max_ece, self.max_ece_increase, self.max_segment_auc_drop)
        if not all(0 <= t <= 1 for t in tolerances):
            raise ValueError(f"gate tolerances must be between 0 and 1, got {tolerances}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be between 0.5 and 1, got {self.confidence}")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be at least 100 for a usable interval, got {self.n_boot}")
        if self.min_segment_rows < 1:
            raise ValueError(f"min_segment_rows must be at least 1, got {self.min_segment_rows}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    model_name: str
    challenger_version: str
    champion_version: str | None
    passed: bool
    bootstrap: bool  # no champion yet: judged by the bootstrap rule
    reasons: tuple[str, ...]  # one sentence per failed criterion
    figures: dict[str, float]
    segments: pd.DataFrame = field(repr=False, compare=False)
    criteria: GateCriteria = field(default_factory=GateCriteria)

    @property
    def action(self) -> str:
        if not self.passed:
            return "refused"
        return "bootstrap" if self.bootstrap else "promoted"

    def summary(self) -> str:
        head = f"{self.model_name} v{self.challenger_version} (AUC {self.figures['challenger_auc']:.4f})"
        if self.bootstrap:
            head += f", no champion yet: {'champion by the bootstrap rule' if self.passed else 'refused'}"
        else:
            head += f" vs champion v{self.champion_version} (AUC {self.figures['champion_auc']:.4f}): {self.action}"
        return head + (f": {'; '.join(self.reasons)}" if self.reasons else "")

    def to_tags(self) -> dict[str, str]:
        reasons = "; ".join(self.reasons) or "none"
        if len(reasons) > MAX_TAG_CHARS:
            reasons = reasons[: MAX_TAG_CHARS - 1] + "…"
        tags = {
            "gate.passed": str(self.passed).lower(),
            "gate.decision": self.action,
            "gate.champion_version": self.champion_version or "none",
            "gate.reasons": reasons,
        }
        tags.update({f"gate.{name}": str(round(float(value), 4)) for name, value in self.figures.items()})
        tags.update({f"gate.criteria.{name}": str(value) for name, value in self.criteria.to_dict().items()})
        return tags


def evaluate_gate(
    labels,
    challenger_scores,
    champion_scores,
    segments: pd.DataFrame,
    *,
    model_name: str,
    challenger_version: str,
    champion_version: str | None,
    criteria: GateCriteria = GateCriteria(),
) -> GateDecision:
    """Judge a challenger on aligned rows neither model trained on (the caller's guarantee).

    ``champion_scores`` and ``champion_version`` are both None (no champion: the bootstrap
    rule) or both given.
    """
    if (champion_scores is None) != (champion_version is None):
        # Bootstrapping while a champion exists would replace it unexamined.
        raise ValueError("champion_scores and champion_version must both be given or both be None")
    labels = np.asarray(labels)
    pct = f"{criteria.confidence:.0%}"
    boot = dict(n_boot=criteria.n_boot, seed=criteria.seed, confidence=criteria.confidence)
    own = bootstrap_auc(labels, challenger_scores, **boot)
    challenger_ece = expected_calibration_error(labels, challenger_scores)
    nan = float("nan")  # figures that need a champion, when there is none
    figures = {
        "challenger_auc": own.auc, "challenger_auc_low": own.low, "challenger_auc_high": own.high,
        "champion_auc": nan, "auc_difference": nan, "auc_difference_low": nan, "auc_difference_high": nan,
        "challenger_ece": challenger_ece, "champion_ece": nan, "n_rows": float(len(labels)),
    }
    reasons: list[str] = []
    if champion_scores is None:
        if challenger_ece > criteria.max_ece:
            reasons.append(f"ECE {challenger_ece:.4f} is above the maximum {criteria.max_ece}")
        if not own.low > 0.5:
            reasons.insert(0, f"AUC {own.auc:.3f}: the {pct} CI [{own.low:.3f}, {own.high:.3f}] does not lie above 0.5")
        table = _segment_table(labels, challenger_scores, None, segments, criteria)
    else:
        diff = paired_bootstrap_auc_difference(labels, challenger_scores, champion_scores, **boot)
        champion_ece = expected_calibration_error(labels, champion_scores)
        figures.update(champion_auc=diff.auc_b, auc_difference=diff.difference, auc_difference_low=diff.low,
                       auc_difference_high=diff.high, champion_ece=champion_ece)
        if diff.high < -criteria.max_auc_drop:
            reasons.insert(0, (
                f"AUC {diff.auc_a:.3f} vs champion {diff.auc_b:.3f}: the {pct} CI of the difference "
                f"[{diff.low:.3f}, {diff.high:.3f}] is below -{criteria.max_auc_drop}"
            ))
        # The ceiling holds while the champion meets it. When the champion is as badly
        # calibrated on the same rows (labels drifted under both), refusing would keep a model
        # that is no better: then the challenger must only not be worse than it by more
        # than max_ece_increase. (The churn model in a 35-day loop: a challenger with ECE
        # 0.055 was refused beside a champion with 0.057, and the champion kept scoring.)
        if challenger_ece > criteria.max_ece and not champion_ece > criteria.max_ece:
            reasons.append(f"ECE {challenger_ece:.4f} is above the maximum {criteria.max_ece}")
        if challenger_ece > champion_ece + criteria.max_ece_increase:
            reasons.append(f"ECE {challenger_ece:.4f} is more than {criteria.max_ece_increase} "
                           f"above the champion's {champion_ece:.4f}")
        table = _segment_table(labels, challenger_scores, champion_scores, segments, criteria)
        for row in table.loc[table["failed"]].itertuples():
            reasons.append(
                f"{row.attribute}={row.group}: AUC {row.challenger_auc:.3f} vs champion {row.champion_auc:.3f} "
                f"(drop {row.auc_drop:.3f} > {criteria.max_segment_auc_drop}, {row.n} rows)"
            )
    drops = table["auc_drop"].dropna()
    figures["worst_segment_auc_drop"] = float(drops.max()) if len(drops) else float("nan")
    return GateDecision(
        model_name=model_name, challenger_version=str(challenger_version),
        champion_version=None if champion_version is None else str(champion_version),
        passed=not reasons, bootstrap=champion_scores is None, reasons=tuple(reasons), figures=figures,
        segments=table, criteria=criteria,
    )


def _segment_table(labels, challenger, champion, segments: pd.DataFrame, criteria: GateCriteria) -> pd.DataFrame:
    """Per segment group: both AUCs, the drop, and whether it fails.

    Like the overall rule, a group fails only when we are confident of the drop: the upper
    end of the paired-bootstrap interval of (challenger - champion) AUC in the group lies
    below -max_segment_auc_drop. Point drops alone refused about one equally good retrain
    in five, from noise in groups of a few hundred rows."""
    kwargs = dict(min_rows=criteria.min_segment_rows, n_boot=0)
    table = segment_aucs(labels, challenger, segments, **kwargs)[["attribute", "group", "n", "auc"]]
    table = table.rename(columns={"auc": "challenger_auc"})
    table["drop_low"] = float("nan")
    if champion is None:
        table["champion_auc"] = float("nan")
    else:
        theirs = segment_aucs(labels, champion, segments, **kwargs)[["attribute", "group", "auc"]]
        table = table.merge(theirs.rename(columns={"auc": "champion_auc"}), on=["attribute", "group"], how="left")
        for index, row in table.loc[table["challenger_auc"].notna() & table["champion_auc"].notna()].iterrows():
            mask = (segment_groups(segments, row["attribute"]) == row["group"]).to_numpy()
            difference = paired_bootstrap_auc_difference(
                np.asarray(labels)[mask], np.asarray(challenger)[mask], np.asarray(champion)[mask],
                n_boot=criteria.n_boot, seed=criteria.seed, confidence=criteria.confidence,
            )
            table.loc[index, "drop_low"] = -difference.high  # the smallest drop the interval allows
    table["auc_drop"] = table["champion_auc"] - table["challenger_auc"]
    # NaN (groups too small to judge) compares False: shown, never failed.
    table["failed"] = (table["drop_low"] > criteria.max_segment_auc_drop).astype(bool)
    return table[SEGMENT_TABLE_COLUMNS]


@dataclass(frozen=True)
class PromotionRecord:
    """One row of ml.model_promotions: a gate decision or a rollback."""

    model_name: str
    version: str
    action: str  # promoted | refused | bootstrap | rollback
    previous_champion: str | None
    champion_after: str | None
    passed: bool | None  # None for a rollback: no gate was run
    reasons: str
    figures_json: str
    criteria_json: str
    decided_at: datetime  # wall-clock time of the decision
    decided_by: str  # "gate" or "rollback: <who>"
    # The warehouse's as-of moment the decision was taken on: the loop day an auditor looks
    # for (decided_at is when the process ran, which for a backfill or a simulation is
    # another day). None when no warehouse day is known.
    data_as_of: datetime | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "model_name", "version", "action", "previous_champion", "champion_after", "passed",
        "reasons", "figures_json", "criteria_json", "decided_at", "decided_by", "data_as_of",
    )
    # SQL types of the columns: a table created from a first row whose previous_champion is
    # null (the bootstrap) must still take the next row's version.
    SQL_TYPES: ClassVar[dict[str, str]] = {
        "model_name": "varchar", "version": "varchar", "action": "varchar", "previous_champion": "varchar",
        "champion_after": "varchar", "passed": "boolean", "reasons": "varchar", "figures_json": "varchar",
        "criteria_json": "varchar", "decided_at": "timestamp", "decided_by": "varchar", "data_as_of": "timestamp",
    }

    def __post_init__(self) -> None:
        if self.action not in ("promoted", "refused", "bootstrap", "rollback"):
            raise ValueError(f"unknown promotion action {self.action!r}")

    def to_row(self) -> dict:
        return {column: getattr(self, column) for column in self.COLUMNS}


def _not_found(error: Exception) -> bool:
    return getattr(error, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def champion_version(client: MlflowClient, model_name: str) -> str | None:
    """The version ``champion`` names; None when no version holds it or the model is not
    registered yet. Any other MLflow error propagates."""
    try:
        aliases = client.get_registered_model(model_name).aliases
    except Exception as error:
        if _not_found(error):
            return None
        raise
    version = aliases.get(CHAMPION_ALIAS)
    return None if version is None else str(version)


def _aliases(client: MlflowClient, model_name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(model_name).aliases.items()}


Step = tuple[str, "str | None", Callable[[], object]]  # (what it does, the alias it moves, the call)


def _alias_step(client: MlflowClient, model_name: str, alias: str, version: str) -> Step:
    return f"moving alias '{alias}'", alias, lambda: client.set_registered_model_alias(model_name, alias, version)


def _tag_step(client: MlflowClient, model_name: str, version: str, what: str, tags: dict[str, str]) -> Step:
    # One call per tag, in order: a failure stops at the first tag not written.
    return what, None, lambda: [client.set_model_version_tag(model_name, version, k, v) for k, v in tags.items()]


def _restore(
    client: MlflowClient, model_name: str, before: dict[str, str], touched: list[str]
) -> tuple[str | None, list[str]]:
    """Put the ``touched`` aliases back as in ``before``, verified by reading them back.

    Returns (None, []) when they are as before, else (what went wrong, aliases to fix by hand).
    A move whose call raised may still have landed (a lost response), so it is checked too.
    """
    pending = list(touched)
    try:
        current = _aliases(client, model_name)
        pending = [alias for alias in touched if current.get(alias) != before.get(alias)]
        for alias in pending:
            if alias in before:
                client.set_registered_model_alias(model_name, alias, before[alias])
            else:
                client.delete_registered_model_alias(model_name, alias)
        after = _aliases(client, model_name)
    except Exception as error:  # reported with the first failure, not raised over it
        return f"{type(error).__name__}: {error}", pending
    pending = [alias for alias in touched if after.get(alias) != before.get(alias)]
    return ("the aliases read back still differ" if pending else None), pending


def _all_or_nothing(
    client: MlflowClient, model_name: str, version: str, steps: list[Step], *, decided_against: str | None
) -> dict[str, str]:
    """Run ``steps`` after reading the aliases; if one fails, put back the aliases touched so
    far and raise PromotionError. Returns the aliases as they were before.

    ``decided_against``: the champion when the decision was made (None: no champion). If
    another process has moved it since (a rollback, another gate), nothing is changed."""
    try:
        before = _aliases(client, model_name)
    except Exception as error:
        raise PromotionError(
            f"{model_name} v{version}: reading the aliases before moving them failed ({error}); nothing was changed"
        ) from error
    if before.get(CHAMPION_ALIAS) != decided_against:
        raise PromotionError(
            f"{model_name} v{version}: decided against champion v{decided_against or 'none'}, but the champion "
            f"is now v{before.get(CHAMPION_ALIAS, 'none')}; nothing was changed, decide again"
        )
    touched: list[str] = []
    for description, alias, call in steps:
        if alias is not None and alias not in touched:
            touched.append(alias)
        try:
            call()
        except Exception as error:
            problem, pending = _restore(client, model_name, before, touched)
            champion = before.get(CHAMPION_ALIAS, "none")
            was = ", ".join(f"{a} v{before.get(a, 'none')}" for a in (CHAMPION_ALIAS, CHALLENGER_ALIAS))
            if problem is None:
                state = f"the aliases are as they were (champion: v{champion})"
            else:
                names = ", ".join(repr(a) for a in pending)
                state = (
                    f"RESTORING THE ALIASES ALSO FAILED ({problem}): set {names} back by hand; "
                    f"the champion was v{champion} (before: {was})"
                )
            raise PromotionError(f"{model_name} v{version}: {description} failed ({error}); {state}") from error
    return before


def apply_gate_decision(
    client: MlflowClient, decision: GateDecision, *, decided_at: datetime, data_as_of: datetime | None = None,
) -> PromotionRecord:
    """Move ``champion`` to the challenger if it passed, alias it ``challenger`` and tag it
    with the decision (and ``gate.data_as_of``, the warehouse day it was taken on, when
    given). All or nothing for the aliases."""
    name, version = decision.model_name, decision.challenger_version
    # The champion moves first: when MLflow is unreachable, nothing has changed yet. The tags
    # come after the aliases and `gate.applied` last, so a version whose gate tags lack it had
    # its decision interrupted (and its aliases put back), whatever else it carries.
    as_of_tag = {} if data_as_of is None else {DATA_AS_OF_TAG: data_as_of.isoformat()}
    tags = {**decision.to_tags(), **as_of_tag, APPLIED_TAG: "true"}
    steps = [_alias_step(client, name, CHAMPION_ALIAS, version)] if decision.passed else []
    steps += [_alias_step(client, name, CHALLENGER_ALIAS, version),
              _tag_step(client, name, version, "tagging the version with the gate decision", tags)]
    before = _all_or_nothing(client, name, version, steps, decided_against=decision.champion_version)
    previous = before.get(CHAMPION_ALIAS)
    return PromotionRecord(
        model_name=name, version=version, action=decision.action, previous_champion=previous,
        champion_after=version if decision.passed else previous, passed=decision.passed,
        reasons="; ".join(decision.reasons), figures_json=_json(decision.figures),
        criteria_json=_json(decision.criteria.to_dict()), decided_at=decided_at, decided_by="gate",
        data_as_of=data_as_of,
    )


def rollback_champion(
    client: MlflowClient, model_name: str, to_version: str, *, reason: str, decided_at: datetime,
    decided_by: str = "rollback", data_as_of: datetime | None = None,
) -> PromotionRecord:
    """Move ``champion`` back to ``to_version`` (an existing, non-champion version), recording why."""
    if not reason.strip():
        raise ValueError("a rollback needs a reason; it is recorded with the decision")
    to_version = str(to_version)
    try:
        found = client.get_model_version(model_name, to_version)
    except Exception as error:
        if _not_found(error):
            raise ValueError(f"{model_name} has no version {to_version} to roll back to") from error
        raise
    if found.status != "READY":
        raise ValueError(f"{model_name} v{to_version} is {found.status}, not READY; it cannot serve")
    current = champion_version(client, model_name)
    if current == to_version:
        raise ValueError(f"{model_name} v{to_version} is already the champion; nothing to roll back")
    tags = {
        "gate.rollback_reason": reason[:MAX_TAG_CHARS],
        "gate.rolled_back_from": current or "none",
        "gate.rolled_back_at": decided_at.isoformat(),
        "gate.rolled_back_by": decided_by,
        **({} if data_as_of is None else {"gate.rolled_back_as_of": data_as_of.isoformat()}),
    }
    _all_or_nothing(client, model_name, to_version, [
        _alias_step(client, model_name, CHAMPION_ALIAS, to_version),
        _tag_step(client, model_name, to_version, "tagging the version with the rollback", tags),
    ], decided_against=current)
    return PromotionRecord(
        model_name=model_name, version=to_version, action="rollback", previous_champion=current,
        champion_after=to_version, passed=None, reasons=reason, figures_json="{}", criteria_json="{}",
        decided_at=decided_at, decided_by=decided_by, data_as_of=data_as_of,
    )


def _json(values: dict) -> str:
    # JSON has no NaN: figures that do not apply (no champion yet) are null.
    return json.dumps({k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()},
                      sort_keys=True)
