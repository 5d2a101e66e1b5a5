"""Feature drift: the day's subscriber features against the features the models trained on."""

import dagster as dg

from ml.propensity.drift import build_drift_report
from ml.propensity.features import FEATURE_COLUMNS
from ml.propensity.monitoring import (
    FEATURE_DRIFT_SHARE, IMPORTANT_FEATURES, OPEN_WINDOW_HOURS, SEGMENT_ALPHA, SEGMENT_BASELINE_DAYS, SEGMENT_COLUMNS,
    SEGMENT_MIN_ODDS_CHANGE, SEGMENT_RECENT_DAYS, SEGMENT_SCORE_BANDS, SEGMENT_STRATA_COLUMNS, important_features,
)
from ml.propensity.promotion import CHAMPION_ALIAS, champion_version
from ml.propensity.segment_outcomes import segment_outcome_shifts
from ml.propensity.specs import PURCHASE
from ml.tracking import load_run_dict
from orchestration import tables
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.resources import PipelineSettings

OWNERS = ["team:ml-engineering"]
EVIDENTLY_TESTS_CHECK = "evidently_tests"
SEGMENT_OUTCOME_CHECK = "segment_open_rate_shift"


def evidently_test_failures(summary) -> list[str]:
    """Evidently's failed tests of a DriftSummary, one phrase each: the drifted-share test, then
    each drifted column with its method, score and threshold."""
    failed = [f"share of drifted columns {summary.share_drifted:.0%} >= {summary.drift_share_threshold:.0%}"] if (
        summary.dataset_drift) else []
    return failed + [
        f"{name}: {column.method} {column.score:.4f} (threshold {column.threshold})"
        for name, column in summary.columns.items() if column.drifted
    ]


@dg.asset(
    # The purchase model too: the report watches its champion's most important features.
    deps=["training_examples", "scoring_features", PURCHASE.asset_name],
    description=(
        "Evidently data-drift report, per day: the features of the latest training cutoff "
        "(reference) against the day's subscriber features (current), recency features capped "
        "at 90 days so the calendar alone does not drift them (docs/models.md). HTML in the "
        "reports folder; drift numbers as metadata; the drift checks trigger retraining."
    ),
    partitions_def=daily_partitions,
    backfill_policy=one_run_per_day,
    group_name="models",
    kinds={"evidently", "html"},
    owners=OWNERS,
    check_specs=[
        dg.AssetCheckSpec(
            EVIDENTLY_TESTS_CHECK,
            asset="feature_drift_report",
            description=(
                "Evidently's own tests, as its report's Tests tab shows them: one drift test per feature and "
                "the dataset's drifted-share test. Fails (warning) when any of them fails, naming each, so a "
                "failing drift test is never shown green. Only the two checks below trigger retraining."
            ),
        ),
        dg.AssetCheckSpec(
            "feature_drift_share",
            asset="feature_drift_report",
            description=(
                f"Fails when at least {FEATURE_DRIFT_SHARE:.0%} of the features drift (Evidently's per-column "
                "tests, training features against the day's). A failure triggers retraining."
            ),
        ),
        dg.AssetCheckSpec(
            "important_feature_drift",
            asset="feature_drift_report",
            description=(
                f"Fails when any of the purchase champion's {IMPORTANT_FEATURES} most important features "
                "(by gain) drifts. A failure triggers retraining."
            ),
        ),
    ],
)
def feature_drift_report(context: dg.AssetExecutionContext, settings: PipelineSettings):
    warehouse = settings.warehouse()
    columns = ", ".join(FEATURE_COLUMNS)
    # The latest training cutoff: the most recent population whose labels matured, so the
    # comparison is of like with like rather than of today with months of history.
    reference = warehouse.read(
        f"select {columns} from {tables.TRAINING_EXAMPLES} "
        f"where cutoff_at = (select max(cutoff_at) from {tables.TRAINING_EXAMPLES})"
    )
    current = warehouse.read(f"select {columns} from {tables.SCORING_FEATURES}")
    summary = build_drift_report(
        reference, current,
        html_path=settings.reports_path() / f"feature_drift_report_{partition_day(context).isoformat()}.html",
        drift_share=FEATURE_DRIFT_SHARE,
    )
    client = settings.mlflow_client()
    # Without a champion (the gate refused every version) there are no important features
    # to watch: the report and the share check still run.
    version = champion_version(client, PURCHASE.registered_model_name)
    champion = None if version is None else client.get_model_version(PURCHASE.registered_model_name, version)
    watched = [] if champion is None else important_features(
        load_run_dict(client, champion.run_id, "feature_importance.json")["features"])
    drifted_important = [name for name in watched if name in summary.columns and summary.columns[name].drifted]
    yield dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(summary.html_path)),
            "share_drifted": round(summary.share_drifted, 4),
            "n_drifted_columns": summary.n_drifted_columns,
            "n_columns": summary.n_columns,
            "drifted_columns": ", ".join(summary.drifted_columns) or "none",
            "empty_columns": ", ".join(f"{k} ({v})" for k, v in summary.empty_columns.items()) or "none",
            "reference_rows": summary.reference_rows,
            "current_rows": summary.current_rows,
        }
    )
    failures = evidently_test_failures(summary)
    tests = summary.n_columns + 1
    yield dg.AssetCheckResult(
        check_name=EVIDENTLY_TESTS_CHECK,
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(failures)} of {tests} Evidently tests failed: " + "; ".join(failures)) if failures
        else f"all {tests} Evidently tests passed",
        metadata={"tests": tests, "failed": len(failures), "passed": tests - len(failures),
                  "report": dg.MetadataValue.path(str(summary.html_path))},
    )
    yield dg.AssetCheckResult(
        check_name="feature_drift_share",
        passed=not summary.dataset_drift,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{summary.n_drifted_columns} of {summary.n_columns} features drifted ({summary.share_drifted:.0%}; threshold {FEATURE_DRIFT_SHARE:.0%})",
        metadata={"share_drifted": round(summary.share_drifted, 4), "threshold": FEATURE_DRIFT_SHARE},
    )
    yield dg.AssetCheckResult(
        check_name="important_feature_drift",
        passed=not drifted_important,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"drifted: {', '.join(drifted_important)}" if drifted_important
            else f"none of {', '.join(watched)} drifted" if watched
            else f"no champion of {PURCHASE.registered_model_name}, so no important features to watch"
        ),
        metadata={
            "champion_version": int(champion.version) if champion is not None else 0,
            "watched_features": ", ".join(watched),
            **{
                f"score.{name}": round(summary.columns[name].score, 4)
                for name in watched if name in summary.columns
            },
        },
    )


