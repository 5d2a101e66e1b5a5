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

DEMO_MATERIALISATION_SECONDS = 180
GENERATOR_PEAK_RSS_GB = 6.0


def test_default_demo_materialises_within_three_minutes(tmp_path):
    from orchestration.definitions import defs as build_defs

    job = build_defs().resolve_job_def("refresh_email_pipeline_job")
    started = time.perf_counter()
    result = job.execute_in_process(
        run_config={"resources": {"settings": {"config": {"state_dir": str(tmp_path)}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    seconds = time.perf_counter() - started
    print(f"\ndefault demo (20,000 subscribers, 120 days) materialised in {seconds:.1f} s")
    assert result.success
    assert seconds < DEMO_MATERIALISATION_SECONDS


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
