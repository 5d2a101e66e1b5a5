"""Human approval of copy variants: a Dagster job with config, one CLI command, and the
warehouse reads the copy step and the planned-sends check share.

From the Dagster UI: launch `review_copy_variant_job` with config

    ops: {review_copy_variant: {config: {variant_id: v_..., decision: approved,
                                         reviewer: "Jane (lifecycle lead)", reason: "on brand"}}}

From a shell (PIPELINE_STATE_DIR picks the state, as for every command):

    python -m orchestration.defs.copy_approval v_0123456789abcdef approved --reviewer "..." --reason "..."
    python -m orchestration.defs.copy_approval --list       # variants waiting for a reviewer

Each decision appends one row to ml.copy_variant_approvals (who, when, why); the move must be
one ml.copy.approval.TRANSITIONS allows.
"""


import argparse
import sys
from datetime import date, datetime, timezone

import dagster as dg
import pandas as pd

from ml.copy.approval import (
    APPROVAL_LOG_COLUMN_TYPES, APPROVED, APPROVED_BLOCKS_PROVIDER, DECISIONS, PROPOSED, STATE_ORDER, ApprovalError, decision_row,
)
from orchestration import tables
from orchestration.resources import PipelineSettings, Warehouse


def approval_states_sql() -> str:
    """A query of (variant_id, approval_state): each variant's latest state (ml.copy.approval.STATE_ORDER)."""
    order = " ".join(f"when '{state}' then {rank}" for state, rank in STATE_ORDER.items())
    return (f"select variant_id, arg_max(to_state, case to_state {order} end) as approval_state "
            f"from {tables.COPY_VARIANT_APPROVALS} group by variant_id")


def variant_states(warehouse: Warehouse) -> pd.Series:
    """variant_id -> state, empty before the first record."""
    if not warehouse.has_table(tables.COPY_VARIANT_APPROVALS):
        return pd.Series(dtype="object", name="approval_state")
    return warehouse.read(approval_states_sql()).set_index("variant_id")["approval_state"]


def day_variants_with_states(warehouse: Warehouse, day: date) -> pd.DataFrame:
    """The day's copy variants with their current approval state (null: no record)."""
    if not warehouse.has_table(tables.COPY_VARIANT_APPROVALS):
        return warehouse.read(
            f"select * exclude (composed_on), cast(null as varchar) as approval_state "
            f"from {tables.SUBJECT_LINE_VARIANTS} where composed_on = ?", [day])
    return warehouse.read(
        f"select v.* exclude (composed_on), s.approval_state from {tables.SUBJECT_LINE_VARIANTS} v "
        f"left join ({approval_states_sql()}) s using (variant_id) where v.composed_on = ?", [day])


def earlier_generated_variants(warehouse: Warehouse, day: date) -> pd.DataFrame:
    """Generated (not approved_blocks) variants of the days before `day`; empty before the
    first, or for a table from before providers (no provider column)."""
    if not warehouse.has_table(tables.SUBJECT_LINE_VARIANTS) or "provider" not in warehouse.read(
            f"select * from {tables.SUBJECT_LINE_VARIANTS} limit 0").columns:
        return pd.DataFrame()
    return warehouse.read(
        f"select * from {tables.SUBJECT_LINE_VARIANTS} where composed_on < ? and provider <> '{APPROVED_BLOCKS_PROVIDER}'",
        [day],
    )


def unapproved_planned_sends(warehouse: Warehouse, send_day: date) -> pd.DataFrame:
    """The send day's planned sends whose variant is not `approved` now, counted by state."""
    states = approval_states_sql() if warehouse.has_table(tables.COPY_VARIANT_APPROVALS) else \
        "select cast(null as varchar) as variant_id, cast(null as varchar) as approval_state where false"
    return warehouse.read(
        f"select coalesce(s.approval_state, 'no_record') as approval_state, count(*) as sends "
        f"from {tables.PLANNED_SENDS} ps left join ({states}) s using (variant_id) "
        f"where ps.planned_for = ? and s.approval_state is distinct from '{APPROVED}' group by all order by all",
        [send_day],
    )


