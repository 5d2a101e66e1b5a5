"""One size of the scale curve: the whole job at N people, timed step by step.

    python tests/bench/scale_job.py STATE_DIR PEOPLE OUT_JSON [DUCKDB_MEMORY_LIMIT]

The whole job is the initial export's day (landing, warehouse, the three models trained,
gated and carded, scores and the next day's plan) and one live day of the loop. Writes
OUT_JSON: wall seconds per phase, per Dagster step (summed over the job's runs), dbt's own
build time and its slowest models. Memory is measured by the caller (tests/bench/test_scale.py),
which samples this process's whole tree, dbt's subprocesses included.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path


def main(state: str, people: int, out: str, memory_limit: str | None = None) -> None:
    os.environ["PIPELINE_STATE_DIR"] = state
    os.environ["DAGSTER_HOME"] = str(Path(state) / "dagster_home")
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    import dagster as dg

    from orchestration import loop
    from orchestration.definitions import defs as build_defs
    from orchestration.resources import PipelineSettings

    config = {"state_dir": state, "audience_size": people}
    if memory_limit:
        config["duckdb_memory_limit"] = memory_limit
    run_config = {"resources": {"settings": {"config": config}}}
    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    loaded = time.perf_counter()
    first = PipelineSettings(**config).initial_export_day()
    loop.first_day(defs, instance, run_config, first)
    history_done = time.perf_counter()
    history_dbt = _dbt_figures(PipelineSettings(**config).dbt_target_path() / "build" / "run_results.json")
    loop.live_days(defs, instance, run_config, [first + timedelta(days=1)])
    finished = time.perf_counter()

    steps: dict[str, float] = defaultdict(float)
    for run in instance.get_runs():
        for stats in instance.get_run_step_stats(run.run_id):
            if stats.start_time and stats.end_time:
                steps[stats.step_key] += stats.end_time - stats.start_time
    Path(out).write_text(json.dumps({
        "people": people,
        "duckdb_memory_limit": memory_limit or PipelineSettings(**config).duckdb_memory_limit,
        "seconds": {
            "load_definitions": round(loaded - started, 1),
            "history_day": round(history_done - loaded, 1),
            "live_day": round(finished - history_done, 1),
            "whole_job": round(finished - started, 1),
        },
        "step_seconds": {key: round(value, 1) for key, value in sorted(steps.items(), key=lambda kv: -kv[1])},
        "history_dbt": history_dbt,
    }, indent=2))


def _dbt_figures(run_results: Path) -> dict:
    """dbt's own figures of its last invocation: build time, and the slowest models and tests."""
    if not run_results.exists():
        return {}
    results = json.loads(run_results.read_text())
    nodes = sorted(results["results"], key=lambda r: -r["execution_time"])
    return {
        "elapsed_seconds": round(results["elapsed_time"], 1),
        "nodes": len(nodes),
        "slowest": {r["unique_id"].split(".")[-1]: round(r["execution_time"], 1) for r in nodes[:8]},
    }


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
