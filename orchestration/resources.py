"""Resources: where the pipeline keeps its state and how it reaches the warehouse.

Environment variables are read here, when a resource is used, never at import time:

- ``PIPELINE_STATE_DIR``   the run-state folder (default ``<repo>/.state``)
- ``PIPELINE_LANDING_DIR`` your own landing folder; when set, the generator is not used
- ``MLFLOW_TRACKING_URI``  a remote MLflow server (default: SQLite inside the state folder)
- ``SUBSCRIBER_KEY_SECRET`` the HMAC secret for subscriber keys (see docs/privacy.md)
- ``ALLOW_DEV_SECRET=1``   run your own data on the public development secret anyway
- ``PIPELINE_EXPERIMENT_ID`` the declared experiment the campaign runs when ``experiment_id`` is
  not set (ml.experiments.design.DECLARED_EXPERIMENTS; default the fixed multi-arm test), e.g.
  ``subject-bandit-v1`` for the Thompson-sampling bandit
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
from pydantic import PrivateAttr

from ml.duckdb_settings import DuckDBSettings, connect as connect_duckdb
from orchestration import tables

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
VENDORED_HILLSTROM = REPO_ROOT / "data" / "hillstrom" / "hillstrom.csv"
# Under the state folder: what DuckDB spills beyond its memory limit (ml/duckdb_settings.py).
DUCKDB_SPILL_DIRNAME = "duckdb_spill"
APPROVED_SUBJECT_LINES = REPO_ROOT / "data" / "copy" / "approved_subject_lines.v1.json"


class PipelineSettings(dg.ConfigurableResource):
    """Paths and knobs shared by every stage. Empty strings mean "use the default".

    In a run, the resource holds the state folder's run lock from start to end (see
    orchestration/run_guard.py): runs on one state wait for each other.
    """

    state_dir: str = ""
    landing_dir: str = ""
    mlflow_tracking_uri: str = ""
    audience_size: int = 20_000
    audience_days: int = 120
    audience_seed: int = 42
    # The simulated history ends at this moment; the first live day is the day it starts.
    audience_end: str = "2026-06-30 00:00:00"
    dirty_data: bool = True
    # Empty: PIPELINE_EXPERIMENT_ID, else the fixed multi-arm test (see experiment()).
    experiment_id: str = ""
    # Targeting (ml/decisioning/policy.py): the top share of sendable members by propensity
    # is emailed, plus a random control emailed regardless of score.
    targeting_top_share: float = 0.5
    targeting_random_control_share: float = 0.1
    # A landing file with a larger share of quarantined rows stops the run before the
    # marts: that is a format change, not a few bad rows.
    max_quarantine_share: float = 0.05
    # The last fallback of a subscriber's time zone (their own, else their country's, else
    # this): docs/data_contract.md.
    default_timezone: str = "UTC"
    # DuckDB's memory limit and threads for every connection, in this process and in dbt's
    # (ml/duckdb_settings.py); it spills to <state>/duckdb_spill beyond the limit.
    duckdb_memory_limit: str = DuckDBSettings.memory_limit
    duckdb_threads: int = DuckDBSettings.threads
    # Models train on all the cutoffs of at most this many people, a stable sample by
    # subscriber key (ml/propensity/sampling.py); 0 = everyone. The demo's 20,000 are all in.
    max_training_people: int = 200_000

    _run_lock: Any = PrivateAttr(default=None)

    # -- run lifetime ----------------------------------------------------------------------
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from orchestration.run_guard import WarehouseRunLock, fail_runs_whose_process_died

        lock = WarehouseRunLock(self.state_path())
        waited = lock.acquire(log=context.log)
        self._run_lock = lock
        if waited > 1:
            context.log.info(f"Waited {waited:.0f} s for the previous run on this state to finish.")
        if context.instance is not None:
            run_id = context.run.run_id if context.run else None
            for dead in fail_runs_whose_process_died(context.instance, current_run_id=run_id):
                context.log.warning(f"Marked run {dead} failed: its process had died.")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

    def experiment(self) -> str:
        """The id of the declared experiment the campaign runs (ml.experiments.design.DECLARED_EXPERIMENTS)."""
        from ml.experiments.design import FIXED_EXPERIMENT_ID

        return self.experiment_id or os.environ.get("PIPELINE_EXPERIMENT_ID") or FIXED_EXPERIMENT_ID

    # -- paths -------------------------------------------------------------------------------
    def state_path(self) -> Path:
        path = Path(self.state_dir or os.environ.get("PIPELINE_STATE_DIR") or REPO_ROOT / ".state")
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def user_landing_dir(self) -> Path | None:
        """The user's own landing folder, or None when the generator provides the data."""
        configured = self.landing_dir or os.environ.get("PIPELINE_LANDING_DIR", "")
        return Path(configured).resolve() if configured else None

    def landing_path(self) -> Path:
        return self.user_landing_dir() or self.state_path() / "landing"

    def reference_data_path(self) -> Path:
        """Reference data the pipeline installs for itself (the verified Hillstrom copy): in the
        state folder, never in the landing folder, which is the user's and is only read."""
        return self.state_path() / "reference"

    def hillstrom_path(self) -> Path:
        from ml.landing.hillstrom import INSTALLED_FILE_NAME

        return self.reference_data_path() / INSTALLED_FILE_NAME

    def simulator_path(self) -> Path:
        """The simulator's private world (oracle). The pipeline itself never reads it."""
        return self.state_path() / "simulator"

    def outbox_path(self, day: date) -> Path:
        """The hand-off to the ESP: the sends planned for ``day`` (ESP ids and copy, no PII)."""
        return self.state_path() / "outbox" / day.isoformat() / "sends.parquet"

    def warehouse_path(self) -> Path:
        return self.state_path() / "warehouse.duckdb"

    def pii_vault_path(self) -> Path:
        return self.state_path() / "pii_vault.duckdb"

    def dbt_target_path(self) -> Path:
        """dbt's target and log folder for this state (never inside the repo)."""
        return self.state_path() / "dbt" / "target"

    def reports_path(self) -> Path:
        path = self.state_path() / "reports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data_docs_site(self):
        """The Great Expectations Data Docs site of this state (reports/data_docs)."""
        from ml.quality import DataDocsSite

        return DataDocsSite(self.reports_path() / "data_docs")

    # -- MLflow ----------------------------------------------------------------------------
    def _configured_tracking_uri(self) -> str:
        """A tracking server named in the run config or the environment; "" for the state's own store."""
        return self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")

    def tracking_uri(self) -> str:
        configured = self._configured_tracking_uri()
        if configured:
            return configured
        mlflow_dir = self.state_path() / "mlflow"
        mlflow_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{mlflow_dir / 'mlflow.db'}"

    def mlflow_client(self):
        """An `MlflowClient` bound to this run's tracking store and registry: ml/ gets it
        explicitly, so nothing sets MLflow's process-wide URIs. In the state's own store, the
        empty "Default" experiment MLflow creates with the database is deleted (a remote
        server's is left alone)."""
        from mlflow import MlflowClient

        from ml.tracking import retire_empty_default_experiment

        uri = self.tracking_uri()
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if not self._configured_tracking_uri():
            retire_empty_default_experiment(client)
        return client

    def mlflow_artifact_location(self) -> str:
        return (self.state_path() / "mlflow" / "artifacts").as_uri()

    # -- run context -----------------------------------------------------------------------
    def initial_export_cut(self) -> tuple[datetime, str]:
        """The moment the initial export was cut, and where that moment comes from.

        From the export's `_manifest.json` (`extracted_at`); without a manifest, from the
        simulator's configured history, or for your own folder from the latest event in the
        initial export (ml.landing.preflight.latest_event_at). Never the machine's clock.
        """
        from ml.landing.preflight import latest_event_at

        manifest = self.landing_path() / "_manifest.json"
        if manifest.exists():
            text = str(json.loads(manifest.read_text())["extracted_at"]).strip().replace("Z", "+00:00")
            extracted_at = datetime.fromisoformat(text)
            if extracted_at.tzinfo is not None:
                extracted_at = extracted_at.astimezone(timezone.utc).replace(tzinfo=None)
            return extracted_at, "_manifest.json extracted_at"
        if self.user_landing_dir() is None:
            return datetime.fromisoformat(self.audience_end), "the simulator's configured history"
        latest = latest_event_at(self.landing_path())
        if latest is None:
            raise dg.Failure(
                f"{manifest} is missing and no file of the initial export has a readable timestamp, so the "
                'pipeline cannot tell which day your export ends on. Fix: write {"extracted_at": '
                '"YYYY-MM-DD HH:MM:SS"} (UTC, the moment the export was cut) to that file (docs/data_contract.md).'
            )
        # The cut came after the latest event: that event's day is the export's last day.
        return latest + timedelta(seconds=1), "the latest event in the initial export (no _manifest.json)"

    def initial_export_day(self) -> date:
        """The last whole day of the initial export: the loop's first day."""
        return self.export_day(self.initial_export_cut()[0])

    @staticmethod
    def export_day(cut: datetime) -> date:
        """The last whole day before the moment an export was cut."""
        return (cut - timedelta(seconds=1)).date()

    @staticmethod
    def as_of(day: date) -> datetime:
        """The pipeline's "now" for a daily partition: the last second of that day (UTC).
        Everything that landed for the day and before is known; nothing later is."""
        return datetime(day.year, day.month, day.day, 23, 59, 59)

    def duckdb_settings(self) -> DuckDBSettings:
        return DuckDBSettings(
            memory_limit=self.duckdb_memory_limit,
            threads=self.duckdb_threads,
            temp_directory=str(self.state_path() / DUCKDB_SPILL_DIRNAME),
        )

    def warehouse(self) -> "Warehouse":
        return Warehouse(self.warehouse_path(), self.duckdb_settings())

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars that place this state's files (dbt_project/profiles.yml and the
        sources), passed as `--vars`, so nothing is written to this process's environment.
        They stay the same from day to day, so dbt parses only what changed (the day itself
        reaches dbt through ml.warehouse_as_of, see `Warehouse.write_as_of`)."""
        from ml.landing.categories import category_mapping_csv

        return {
            "landing_dir": str(self.landing_path()),
            "hillstrom_csv": str(self.hillstrom_path()),
            "warehouse_path": str(self.warehouse_path()),
            "pii_vault_path": str(self.pii_vault_path()),
            "default_timezone": self.default_timezone,
            "category_mapping_csv": str(category_mapping_csv(self.landing_path())),
            "max_quarantine_share": self.max_quarantine_share,
            **{f"duckdb_{name}": value for name, value in self.duckdb_settings().config().items()},
        }


def code_version() -> str:
    """The git commit of the code that runs (with "-dirty" for uncommitted changes), or
    "unknown" outside a git checkout: recorded on MLflow runs and model cards."""
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True,
            text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def subscriber_key_secret_is_configured() -> bool:
    return bool(os.environ.get("SUBSCRIBER_KEY_SECRET"))


def subscriber_key_secret_problem(settings: PipelineSettings) -> str | None:
    """Why this run must not start with the configured secret, or None.

    Generated demo data may use the public development secret (with a warning); your own
    data may not, unless ALLOW_DEV_SECRET=1 says so explicitly.
    """
    from ml.privacy import DEVELOPMENT_ONLY_SECRET

    if settings.user_landing_dir() is None:
        return None
    secret = os.environ.get("SUBSCRIBER_KEY_SECRET", "")
    if secret and secret != DEVELOPMENT_ONLY_SECRET:
        return None
    if os.environ.get("ALLOW_DEV_SECRET") == "1":
        return None
    return (
        "SUBSCRIBER_KEY_SECRET is missing or is the public development secret, and the landing "
        f"folder is your own data ({settings.user_landing_dir()}). Subscriber keys made with a "
        "public secret can be linked back to emails. Fix: set SUBSCRIBER_KEY_SECRET to a long "
        "random value kept outside the repo (docs/privacy.md), or set ALLOW_DEV_SECRET=1 to "
        "accept this for test data."
    )


def add_declared_columns(connection: Any, table: str, column_types: dict[str, str]) -> None:
    """A table from an earlier version of the pipeline gains the columns declared since (its
    older rows hold nulls there), instead of refusing the new rows."""
    for name, sql_type in column_types.items():
        connection.execute(f'alter table {table} add column if not exists "{name}" {sql_type}')


def column_definitions(column_types: dict[str, str]) -> str:
    """`"column" type, ...` for a create table."""
    return ", ".join(f'"{name}" {sql_type}' for name, sql_type in column_types.items())


class Warehouse:
    """The DuckDB warehouse without PII. Python assets write to schema ``ml``.

    Not dagster-duckdb's `DuckDBResource`: its file path would be a second setting beside
    `PipelineSettings.state_dir` (which also places the vault, MLflow and dbt's target, and
    can come from run config), and it offers only the connection; the replace-and-count
    write and the read-only reads here are the part every asset needs.
    """

    def __init__(self, path: Path, duckdb_settings: DuckDBSettings = DuckDBSettings()):
        self.path = path
        self.duckdb_settings = duckdb_settings

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = connect_duckdb(self.path, self.duckdb_settings, read_only=read_only)
        try:
            yield connection
        finally:
            connection.close()

    def read(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connect(read_only=True) as connection:
            return connection.execute(sql, params or []).df()

    def has_table(self, table: str) -> bool:
        """Whether ``schema.table`` exists yet (a Python-written table appears on its first day)."""
        schema, name = table.split(".")
        return bool(self.read(
            "select count(*) as n from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        )["n"].iloc[0])

    def read_table(self, table: str) -> pd.DataFrame:
        return self.read(f"select * from {table}")

    def read_table_if_exists(self, table: str) -> pd.DataFrame:
        """The table, or an empty frame before its first day (a Python-written table)."""
        return self.read_table(table) if self.has_table(table) else pd.DataFrame()

    def write_table(self, frame: pd.DataFrame, table: str) -> int:
        """Replace ``schema.table`` with the frame; returns the row count written."""
        schema = table.split(".")[0]
        with self.connect() as connection:
            connection.execute(f"create schema if not exists {schema}")
            connection.register("frame_to_write", frame)
            connection.execute(f"create or replace table {table} as select * from frame_to_write")
            connection.unregister("frame_to_write")
            return int(connection.execute(f"select count(*) from {table}").fetchone()[0])

    def write_as_of(self, as_of: datetime, day: date) -> None:
        """Record the moment the next dbt build is as of (tables.WAREHOUSE_AS_OF, read by the
        dbt macro as_of()), with the partition day it belongs to."""
        self.write_table(
            pd.DataFrame({"as_of": [pd.Timestamp(as_of)], "partition_day": [pd.Timestamp(day)]}),
            tables.WAREHOUSE_AS_OF,
        )

    def as_of(self) -> datetime | None:
        """The moment the warehouse was last built as of (tables.WAREHOUSE_AS_OF); None
        before the first build (or before the warehouse file exists)."""
        if not self.path.exists() or not self.has_table(tables.WAREHOUSE_AS_OF):
            return None
        value = self.read(f"select max(as_of) as as_of from {tables.WAREHOUSE_AS_OF}")["as_of"].iloc[0]
        return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()

    def append_rows(self, frame: pd.DataFrame, table: str, column_types: dict[str, str]) -> int:
        """Append the frame to ``schema.table``, created on first use with ``column_types``
        (column -> SQL type; inferring them from a first row with nulls would type those
        columns NULL and refuse every later value). Returns the rows added. For logs that
        only grow, such as ml.model_promotions."""
        if list(frame.columns) != list(column_types):
            raise ValueError(f"rows for {table} have columns {list(frame.columns)}; expected {list(column_types)}")
        schema = table.split(".")[0]
        with self.connect() as connection:
            connection.execute(f"create schema if not exists {schema}")
            connection.register("frame_to_write", frame)
            connection.execute(f"create table if not exists {table} ({column_definitions(column_types)})")
            add_declared_columns(connection, table, column_types)
            connection.execute(f"insert into {table} by name select * from frame_to_write")
            connection.unregister("frame_to_write")
        return len(frame)

    def replace_day(
        self, frame: pd.DataFrame, table: str, day_column: str, day: date, column_types: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> int:
        """Replace one day's rows of ``schema.table`` with the frame (whose ``day_column`` must
        all be ``day``), creating the table on the first day, with ``column_types`` (column ->
        SQL type) when given, else with the frame's types; a declared column the table lacks
        is added. With ``run_id`` (the Dagster run writing the day), every row records it in
        tables.RUN_ID_COLUMN_TYPES' column. Re-running a day therefore replaces exactly that
        day. Returns the day's row count."""
        if not frame.empty and not (pd.to_datetime(frame[day_column]).dt.date == day).all():
            raise ValueError(f"rows written as day {day} of {table} carry other days in {day_column}")
        if column_types is not None and list(frame.columns) != list(column_types):
            raise ValueError(f"rows for {table} have columns {list(frame.columns)}; expected {list(column_types)}")
        if run_id is not None:
            (run_column,) = tables.RUN_ID_COLUMN_TYPES
            if run_column in frame.columns:
                raise ValueError(f"rows for {table} already carry {run_column}; pass run_id or the column, not both")
            frame = frame.assign(**{run_column: str(run_id)})
            if column_types is not None:
                column_types = {**column_types, **tables.RUN_ID_COLUMN_TYPES}
        schema = table.split(".")[0]
        create = (
            f"create table if not exists {table} as select * from frame_to_write limit 0" if column_types is None
            else f"create table if not exists {table} ({column_definitions(column_types)})"
        )
        with self.connect() as connection:
            connection.execute(f"create schema if not exists {schema}")
            connection.register("frame_to_write", frame)
            connection.execute("begin transaction")
            connection.execute(create)
            add_declared_columns(connection, table, column_types or {})
            connection.execute(f"delete from {table} where cast({day_column} as date) = ?", [day])
            connection.execute(f"insert into {table} by name select * from frame_to_write")
            connection.execute("commit")
            connection.unregister("frame_to_write")
            return int(
                connection.execute(f"select count(*) from {table} where cast({day_column} as date) = ?", [day]).fetchone()[0]
            )