def record_decision(warehouse: Warehouse, variant_id: str, decision: str, *, reviewer: str, reason: str,
                    at: datetime | None = None) -> dict:
    """Append the reviewer's decision on a variant; ApprovalError if the move is not allowed."""
    current = variant_states(warehouse).get(variant_id)
    row = decision_row(variant_id, current, decision, reviewer=reviewer, reason=reason,
                       at=at or datetime.now(timezone.utc).replace(tzinfo=None))
    warehouse.append_rows(pd.DataFrame([row], columns=list(APPROVAL_LOG_COLUMN_TYPES)),
                          tables.COPY_VARIANT_APPROVALS, APPROVAL_LOG_COLUMN_TYPES)
    return row


def waiting_for_review(warehouse: Warehouse) -> pd.DataFrame:
    """Variants waiting for a reviewer, with their copy and provenance (latest day's row)."""
    if not warehouse.has_table(tables.COPY_VARIANT_APPROVALS):
        return pd.DataFrame(columns=["variant_id"])
    return warehouse.read(
        f"""select s.variant_id, v.top_category, v.lifecycle_stage, v.subject_line, v.preheader, v.provider,
                   v.model, v.prompt_name, v.prompt_version, v.composed_on
            from ({approval_states_sql()}) s join {tables.SUBJECT_LINE_VARIANTS} v using (variant_id)
            where s.approval_state = '{PROPOSED}'
            qualify row_number() over (partition by s.variant_id order by v.composed_on desc) = 1
            order by v.top_category, v.lifecycle_stage, s.variant_id"""
    )


class ReviewCopyVariantConfig(dg.Config):
    variant_id: str
    decision: str  # one of ml.copy.approval.DECISIONS: approved, rejected, retired
    reviewer: str
    reason: str


@dg.op(description="Record a reviewer's decision on a copy variant (approve, reject or retire) in "
                   "ml.copy_variant_approvals, with who, when and why.")
def review_copy_variant(context: dg.OpExecutionContext, config: ReviewCopyVariantConfig,
                        settings: PipelineSettings) -> None:
    try:
        row = record_decision(settings.warehouse(), config.variant_id, config.decision, reviewer=config.reviewer,
                              reason=config.reason)
    except ApprovalError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(f"Variant {row['variant_id']}: {row['from_state']} -> {row['to_state']} by {row['reviewer']}")


@dg.job(description="Approve, reject or retire one copy variant (config: variant_id, decision, reviewer, reason). "
                    "Only approved variants are ever planned (docs/copy.md).")
def review_copy_variant_job():
    review_copy_variant()


@dg.definitions
def copy_approval_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[review_copy_variant_job])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.defs.copy_approval",
                                     description="Approve, reject or retire a copy variant, or list those waiting.")
    parser.add_argument("variant_id", nargs="?")
    parser.add_argument("decision", nargs="?", choices=DECISIONS)
    parser.add_argument("--reviewer")
    parser.add_argument("--reason")
    parser.add_argument("--list", action="store_true", help="list the variants waiting for a reviewer")
    args = parser.parse_args(argv)
    settings = PipelineSettings()
    warehouse = settings.warehouse()
    if not warehouse.path.exists():
        print(f"error: no warehouse at {warehouse.path}: the pipeline has not run on this state. Fix: set "
              "PIPELINE_STATE_DIR to the state folder of your runs (default .state), or run the pipeline first.",
              file=sys.stderr)
        return 2
    if args.list:
        waiting = waiting_for_review(warehouse)
        print(waiting.to_string(index=False) if len(waiting) else "No variant is waiting for a reviewer.")
        return 0
    if not args.variant_id or not args.decision:
        parser.error("give a variant id and a decision, or --list")
    try:
        row = record_decision(warehouse, args.variant_id, args.decision, reviewer=args.reviewer or "",
                              reason=args.reason or "")
    except ApprovalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{row['variant_id']}: {row['from_state']} -> {row['to_state']} by {row['reviewer']} at {row['decided_at']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
