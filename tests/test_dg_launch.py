"""`dg launch`, the documented way to run one job by hand (docs/loop.md, docs/models.md), works
offline with the installed dagster-dg-cli: the rollback command of docs/models.md, run as a
subprocess on a small state, moves the champion back and records it (about 20 s)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from ml.propensity.promotion import CHAMPION_ALIAS
from ml.propensity.specs import PURCHASE, TrainingParams
from ml.propensity.training import train_model
from ml.tracking import MlflowTarget
from orchestration import tables
from tests.ml.conftest import make_training_examples
from tests.test_empty_day import state_with_purchase_champion

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).parent / "dg"


def documented_commands(doc: str) -> list[list[str]]:
    """Every `dg launch` line of a doc's bash blocks, as argv (comments dropped)."""
    return [shlex.split(line.split("   #")[0]) for line in (REPO / "docs" / doc).read_text().splitlines()
            if line.startswith("dg launch ")]


def test_the_documented_commands_name_jobs_the_definitions_have():
    from orchestration.definitions import defs as build_defs

    commands = documented_commands("loop.md") + documented_commands("models.md")
    assert len(commands) == 3
    defs = build_defs()
    for command in commands:
        job = command[command.index("--job") + 1]
        assert defs.resolve_job_def(job).name == job
        if "--partition" in command:
            job_def = defs.resolve_job_def(job)
            assert job_def.partitions_def.has_partition_key(command[command.index("--partition") + 1])


def test_the_documented_rollback_runs_through_dg_launch_offline(tmp_path):
    settings = state_with_purchase_champion(tmp_path, eligible=True)
    client = settings.mlflow_client()
    second = train_model(
        make_training_examples(600, 3, seed=5), replace(PURCHASE, params=TrainingParams(n_estimators=20, min_child_samples=20)),
        tracking=MlflowTarget(client=client, artifact_location=settings.mlflow_artifact_location(),
                              experiment_name=PURCHASE.experiment_name),
        dataset_name="training_examples", dataset_source="test",
    )
    client.set_registered_model_alias(PURCHASE.registered_model_name, CHAMPION_ALIAS, second.model_version)
    (command,) = documented_commands("models.md")
    assert command[:4] == ["dg", "launch", "--job", "roll_back_champion_job"]
    run_config = json.loads(command[command.index("--config-json") + 1])
    assert run_config["ops"]["roll_back_champion"]["config"]["to_version"] == 1
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    environment = {
        **os.environ, "PIPELINE_STATE_DIR": str(settings.state_path()), "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(REPO), "PATH": f"{DG.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run([str(DG), *command[1:]], cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert str(client.get_model_version_by_alias(PURCHASE.registered_model_name, CHAMPION_ALIAS).version) == "1"
    record = settings.warehouse().read(f"select action, previous_champion, champion_after, reasons from {tables.MODEL_PROMOTIONS}")
    assert record.to_dict("records") == [{"action": "rollback", "previous_champion": second.model_version,
                                          "champion_after": "1", "reasons": "v2 mis-scores new signups"}]
    # The run is in the state's Dagster instance.
    assert re.search(r"roll_back_champion_job - [0-9a-f-]{36} - .*RUN_SUCCESS", done.stdout + done.stderr)
