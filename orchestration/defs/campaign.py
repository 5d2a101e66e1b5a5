"""The campaign: approved subject-line variants, experiment arms, planned sends, outcomes, report."""

from datetime import UTC, datetime

import dagster as dg

from ml.copy.blocks import load_approved_blocks
from ml.copy.variants import compose_variants
from ml.decisioning.policy import TargetingPolicy
from ml.decisioning.send_plan import ELIGIBILITY_INPUT, PROFILE_INPUT, SCORE_INPUT, plan_sends
from ml.experiments.design import ExperimentDesign, assign_arms
from ml.experiments.outcomes import validate_outcomes, with_source_ids
from ml.experiments.readout import summarise_experiment
from ml.experiments.statistics import sample_ratio_check
from ml.reports.experiment_report import render_experiment_report
from ml.simulator.responder import SimulatedOutcomeSource
from ml.propensity.training import feature_list_hash
from orchestration import tables
from orchestration.resources import APPROVED_SUBJECT_LINES, PipelineSettings

OWNERS = ["team:ml-engineering"]
GROUP = "campaign"


def experiment_design(settings: PipelineSettings) -> ExperimentDesign:
    return ExperimentDesign(experiment_id=settings.experiment_id)


@dg.asset(
    deps=["subscriber_profiles"],
    description=(
        "Subject-line candidates per (top category, lifecycle stage) segment, composed only from "
        "the human-approved blocks in data/copy/approved_subject_lines.v1.json and checked by "
        "guardrails; every segment keeps the approved fallback. Table ml.subject_line_variants."
    ),
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=OWNERS,
)
def subject_line_variants(settings: PipelineSettings) -> dg.MaterializeResult:
    warehouse = settings.warehouse()
    blocks = load_approved_blocks(APPROVED_SUBJECT_LINES)
    segments = warehouse.read(
        f"select distinct top_category, lifecycle_stage from {tables.SUBSCRIBER_PROFILES}"
    )
    variants = compose_variants(blocks, segments)
    rows = warehouse.write_table(variants, tables.SUBJECT_LINE_VARIANTS)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "segments": len(segments),
            "blocks_version": blocks.blocks_version,
            "passed_guardrails": int(variants["guardrail_passed"].sum()),
            "failed_guardrails": int((~variants["guardrail_passed"]).sum()),
            "fallbacks": int(variants["is_fallback"].sum()),
        }
    )


@dg.asset(
    deps=["propensity_scores"],
    description=(
        "Deterministic hash of (experiment id, subscriber key) into holdout, control (approved "
        "generic subject) and treatment (personalised subject) arms, for every scored, eligible "
        "subscriber. Table ml.experiment_assignments."
    ),
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=OWNERS,
    check_specs=[
        dg.AssetCheckSpec(
            "sample_ratio_matches_design",
            asset="experiment_assignments",
            description="Chi-square test that arm sizes match the designed shares (p ≥ 0.001).",
        )
    ],
)
def experiment_assignments(settings: PipelineSettings):
    warehouse = settings.warehouse()
    design = experiment_design(settings)
    scored = warehouse.read(f"select subscriber_key from {tables.PROPENSITY_SCORES}")
    assignments = assign_arms(scored["subscriber_key"], design)
    rows = warehouse.write_table(assignments, tables.EXPERIMENT_ASSIGNMENTS)
    srm = sample_ratio_check(assignments, design)
    arm_counts = assignments["arm"].value_counts().to_dict()
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "experiment_id": design.experiment_id,
            "arm_counts": {arm: int(n) for arm, n in arm_counts.items()},
        }
    )
    yield dg.AssetCheckResult(
        check_name="sample_ratio_matches_design",
        passed=bool(srm["passed"]),
        metadata={"p_value": float(srm["p_value"]), "observed": srm["observed"], "expected": srm["expected"]},
    )


