"""Speed and memory targets. Run with `make bench`; `make test` skips them."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest

pytestmark = pytest.mark.bench

DEMO_SECONDS = 300  # the history's day plus 7 live days
LIVE_DAY_SECONDS = 25  # one live day of the loop at 20,000 people
GENERATOR_PEAK_RSS_GB = 6.0
EXTRA_MODELS_SECONDS = 30  # what the click and churn models may add to a training day at 20,000 people


def test_the_demo_loop_and_each_live_day_within_budget(tmp_path):
    from datetime import timedelta

    from orchestration import loop
    from orchestration.definitions import defs as build_defs
    from orchestration.resources import PipelineSettings

    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"resources": {"settings": {"config": {"state_dir": str(tmp_path)}}}}
    first = PipelineSettings(state_dir=str(tmp_path)).initial_export_day()
    started = time.perf_counter()
    loop.first_day(defs, instance, run_config, first)
    first_seconds = time.perf_counter() - started
    per_day = loop.live_days(defs, instance, run_config, [first + timedelta(days=k) for k in range(1, 8)])
    total = time.perf_counter() - started
    print(
        f"\ndemo (20,000 subscribers): history day {first_seconds:.0f} s, live days "
        + ", ".join(f"{s:.0f}" for s in per_day.values()) + f" s; total {total:.0f} s"
    )
    assert total < DEMO_SECONDS
    assert max(per_day.values()) < LIVE_DAY_SECONDS


def test_three_models_add_at_most_30_s_to_a_training_day(tmp_path):
    """A training day at 20,000 people: the purchase model alone (trained, gated, carded)
    against all three, on the same warehouse."""
    from orchestration import loop
    from orchestration.definitions import defs as build_defs
    from orchestration.resources import PipelineSettings
    from ml.propensity.specs import PURCHASE
    from orchestration.defs.automation import DAILY_LOOP, MODELS

    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"resources": {"settings": {"config": {"state_dir": str(tmp_path)}}}}
    day = PipelineSettings(state_dir=str(tmp_path)).initial_export_day()
    graph = defs.resolve_asset_graph()
    warehouse = DAILY_LOOP.resolve(graph) - (MODELS.downstream() - MODELS).resolve(graph)
    defs.resolve_job_def(loop.DAILY_JOB).execute_in_process(
        run_config=run_config, instance=instance, partition_key=day.isoformat(), asset_selection=list(warehouse)
    )
    training = defs.resolve_job_def(loop.TRAINING_JOB)
    started = time.perf_counter()
    assert training.execute_in_process(
        run_config=run_config, instance=instance, asset_selection=[dg.AssetKey(PURCHASE.asset_name)]
    ).success
    purchase_only = time.perf_counter() - started
    started = time.perf_counter()
    assert training.execute_in_process(run_config=run_config, instance=instance).success
    all_three = time.perf_counter() - started
    print(f"\ntraining day (20,000 subscribers): purchase only {purchase_only:.1f} s, all three {all_three:.1f} s")
    assert all_three - purchase_only < EXTRA_MODELS_SECONDS


def test_one_million_subscribers_generate_without_running_out_of_memory(tmp_path):
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from ml.simulator import AudienceConfig, generate_landing
        summary = generate_landing(AudienceConfig(n_people=1_000_000), Path({str(tmp_path / 'landing')!r}),
                                   Path({str(tmp_path / 'oracle')!r}), progress=False)
        print(summary.rows)
        """
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True)
    seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"\n1,000,000 subscribers generated in {seconds:.0f} s, peak RSS {peak_gb:.2f} GB")
    assert peak_gb < GENERATOR_PEAK_RSS_GB


DECISION_LAYER_SECONDS = 15  # what the contact policy, uplift, recommendations and decision record may add to a live day


def test_the_decision_layer_adds_at_most_15_s_to_a_live_day(tmp_path):
    """A live day at 20,000 people: the dbt contact policy model (dbt's execution time, on its
    materialisation; its tests run inside the dbt step and are not split out), the day's
    uplift fit and estimates, recommendations and the plan with its decision record (their
    Dagster steps)."""
    from datetime import timedelta

    from orchestration import loop
    from orchestration.definitions import defs as build_defs
    from orchestration.resources import PipelineSettings

    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    run_config = {"resources": {"settings": {"config": {"state_dir": str(tmp_path)}}}}
    settings = PipelineSettings(state_dir=str(tmp_path))
    first = settings.initial_export_day()
    loop.first_day(defs, instance, run_config, first)
    loop.live_days(defs, instance, run_config, [first + timedelta(days=1)])
    live_run = instance.get_runs(filters=dg.RunsFilter(job_name=loop.DAILY_JOB), limit=1)[0]
    steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(live_run.run_id)}
    python_steps = {key: steps[key] for key in ("uplift_estimates", "product_recommendations", "planned_sends_and_decisions",
                                                   "send_time_experiment")}
    event = instance.get_latest_materialization_event(dg.AssetKey("subscriber_contact_policy"))
    assert event.run_id == live_run.run_id
    dbt_seconds = event.asset_materialization.metadata["Execution Duration"].value
    total = sum(python_steps.values()) + dbt_seconds
    print(
        "\ndecision layer on a live day (20,000 subscribers): "
        + ", ".join(f"{key} {seconds:.1f} s" for key, seconds in python_steps.items())
        + f", dbt contact policy model {dbt_seconds:.1f} s; total {total:.1f} s"
    )
    assert total < DECISION_LAYER_SECONDS
