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