@dg.asset_check(
    asset=dg.AssetKey("fct_send_outcomes"),
    name=SEGMENT_OUTCOME_CHECK,
    additional_deps=[dg.AssetKey("planned_sends")],
    description=(
        "Outcome-based segment check: per segment of the pipeline's own sends (" + ", ".join(SEGMENT_COLUMNS)
        + f" as the plan saw them), the open rate within {OPEN_WINDOW_HOURS} h on the latest {SEGMENT_RECENT_DAYS} complete sending days, "
        f"relative to everyone else's on the same days, against the {SEGMENT_BASELINE_DAYS} days before "
        f"(Mantel-Haenszel odds ratios within strata of sends the plan treated alike: day, propensity-score "
        f"band ({SEGMENT_SCORE_BANDS} per day), targeting group and the other segments, so a change in whom we email "
        "is not read as a change in people; z-test, Holm across segments). Fails when a segment moved "
        f"significantly (family-wise {SEGMENT_ALPHA}) and by at least x{SEGMENT_MIN_ODDS_CHANGE} (or its inverse) "
        "in odds. A failure triggers retraining."
    ),
)
def segment_open_rate_shift(settings: PipelineSettings):
    warehouse = settings.warehouse()
    if not warehouse.has_table(tables.PLANNED_SENDS):
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description="nothing tested: the pipeline has planned no sends yet")
    as_of = warehouse.read(f"select max(as_of) as as_of from {tables.WAREHOUSE_AS_OF}")["as_of"].iloc[0]
    plan_columns = ", ".join(f"p.{column}" for column in (*SEGMENT_STRATA_COLUMNS, *SEGMENT_COLUMNS))
    sends = warehouse.read(
        f"""
        select p.send_plan_id as send_id, o.sent_at, opens.first_opened_at, p.propensity_score, {plan_columns}
        from {tables.PLANNED_SENDS} p
        join {tables.FCT_SEND_OUTCOMES} o on o.send_id = p.send_plan_id
        left join (
            select send_id, min(occurred_at) as first_opened_at from {tables.FCT_EMAIL_EVENTS}
            where event_type = 'open' and send_id is not null group by send_id
        ) opens on opens.send_id = p.send_plan_id
        where o.sent_at >= ? - to_days(?)
        """,
        [as_of, SEGMENT_BASELINE_DAYS + 3],
    )
    result = segment_outcome_shifts(sends, as_of.to_pydatetime() if hasattr(as_of, "to_pydatetime") else as_of)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=result.description(),
        metadata={
            "recent_days": ", ".join(map(str, result.recent_days)) or "none",
            "baseline_days": len(result.baseline_days),
            "tested_segments": len(result.tested),
            "flagged_segments": ", ".join(s.name for s in result.flagged) or "none",
            "untested_segments": "; ".join(result.untested) or "none",
            **{f"odds_change.{s.name}": round(s.odds_change, 3) for s in result.tested},
            **{f"p_holm.{s.name}": round(s.p_holm, 4) for s in result.tested},
        },
    )
