"""`make demo` and `make simulate`: the loop run day by day, as the schedule would.

The first day is the initial export: the warehouse is built, the first model is trained
(`train_models_job`), then the day is scored and the next day planned. Every
later day runs `run_daily_loop_job` for its partition. Runs go into the state folder's
Dagster instance, so they show in the UI like scheduled runs.

    python -m orchestration.loop demo --live-days 7   # a new world: history + 7 live days
    python -m orchestration.loop simulate --days 3    # 3 more days on the same state
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from time import perf_counter
from typing import Any

import dagster as dg

from ml.landing.contract import drop_days
from orchestration.defs.automation import (
    DAILY_LOOP, LOOP_DAY_TAG, MODELS, last_trained_day, loop_training_reasons, retraining_reasons,
)
from orchestration import tables
from orchestration.resources import PipelineSettings

DAILY_JOB = "run_daily_loop_job"
TRAINING_JOB = "train_models_job"


class DayFailed(RuntimeError):
    pass


def _run(job: dg.JobDefinition, instance: dg.DagsterInstance, run_config: dict, **kwargs: Any):
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False, **kwargs)
    if not result.success:
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        checks = failed_checks_message(result.get_asset_check_evaluations())
        raise DayFailed(
            f"{job.name} {kwargs.get('partition_key', '')} failed in {[e.step_key for e in failures]} "
            f"(run {result.run_id}){step_errors_message(failures)}{checks}"
        )
    return result


def step_errors_message(failures: Sequence[Any], limit: int = 3, width: int = 600) -> str:
    """Why each failed step failed, one entry per step: the innermost error's message (a
    dg.Failure's description, an ml/ error naming the fix), not the framework's wrapper."""
    lines = []
    for event in list(failures)[:limit]:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:
            error = error.cause
        if error is None:
            continue
        text = " ".join(error.message.split())
        qualified, _, rest = text.partition(": ")
        if rest and error.cls_name and qualified.endswith(error.cls_name):
            text = rest  # "dagster._core.definitions.events.Failure: why" -> "why"
        lines.append(f"  - {event.step_key}: {text[:width]}{'…' if len(text) > width else ''}")
    return "; the step said:\n" + "\n".join(lines) if lines else ""


def failed_checks_message(evaluations: Sequence[Any], limit: int = 5) -> str:
    """The failed error-severity (blocking) checks of a run, one line each, at most `limit`:
    asset, check and cause. The cause is a Great Expectations check's failed expectations
    (metadata `failed_expectations`: the first, and how many more), else the check's
    description, else a dbt test's failing row count and status. Empty when none failed."""
    failed = [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    if not failed:
        return ""
    lines = []
    for evaluation in failed[:limit]:
        asset = evaluation.asset_key.to_user_string()
        metadata = {key: getattr(value, "value", value) for key, value in (evaluation.metadata or {}).items()}
        expectations = [line.removeprefix("- ") for line in str(metadata.get("failed_expectations") or "").splitlines()]
        if expectations:
            cause = expectations[0].removeprefix(f"{asset.split('/')[-1]}: ")
            cause += f" (and {len(expectations) - 1} more)" if len(expectations) > 1 else ""
        elif getattr(evaluation, "description", None):
            cause = evaluation.description.splitlines()[0]
        elif "dagster_dbt/failed_row_count" in metadata:
            cause = f"dbt test: {metadata['dagster_dbt/failed_row_count']} failing rows (status {metadata.get('status', '?')})"
        else:
            cause = "failed"
        line = f"{asset} {evaluation.check_name}: {cause}"
        lines.append(line if len(line) <= 300 else line[:299] + "…")
    if len(failed) > limit:
        lines.append(f"… and {len(failed) - limit} more failed blocking checks")
    return "; failed blocking checks:\n  - " + "\n  - ".join(lines)


def _log_oracle_auc(run_config: dict, log: Callable[[str], None]) -> None:
    """Simulator mode: the purchase model's AUC beside the oracle's, on its MLflow run."""
    from orchestration.summary import record_oracle_auc

    config = run_config.get("resources", {}).get("settings", {}).get("config", {})
    recorded = record_oracle_auc(PipelineSettings(**config))
    for version, (model_auc, oracle_auc) in (recorded or {}).items():
        log(f"  purchase v{version}: test AUC {model_auc:.4f}, oracle {oracle_auc:.4f} ({model_auc / oracle_auc:.3f}x)")


def first_day(
    defs: dg.Definitions, instance: dg.DagsterInstance, run_config: dict, day: date, log: Callable[[str], None] = print
) -> list:
    """The initial export's day: warehouse, first model, scores and the next day's plan."""
    graph = defs.resolve_asset_graph()
    daily = defs.resolve_job_def(DAILY_JOB)
    needs_model = (MODELS.downstream() - MODELS).resolve(graph)
    everything = DAILY_LOOP.resolve(graph)
    before_model = everything - needs_model
    results = []
    started = perf_counter()
    results.append(_run(daily, instance, run_config, partition_key=day.isoformat(), asset_selection=list(before_model)))
    log(f"{day}: initial export landed and the warehouse built ({perf_counter() - started:.0f} s)")
    started = perf_counter()
    results.append(_run(defs.resolve_job_def(TRAINING_JOB), instance, run_config, tags={LOOP_DAY_TAG: day.isoformat()}))
    log(f"{day}: first models trained, gated and carded ({perf_counter() - started:.0f} s)")
    _log_oracle_auc(run_config, log)
    started = perf_counter()
    results.append(_run(daily, instance, run_config, partition_key=day.isoformat(), asset_selection=list(needs_model)))
    log(f"{day}: scored, and the sends for {day + timedelta(days=1)} planned ({perf_counter() - started:.0f} s)")
    return results


def live_days(
    defs: dg.Definitions, instance: dg.DagsterInstance, run_config: dict, days: Sequence[date],
    log: Callable[[str], None] = print,
) -> dict[date, float]:
    """Run the daily loop for each day in order; returns seconds per day.

    After a day whose drift or decay checks failed, the models are retrained (then gated),
    as the retraining sensor does under the daemon: the same rule, the same tags. Otherwise,
    once the last training is a week old, they are retrained as the weekly schedule would
    (`loop_training_reasons`)."""
    daily = defs.resolve_job_def(DAILY_JOB)
    training = defs.resolve_job_def(TRAINING_JOB)
    seconds = {}
    for day in days:
        started = perf_counter()
        result = _run(daily, instance, run_config, partition_key=day.isoformat())
        seconds[day] = perf_counter() - started
        log(f"{day}: live day done ({seconds[day]:.0f} s)")
        reasons = loop_training_reasons(
            retraining_reasons(result.get_asset_check_evaluations()), day, last_trained_day(instance)
        )
        if reasons:
            started = perf_counter()
            _run(training, instance, run_config, tags={LOOP_DAY_TAG: day.isoformat(), "retraining_reasons": "; ".join(reasons)[:2000]})
            log(f"{day}: retrained after {'; '.join(reasons)} ({perf_counter() - started:.0f} s)")
            _log_oracle_auc(run_config, log)
    return seconds


def next_live_day(settings: PipelineSettings) -> date:
    """The first day not yet run: the latest day sends were planned for."""
    if not settings.warehouse_path().exists():
        raise DayFailed("No loop has started on this state folder: run `make demo` first.")
    planned = settings.warehouse().read(f"select max(planned_for) as day from {tables.PLANNED_SENDS}")["day"].iloc[0]
    if planned is None or str(planned) == "NaT":
        raise DayFailed("No sends have been planned on this state yet: run `make demo` first.")
    return planned.date() if hasattr(planned, "date") else planned


def check_user_landing(settings: PipelineSettings, log: Callable[[str], None] = print) -> str | None:
    """Your own landing folder, checked before any run (ml.landing.preflight): the message
    listing every problem, or None when the loop can start (its notes are logged)."""
    from ml.landing.preflight import preflight
    from ml.propensity.specs import PURCHASE
    from ml.propensity.training import history_days_needed_by_model

    landing = settings.landing_path()
    report = preflight(landing, history_days_needed_by_model(), required_model=PURCHASE.key)
    if not report.ok:
        return report.message(landing)
    for note in report.notes:
        log(note)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.loop", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="a new world: the history, then live days")
    demo.add_argument("--live-days", type=int, default=7)
    simulate = commands.add_parser("simulate", help="continue the loop on the same state")
    simulate.add_argument("--days", type=int, default=1)
    args = parser.parse_args(argv)

    settings = PipelineSettings()
    try:
        if settings.user_landing_dir() is not None:
            ready = check_user_landing(settings)
            if ready is not None:
                print(ready)
                return 2
        if args.command == "demo":
            start = settings.initial_export_day()
            if settings.user_landing_dir() is not None:  # your own data: the drops you have
                days = [day for day in drop_days(settings.landing_path()) if day > start]
            else:
                days = [start + timedelta(days=k) for k in range(1, args.live_days + 1)]
        else:
            start = None
            first = next_live_day(settings)
            days = [first + timedelta(days=k) for k in range(args.days)]

        from orchestration.definitions import defs as build_defs

        defs = build_defs()
        instance = dg.DagsterInstance.get()
        run_config: dict = {}
        if start is not None:
            first_day(defs, instance, run_config, start)
        live_days(defs, instance, run_config, days)
    except DayFailed as failure:
        print(f"\nThe loop stopped: {failure}\nOpen the run in the Dagster UI (`make ui`) for the step's logs.")
        return 2
    except dg.Failure as failure:
        print(f"\nThe loop cannot start: {failure.description}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
