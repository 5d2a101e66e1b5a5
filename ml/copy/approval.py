"""Human approval of copy variants: the states, the allowed moves, and the append-only log.

A variant is `proposed` when it is first recorded; a reviewer moves it to `approved` or
`rejected`, and an approved variant can later be `retired`. Every move is one row of the log
(APPROVAL_LOG_COLUMN_TYPES) with the reviewer, the time and the reason; a variant's state is
its latest row. Only `approved` variants may be planned.

Auto-approval is allowed for one thing only: a variant of the deterministic `approved_blocks`
provider, every block of which is in the approved blocks files, that passed the guardrails,
when the configuration says so (`AutoApproval.approved_blocks`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

PROPOSED = "proposed"
APPROVED = "approved"
REJECTED = "rejected"
RETIRED = "retired"
APPROVAL_STATES = (PROPOSED, APPROVED, REJECTED, RETIRED)
# state -> the states a reviewer may move it to.
TRANSITIONS = {PROPOSED: (APPROVED, REJECTED), APPROVED: (RETIRED,), REJECTED: (), RETIRED: ()}
DECISIONS = tuple(sorted({to for targets in TRANSITIONS.values() for to in targets}))
# How many moves from `proposed` each state is. The moves only go forward, so a variant's
# state is the one of its rows that is furthest along (no clock or row order needed).
STATE_ORDER = {PROPOSED: 0, APPROVED: 1, REJECTED: 1, RETIRED: 2}

APPROVAL_LOG_COLUMN_TYPES = {
    "variant_id": "varchar",
    "from_state": "varchar",  # null for the first record (a new proposal)
    "to_state": "varchar",
    "reviewer": "varchar",
    "reason": "varchar",
    "decided_at": "timestamp",
}
APPROVAL_LOG_COLUMNS = tuple(APPROVAL_LOG_COLUMN_TYPES)

# Why a personalised send got the approved default although its segment has generated copy
# that passed the guardrails: the generated variant's state (None: no approval record).
NOT_APPROVED_REASONS = {PROPOSED: "awaiting_approval", REJECTED: "rejected_by_reviewer", RETIRED: "retired_by_reviewer",
                        None: "no_approval_record"}

# Who auto-approval is recorded as.
AUTO_REVIEWER = "auto-approval (approved_blocks provider, config auto_approve_approved_blocks)"
APPROVED_BLOCKS_PROVIDER = "approved_blocks"


class ApprovalError(ValueError):
    """A move the approval rules do not allow; the message says which and what to do."""


@dataclass(frozen=True)
class AutoApproval:
    """Whether the `approved_blocks` provider's compositions of approved blocks are approved
    on creation. Nothing else is ever approved automatically."""

    approved_blocks: bool


def current_states(log: pd.DataFrame) -> pd.Series:
    """variant_id -> its state: the `to_state` furthest along (STATE_ORDER) among its rows."""
    if log.empty:
        return pd.Series(dtype="object", name="approval_state")
    ordered = log.assign(_order=log["to_state"].map(STATE_ORDER)).sort_values(["variant_id", "_order"])
    return ordered.groupby("variant_id")["to_state"].last().rename("approval_state")


def approved_block_ids(blocks, email_blocks) -> frozenset[str]:
    """Every block id of the approved subject-line and email blocks files."""
    ids = {b.id for b in (*blocks.patterns, *blocks.openers, blocks.fallback, *blocks.category_fallbacks.values())}
    ids |= {b.id for hooks in blocks.category_hooks.values() for b in hooks}
    ids |= {b.id for closers in blocks.lifecycle_closers.values() for b in closers}
    ids |= {b.id for b in email_blocks.preheaders.values()}
    ids |= set(email_blocks.body_blocks_by_id)
    return frozenset(ids)


def decision_row(variant_id: str, current: str | None, decision: str, *, reviewer: str, reason: str,
                 at: datetime) -> dict:
    """The log row moving `variant_id` from `current` to `decision`, or ApprovalError."""
    if not reviewer or not reviewer.strip():
        raise ApprovalError(f"variant {variant_id}: a decision needs a reviewer (who decided). Fix: give --reviewer.")
    if not reason or not reason.strip():
        raise ApprovalError(f"variant {variant_id}: a decision needs a reason. Fix: give --reason.")
    if decision not in DECISIONS:
        raise ApprovalError(f"variant {variant_id}: decision {decision!r} is not one of {list(DECISIONS)}")
    if current is None:
        raise ApprovalError(
            f"variant {variant_id} has no approval record: it was never proposed. Fix: check the id against "
            "the copy variants table (ml.subject_line_variants)."
        )
    if decision not in TRANSITIONS[current]:
        allowed = list(TRANSITIONS[current]) or "nothing (final)"
        raise ApprovalError(f"variant {variant_id} is {current}: it can move to {allowed}, not {decision}")
    return {"variant_id": variant_id, "from_state": current, "to_state": decision, "reviewer": reviewer.strip(),
            "reason": reason.strip(), "decided_at": pd.Timestamp(at)}


def new_variant_records(variants: pd.DataFrame, states: pd.Series, *, auto: AutoApproval, at: datetime,
                        approved_block_ids: frozenset[str]) -> pd.DataFrame:
    """Log rows for the day's candidates that have no record yet: `proposed` for each that
    passed the guardrails, then `approved` by AUTO_REVIEWER for those auto-approval allows
    (`approved_blocks` provider, every block id of its recipe and body in
    `approved_block_ids`, `auto.approved_blocks` on). Rejected candidates get no record:
    they never reach a reviewer."""
    passing = variants[variants["guardrail_passed"]].drop_duplicates("variant_id")
    new = passing[~passing["variant_id"].isin(states.index)]
    rows = []
    stamp = pd.Timestamp(at)
    for variant in new.itertuples(index=False):
        rows.append({"variant_id": variant.variant_id, "from_state": None, "to_state": PROPOSED,
                     "reviewer": f"provider {variant.provider}", "reason": "generated and passed the guardrails",
                     "decided_at": stamp})
        if auto.approved_blocks and auto_approvable(variant, approved_block_ids):
            rows.append({"variant_id": variant.variant_id, "from_state": PROPOSED, "to_state": APPROVED,
                         "reviewer": AUTO_REVIEWER, "reason": "a composition of approved blocks only",
                         "decided_at": stamp})
    return pd.DataFrame(rows, columns=list(APPROVAL_LOG_COLUMNS))


def auto_approvable(variant, approved_block_ids: frozenset[str]) -> bool:
    """Whether auto-approval may approve this candidate (a row of the variants frame)."""
    if variant.provider != APPROVED_BLOCKS_PROVIDER or not variant.guardrail_passed:
        return False
    recipe = json.loads(variant.composition_recipe)
    used = set(recipe.get("blocks", {}).values()) | {recipe[k] for k in ("pattern", "fallback") if k in recipe}
    used |= set(json.loads(variant.body_block_ids)) | ({recipe["preheader"]} if "preheader" in recipe else set())
    return bool(used) and used <= approved_block_ids


def with_approval_states(variants: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """The variants with their current `approval_state` from the log (None: no record)."""
    states = current_states(log)
    return variants.assign(approval_state=variants["variant_id"].map(states).astype("object").where(
        variants["variant_id"].isin(states.index), None))