@dg.asset(
    deps=["experiment_assignments", "subject_line_variants", "subscriber_eligibility", "subscriber_profiles"],
    description=(
        "One row per email to send, with its full decision trace: experiment arm, model version "
        "and score, targeting group and why the policy selected it, feature cutoff, subject-line "
        "variant and its block recipe, and the consent proof it rests on. Holdout members get no "
        "send; of the others, the top share by propensity plus a random control are emailed. "
        "Table ml.planned_sends."
    ),
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=OWNERS,
    check_specs=[
        dg.AssetCheckSpec(
            "only_eligible_subscribers_planned",
            asset="planned_sends",
            blocking=True,
            description="Re-checks every planned send against the consent/suppression mart.",
        )
    ],
)
def planned_sends(settings: PipelineSettings):
    warehouse = settings.warehouse()
    plan = plan_sends(
        warehouse.read(f"select subscriber_key, experiment_id, arm from {tables.EXPERIMENT_ASSIGNMENTS}"),
        warehouse.read(f"select {', '.join(SCORE_INPUT)} from {tables.PROPENSITY_SCORES}"),
        warehouse.read(f"select {', '.join(PROFILE_INPUT)} from {tables.SUBSCRIBER_PROFILES}"),
        warehouse.read(f"select {', '.join(ELIGIBILITY_INPUT)} from {tables.SUBSCRIBER_ELIGIBILITY}"),
        warehouse.read_table(tables.SUBJECT_LINE_VARIANTS),
        feature_list_sha256=feature_list_hash(),
        planned_at=datetime.now(UTC).replace(tzinfo=None),
        policy=TargetingPolicy(
            top_share=settings.targeting_top_share, random_control_share=settings.targeting_random_control_share
        ),
    )
    rows = warehouse.write_table(plan.sends, tables.PLANNED_SENDS)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "by_arm": {arm: int(n) for arm, n in plan.sends["arm"].value_counts().items()},
            "held_out": plan.held_out,
            "not_sendable": plan.not_sendable,
            "not_selected_by_policy": plan.not_selected,
            "by_selection": {reason: int(n) for reason, n in plan.sends["selected_by"].value_counts().items()},
            "fallback_subjects": int(plan.sends["is_fallback"].sum()),
        }
    )
    violations = warehouse.read(
        f"""
        select count(*) as n from {tables.PLANNED_SENDS} ps
        left join {tables.SUBSCRIBER_ELIGIBILITY} e using (subscriber_key)
        where e.subscriber_key is null or not e.is_eligible or e.consent_status <> 'subscribed'
        """
    )["n"].iloc[0]
    yield dg.AssetCheckResult(
        check_name="only_eligible_subscribers_planned",
        passed=bool(violations == 0),
        metadata={"ineligible_planned_sends": int(violations)},
    )


@dg.asset(
    deps=["planned_sends"],
    description=(
        "What every experiment member did after the campaign (opened, clicked, converted, "
        "revenue), holdout included. In the demo the simulator answers behind the "
        "`ml.experiments.outcomes.OutcomeSource` interface; real ESP feedback can replace it. "
        "Table ml.campaign_outcomes."
    ),
    group_name=GROUP,
    kinds={"python", "duckdb"},
    owners=OWNERS,
)
def campaign_outcomes(settings: PipelineSettings) -> dg.MaterializeResult:
    warehouse = settings.warehouse()
    if settings.user_landing_dir() is not None:
        raise dg.Failure(
            "No outcome source is configured for your own landing data: campaign outcomes come "
            "from the simulator only. Implement ml.experiments.outcomes.OutcomeSource over your ESP feedback."
        )
    members = warehouse.read(
        f"""
        select a.subscriber_key, a.arm,
               ps.send_plan_id is not null as is_sent,
               ps.subject_line, coalesce(ps.variant_category, 'general') as variant_category
        from {tables.EXPERIMENT_ASSIGNMENTS} a
        left join {tables.PLANNED_SENDS} ps using (subscriber_key)
        """
    )
    members = with_source_ids(
        members,
        warehouse.read(f"select subscriber_key, source_system, source_id from {tables.SUBSCRIBER_IDENTITY_CROSSWALK}"),
    )
    source = SimulatedOutcomeSource(settings.simulator_path(), seed=settings.audience_seed)
    outcomes = validate_outcomes(members, source.observe(members))
    outcomes = outcomes.merge(members[["subscriber_key", "arm", "is_sent"]], on="subscriber_key")
    rows = warehouse.write_table(outcomes, tables.CAMPAIGN_OUTCOMES)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "outcome_source": type(source).__name__,
            "conversions": int(outcomes["converted"].sum()),
        }
    )


@dg.asset(
    deps=["campaign_outcomes"],
    description=(
        "Per-arm outcomes with 95% confidence intervals, lifts against the holdout, and the "
        "sample-ratio check, as an HTML report and metadata."
    ),
    group_name=GROUP,
    kinds={"html"},
    owners=OWNERS,
)
def experiment_report(settings: PipelineSettings) -> dg.MaterializeResult:
    warehouse = settings.warehouse()
    design = experiment_design(settings)
    outcomes = warehouse.read_table(tables.CAMPAIGN_OUTCOMES)
    summary = summarise_experiment(outcomes, design)
    trace = warehouse.read(
        "select any_value(model_version) as model_version, any_value(blocks_version) as blocks_version "
        f"from {tables.PLANNED_SENDS}"
    ).iloc[0]
    html_path = render_experiment_report(
        summary,
        settings.reports_path() / f"experiment_report_{design.experiment_id}.html",
        context={
            "model": f"{settings.registered_model_name} v{trace['model_version']}",
            "approved blocks version": str(trace["blocks_version"]),
            "outcome source": "simulator (ml.simulator.responder.SimulatedOutcomeSource)",
        },
    )
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(html_path)),
            "arms": dg.MetadataValue.md(summary.arm_table().to_markdown(index=False)),
            **summary.to_metrics(),
        }
    )
