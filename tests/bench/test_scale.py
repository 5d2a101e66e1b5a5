"""The scale curve (issue 15): the whole job at growing audiences, time and memory per size.

`make bench` runs it. Sizes come from BENCH_SCALE_PEOPLE (comma-separated; default
20,000, 100,000 and 300,000; add 1000000 for the million-person run, about 15 minutes more).
Each size runs in its own process (tests/bench/scale_job.py) while this one samples the
resident memory of that process's whole tree from /proc, dbt's subprocesses included. The
curve is written to .state/bench/scale_curve.json and scale_curve.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / ".state" / "bench"
DEFAULT_SIZES = (20_000, 100_000, 300_000)
# Issue 15's targets.
SECONDS_AT = {300_000: 180, 1_000_000: 900}
PEAK_RSS_GB_AT = {1_000_000: 8.0}


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                # The parent pid is the 4th field, after the command in parentheses.
                stat = Path(f"/proc/{entry}/stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> tuple[int, int, int]:
    """(sum over the process tree, largest single process, that process's pid) of resident
    memory, in bytes."""
    tree, stack, sizes = _children(), [root], {}
    while stack:
        pid = stack.pop()
        sizes[pid] = _rss_bytes(pid)
        stack.extend(tree.get(pid, []))
    largest = max(sizes, key=sizes.get)
    return sum(sizes.values()), sizes[largest], largest


def _command(pid: int) -> str:
    """The process's program and first arguments, to say which process peaked (dbt or Dagster)."""
    try:
        return b" ".join(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]).decode(errors="replace")[:120]
    except OSError:
        return "?"


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (0 while it does not exist); files that vanish while
    it is walked (DuckDB's spill files) are skipped."""
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


class TreeMemory:
    """Samples a process tree's resident memory every `interval` seconds until stopped, and the
    size of `folder` (the run's state: warehouse, landing, DuckDB's spill) every
    `folder_every` samples: at 1,000,000 people a run ended with "No space left on device"."""

    def __init__(self, root: int, interval: float = 0.5, folder: Path | None = None, folder_every: int = 20) -> None:
        self.root, self.interval, self.folder, self.folder_every = root, interval, folder, folder_every
        self.peak_tree = self.peak_process = self.peak_folder = 0
        self.peak_command = ""
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None:  # a sampler that died would report a far too small peak
            raise RuntimeError("the memory sampler failed") from self.error

    def _sample(self) -> None:
        try:
            self._sample_until_stopped()
        except Exception as error:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = error

    def _sample_until_stopped(self) -> None:
        samples = 0
        while not self._stop.is_set():
            if self.folder is not None and samples % self.folder_every == 0:
                self.peak_folder = max(self.peak_folder, folder_bytes(self.folder))
            samples += 1
            total, largest, pid = tree_rss(self.root)
            self.peak_tree = max(self.peak_tree, total)
            if largest > self.peak_process:
                self.peak_process, self.peak_command = largest, _command(pid)
            self._stop.wait(self.interval)


def test_tree_memory_sees_a_child_process(tmp_path):
    """The sampler counts a subprocess's memory, not only its own process's."""
    code = "b = bytearray(300 * 1024 * 1024); import time; time.sleep(2)"
    child = subprocess.Popen([sys.executable, "-c", code])
    with TreeMemory(os.getpid(), interval=0.1) as memory:
        child.wait()
    assert memory.peak_tree > 300 * 1024 * 1024
    assert memory.peak_process > 300 * 1024 * 1024 and "bytearray" in memory.peak_command


def test_the_sampler_sees_the_state_folder_grow(tmp_path):
    """The state folder's peak size, including a file deleted before the run ends (DuckDB
    removes its spill files)."""
    spill = tmp_path / "state" / "duckdb_spill"
    code = (f"import os, time; os.makedirs({str(spill)!r}); p = os.path.join({str(spill)!r}, 'x');"
            "open(p, 'wb').write(b'0' * 50_000_000); time.sleep(1); os.remove(p)")
    child = subprocess.Popen([sys.executable, "-c", code])
    with TreeMemory(child.pid, interval=0.05, folder=tmp_path / "state", folder_every=1) as memory:
        child.wait()
    assert memory.peak_folder >= 50_000_000
    assert folder_bytes(tmp_path / "state") == 0


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_SCALE_PEOPLE")
    return [int(x) for x in raw.split(",")] if raw else list(DEFAULT_SIZES)


def test_the_scale_curve(tmp_path):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    curve = []
    for people in _sizes():
        out = tmp_path / f"scale_{people}.json"
        state = tmp_path / f"state_{people}"
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("scale_job.py")), str(state), str(people), str(out)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"scale_{people}.log", "w"),
        )
        with TreeMemory(child.pid, folder=state) as memory:
            code = child.wait()
        wall = time.perf_counter() - started
        if code != 0:
            # DuckDB's bindings print pages of "nanobind: leaked" lines at exit: the cause is before them.
            log = (tmp_path / f"scale_{people}.log").read_text().split("nanobind:")[0]
            pytest.fail(
                f"the whole job at {people:,} people failed (exit {code}) after {wall:.0f} s, peak RSS tree "
                f"{memory.peak_tree / 2**30:.2f} GB (largest process {memory.peak_process / 2**30:.2f} GB), state folder "
                f"{memory.peak_folder / 2**30:.1f} GB at most, {shutil.disk_usage(tmp_path).free / 2**30:.1f} GB free now:\n{log[-3000:]}"
            )
        result = json.loads(out.read_text())
        result.update(wall_seconds=round(wall, 1), peak_rss_tree_gb=round(memory.peak_tree / 2**30, 2),
                      peak_rss_process_gb=round(memory.peak_process / 2**30, 2), peak_process=memory.peak_command,
                      peak_state_folder_gb=round(memory.peak_folder / 2**30, 2))
        curve.append(result)
        print(f"\n{people:>9,} people: whole job {wall:.0f} s, peak RSS tree {result['peak_rss_tree_gb']} GB "
              f"(largest process {result['peak_rss_process_gb']} GB), state folder {result['peak_state_folder_gb']} GB; dbt {result['history_dbt'].get('elapsed_seconds')} s")
        (OUT_DIR / "scale_curve.json").write_text(json.dumps(curve, indent=2))
    _plot(curve, OUT_DIR / "scale_curve.png")
    for point in curve:
        budget = SECONDS_AT.get(point["people"])
        assert budget is None or point["wall_seconds"] <= budget, point["people"]
        limit = PEAK_RSS_GB_AT.get(point["people"])
        assert limit is None or point["peak_rss_tree_gb"] <= limit, point["people"]


def _plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people = [p["people"] for p in curve]
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for phase in ("history_day", "live_day"):
        time_axis.plot(people, [p["seconds"][phase] for p in curve], marker="o", label=phase.replace("_", " "))
    time_axis.plot(people, [p["wall_seconds"] for p in curve], marker="o", label="whole job")
    memory_axis.plot(people, [p["peak_rss_tree_gb"] for p in curve], marker="o", label="process tree")
    memory_axis.plot(people, [p["peak_rss_process_gb"] for p in curve], marker="o", label="largest process")
    for axis, label in ((time_axis, "seconds"), (memory_axis, "peak RSS, GB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("people")
        axis.set_ylabel(label)
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
    figure.suptitle("The whole job (history day and one live day) by audience size, 2 cores")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
