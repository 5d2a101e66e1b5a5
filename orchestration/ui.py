"""`make ui`: the Dagster UI (`dg dev`) and the MLflow UI as one process group.

Both servers start in one new process group; the launcher waits on them. Ctrl-C (or SIGTERM),
or either server exiting, stops the whole group: first politely (SIGTERM, which `dg dev`
turns into its own clean shutdown of the webserver, daemon and code server), then, after
a grace period, with SIGKILL. Nothing is left running, and the exit code is non-zero when a
server failed.

Before the servers start, the dbt manifest is made current (`dbt parse` only when the
project changed), so the code server's load never parses. When both UIs answer, the
launcher prints how long that took.

    python -m orchestration.ui                      # what `make ui` runs
    python -m orchestration.ui --dagster-port 3001 --mlflow-port 5001
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from urllib.parse import urlsplit

from orchestration.reports import DAGSTER_UI_URL, MLFLOW_UI_URL
from orchestration.resources import REPO_ROOT, PipelineSettings

# After SIGTERM, how long the servers get to shut down before SIGKILL.
GRACE_SECONDS = 20.0
POLL_SECONDS = 0.2
# The GraphQL query that says whether the code location has loaded.
_LOCATIONS_QUERY = '{"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}'


class ProcessGroup:
    """Commands started in one new process group, stopped together."""

    def __init__(self, commands: Sequence[Sequence[str]], *, cwd: Path | None = None, env: dict | None = None):
        if not commands:
            raise ValueError("ProcessGroup needs at least one command")
        self.processes: list[subprocess.Popen] = []
        for command in commands:
            group = self.processes[0].pid if self.processes else 0  # 0: the first one leads a new group
            self.processes.append(subprocess.Popen(list(command), cwd=cwd, env=env, process_group=group))
        self.pgid = self.processes[0].pid

    def wait_for_first_exit(self, stop: threading.Event) -> subprocess.Popen | None:
        """The first process that exits, or None when `stop` is set first."""
        while not stop.is_set():
            for process in self.processes:
                if process.poll() is not None:
                    return process
            stop.wait(POLL_SECONDS)
        return None

    def stop(self, grace_seconds: float = GRACE_SECONDS) -> None:
        """SIGTERM to the whole group, then SIGKILL to whatever is left after the grace period."""
        _signal_group(self.pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pgid, signal.SIGKILL)  # stragglers: grandchildren of a killed server
        for process in self.processes:
            process.wait()
        # Killed grandchildren are reaped by init: wait until the group is really gone.
        deadline = time.monotonic() + 5.0
        while _signal_group(self.pgid, 0) and time.monotonic() < deadline:
            time.sleep(0.05)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to the group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def run_group(
    commands: Sequence[Sequence[str]],
    *,
    cwd: Path | None = None,
    env: dict | None = None,
    on_started: Callable[[ProcessGroup, threading.Event], None] | None = None,
    grace_seconds: float = GRACE_SECONDS,
) -> int:
    """Run the commands as one group until one exits or a SIGINT/SIGTERM arrives; then stop all.
    The exit code: the first exited command's (1 if it exited 0, since a server must not end by
    itself), or 0 when interrupted."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    group = ProcessGroup(commands, cwd=cwd, env=env)
    try:
        if on_started is not None:
            on_started(group, stop)
        exited = group.wait_for_first_exit(stop)
    finally:
        group.stop(grace_seconds)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if exited is None:
        return 0
    print(f"{' '.join(exited.args[:3])} exited with code {exited.returncode}: stopped the other server too.",
          file=sys.stderr)
    return exited.returncode or 1


def _get(url: str, data: bytes | None = None) -> bytes | None:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


def dagster_location_loaded(base_url: str) -> bool:
    body = _get(f"{base_url}/graphql", _LOCATIONS_QUERY.encode())
    if body is None:
        return False
    entries = json.loads(body).get("data", {}).get("workspaceOrError", {}).get("locationEntries") or []
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


def mlflow_ready(base_url: str) -> bool:
    return _get(f"{base_url}/health") is not None


def report_when_ready(dagster_url: str, mlflow_url: str, started_at: float) -> Callable:
    """An on_started hook: prints when each UI answers (the Dagster one once its code location loaded)."""

    def watch(group: ProcessGroup, stop: threading.Event) -> None:
        def poll() -> None:
            pending = {"MLflow UI": (mlflow_url, mlflow_ready), "Dagster UI": (dagster_url, dagster_location_loaded)}
            while pending and not stop.is_set():
                for name, (url, ready) in list(pending.items()):
                    if ready(url):
                        print(f"{name} ready at {url} after {time.monotonic() - started_at:.0f} s", flush=True)
                        del pending[name]
                stop.wait(1.0)

        threading.Thread(target=poll, daemon=True).start()

    return watch


def ui_commands(settings: PipelineSettings, *, host: str, dagster_port: int, mlflow_port: int) -> list[list[str]]:
    """`dg dev` on the project (pyproject.toml [tool.dg]) and `mlflow server` on the state's store."""
    bin_dir = Path(sys.executable).parent
    return [
        [str(bin_dir / "dg"), "dev", "--host", host, "--port", str(dagster_port)],
        [
            str(bin_dir / "mlflow"), "server",
            "--backend-store-uri", settings.tracking_uri(),
            "--default-artifact-root", settings.mlflow_artifact_location(),
            "--host", host, "--port", str(mlflow_port), "--workers", "1",
        ],
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dagster-port", type=int, default=urlsplit(DAGSTER_UI_URL).port)
    parser.add_argument("--mlflow-port", type=int, default=urlsplit(MLFLOW_UI_URL).port)
    args = parser.parse_args(argv)
    started_at = time.monotonic()

    from orchestration.dbt_project import email_dbt_project

    email_dbt_project()  # parses only when the project changed since the last manifest
    settings = PipelineSettings()
    dagster_url = f"http://{args.host}:{args.dagster_port}"
    mlflow_url = f"http://{args.host}:{args.mlflow_port}"
    print(f"Dagster UI: {dagster_url}   MLflow UI: {mlflow_url}   (Ctrl-C stops both)", flush=True)
    # The code server imports this checkout's packages: the repo first on its path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    # MLflow's GenAI job runner (online scoring, trace archival) has nothing to do here and
    # would compete with the Dagster code server for the CPU while both start.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return run_group(
        ui_commands(settings, host=args.host, dagster_port=args.dagster_port, mlflow_port=args.mlflow_port),
        cwd=REPO_ROOT,
        env=env,
        on_started=report_when_ready(dagster_url, mlflow_url, started_at),
    )


if __name__ == "__main__":
    sys.exit(main())
