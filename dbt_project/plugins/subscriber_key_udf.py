"""dbt-duckdb plugin: the `subscriber_key(varchar) -> varchar` SQL function, and project-relative paths.

The function is `ml.privacy.subscriber_key` (salted HMAC-SHA256 of the normalised email), so
keys computed in the warehouse match keys computed in Python. The secret is read from the
environment variable the plugin config names (`secret_env_var`, SUBSCRIBER_KEY_SECRET), not
passed as a value: dbt prints plugin configs (`dbt debug`) and exposes them to Jinja as
`target`, and the secret must not show up there.

dbt does not change into the project directory, so relative paths in profiles.yml and in
the sources would depend on where dbt was started. The plugin resolves them against the
project directory instead: relative database/attach paths become absolute before DuckDB
opens them, and DuckDB's `file_search_path` is the project directory, so
`read_parquet('../.state/landing/...')` works from the repo root and from dbt_project/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa
from dbt.adapters.duckdb.credentials import DuckDBCredentials
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.events.logging import AdapterLogger

from ml import privacy

logger = AdapterLogger("subscriber_key_udf")

FUNCTION_NAME = "subscriber_key"
DEFAULT_SECRET_ENV_VAR = "SUBSCRIBER_KEY_SECRET"
PROJECT_DIR = Path(__file__).resolve().parents[1]


def resolve_secret(configured_secret: str | None) -> str:
    """Return the configured secret, or the development-only one with a loud warning."""
    if configured_secret:
        return configured_secret
    logger.warning(
        "SUBSCRIBER_KEY_SECRET is not set: subscriber keys use ml.privacy.DEVELOPMENT_ONLY_SECRET, "
        "which is public. Set SUBSCRIBER_KEY_SECRET for any real data."
    )
    return privacy.DEVELOPMENT_ONLY_SECRET


def subscriber_keys_function(secret: str) -> Callable[[pa.Array], pa.Array]:
    """An Arrow UDF body: emails in, ml.privacy.subscriber_key(email, secret) out (null stays null)."""
    if not secret:
        raise ValueError("subscriber key secret must not be empty")
    subscriber_key = privacy.subscriber_key

    def keys(emails: pa.Array) -> pa.Array:
        return pa.array(
            [None if email is None else subscriber_key(email, secret) for email in emails.to_pylist()],
            type=pa.string(),
        )

    return keys


def register_subscriber_key_function(conn: duckdb.DuckDBPyConnection, secret: str) -> None:
    """Register `subscriber_key(email varchar) -> varchar` on a DuckDB connection."""
    conn.create_function(
        FUNCTION_NAME,
        subscriber_keys_function(secret),
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"),
        type="arrow",
        null_handling="special",
        side_effects=False,
    )


def project_path(path: str, project_dir: Path = PROJECT_DIR) -> str:
    """An absolute local path for `path`, read relative to the dbt project; URLs and :memory: unchanged."""
    if not path or path == ":memory:" or "://" in path or path.startswith("md:"):
        return path
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = project_dir / candidate
    return str(candidate.resolve())


class Plugin(BasePlugin):
    """Registers the subscriber_key UDF and makes relative paths project-relative."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # `secret` (a literal value) is for programmatic use; profiles name the variable instead.
        secret_env_var = plugin_config.get("secret_env_var") or DEFAULT_SECRET_ENV_VAR
        self._secret = resolve_secret(plugin_config.get("secret") or os.environ.get(secret_env_var))

    def update_connection_config(self, creds: DuckDBCredentials, config: dict[str, Any]) -> None:
        # Runs before DuckDB opens the files; a fresh checkout has no state folder yet.
        creds.path = project_path(creds.path)
        for attachment in creds.attach or []:
            attachment.path = project_path(attachment.path)
        if config.get("temp_directory"):  # DuckDB's spill folder (profiles.yml config_options)
            config["temp_directory"] = project_path(config["temp_directory"])
        for path in [creds.path, *[attachment.path for attachment in creds.attach or []]]:
            if Path(path).is_absolute():
                Path(path).parent.mkdir(parents=True, exist_ok=True)

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register_subscriber_key_function(conn, self._secret)
        self.configure_cursor(conn)

    def configure_cursor(self, cursor: duckdb.DuckDBPyConnection) -> None:
        # Session setting: every cursor needs it for relative landing paths.
        cursor.execute("SET file_search_path = '{}'".format(str(PROJECT_DIR).replace("'", "''")))
