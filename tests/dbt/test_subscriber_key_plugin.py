"""The dbt-duckdb plugin in dbt_project/plugins/subscriber_key_udf.py, without running dbt."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from ml.privacy import DEVELOPMENT_ONLY_SECRET, subscriber_key
from tests.dbt.conftest import DBT_PROJECT_DIR


@pytest.fixture(scope="module")
def plugin_module():
    spec = importlib.util.spec_from_file_location("subscriber_key_udf", DBT_PROJECT_DIR / "plugins" / "subscriber_key_udf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_udf_matches_ml_privacy_and_keeps_nulls(plugin_module) -> None:
    conn = duckdb.connect()
    plugin_module.register_subscriber_key_function(conn, "s3cret")
    rows = conn.execute(
        "select email, subscriber_key(email) from (values ('a@b.com'), (' A@B.com '), (null), ('other@b.com')) t(email)"
    ).fetchall()
    keys = dict(rows)
    assert keys["a@b.com"] == keys[" A@B.com "] == subscriber_key("a@b.com", "s3cret")
    assert keys["other@b.com"] == subscriber_key("other@b.com", "s3cret") != keys["a@b.com"]
    assert keys[None] is None


def test_udf_key_depends_on_the_secret(plugin_module) -> None:
    first, second = duckdb.connect(), duckdb.connect()
    plugin_module.register_subscriber_key_function(first, "one")
    plugin_module.register_subscriber_key_function(second, "two")
    query = "select subscriber_key('a@b.com')"
    assert first.execute(query).fetchone()[0] != second.execute(query).fetchone()[0]


def test_empty_secret_is_refused(plugin_module) -> None:
    with pytest.raises(ValueError):
        plugin_module.register_subscriber_key_function(duckdb.connect(), "")


def test_missing_secret_falls_back_to_the_development_secret(plugin_module) -> None:
    assert plugin_module.resolve_secret("") == DEVELOPMENT_ONLY_SECRET
    assert plugin_module.resolve_secret(None) == DEVELOPMENT_ONLY_SECRET
    assert plugin_module.resolve_secret("configured") == "configured"


def test_plugin_uses_the_configured_secret(plugin_module) -> None:
    plugin = plugin_module.Plugin("subscriber_key_udf", {"secret": "configured"})
    conn = duckdb.connect()
    plugin.configure_connection(conn)
    assert conn.execute("select subscriber_key('a@b.com')").fetchone()[0] == subscriber_key("a@b.com", "configured")


def test_project_path_reads_relative_paths_from_the_project(plugin_module, tmp_path: Path) -> None:
    assert plugin_module.project_path("../.state/warehouse.duckdb", tmp_path / "project") == str(tmp_path / ".state" / "warehouse.duckdb")
    assert plugin_module.project_path(str(tmp_path / "abs.duckdb"), tmp_path / "project") == str(tmp_path / "abs.duckdb")
    for untouched in (":memory:", "md:my_db", "s3://bucket/file.duckdb"):
        assert plugin_module.project_path(untouched, tmp_path) == untouched
    assert plugin_module.PROJECT_DIR == DBT_PROJECT_DIR


def test_connection_config_creates_state_folders(plugin_module, tmp_path: Path) -> None:
    creds = SimpleNamespace(
        path=str(tmp_path / "state" / "warehouse.duckdb"),
        attach=[SimpleNamespace(path=str(tmp_path / "vault" / "pii_vault.duckdb"))],
    )
    plugin = plugin_module.Plugin("subscriber_key_udf", {"secret": "x"})
    plugin.update_connection_config(creds, {})
    assert (tmp_path / "state").is_dir() and (tmp_path / "vault").is_dir()
    assert creds.path == str(tmp_path / "state" / "warehouse.duckdb")


def test_a_relative_spill_folder_is_read_from_the_project(plugin_module) -> None:
    creds = SimpleNamespace(path=":memory:", attach=[])
    config = {"memory_limit": "1GB", "temp_directory": "../.state/duckdb_spill"}
    plugin_module.Plugin("subscriber_key_udf", {"secret": "x"}).update_connection_config(creds, config)
    assert config == {"memory_limit": "1GB", "temp_directory": str(DBT_PROJECT_DIR.parent / ".state" / "duckdb_spill")}


def test_cursors_find_landing_files_relative_to_the_project(plugin_module) -> None:
    plugin = plugin_module.Plugin("subscriber_key_udf", {"secret": "x"})
    conn = duckdb.connect()
    plugin.configure_connection(conn)
    cursor = conn.cursor()
    plugin.configure_cursor(cursor)
    assert cursor.execute("select current_setting('file_search_path')").fetchone()[0] == str(DBT_PROJECT_DIR)


def test_plugin_reads_the_secret_from_the_named_environment_variable(plugin_module, monkeypatch) -> None:
    monkeypatch.setenv("TEST_PLUGIN_SECRET", "from-env")
    plugin = plugin_module.Plugin("subscriber_key_udf", {"secret_env_var": "TEST_PLUGIN_SECRET"})
    conn = duckdb.connect()
    plugin.configure_connection(conn)
    assert conn.execute("select subscriber_key('a@b.com')").fetchone()[0] == subscriber_key("a@b.com", "from-env")


def test_plugin_without_a_secret_uses_the_development_secret(plugin_module, monkeypatch) -> None:
    monkeypatch.delenv("SUBSCRIBER_KEY_SECRET", raising=False)
    plugin = plugin_module.Plugin("subscriber_key_udf", {})
    conn = duckdb.connect()
    plugin.configure_connection(conn)
    assert conn.execute("select subscriber_key('a@b.com')").fetchone()[0] == subscriber_key("a@b.com", DEVELOPMENT_ONLY_SECRET)


def test_profile_names_the_secret_variable_instead_of_rendering_its_value() -> None:
    """dbt prints rendered plugin configs (`dbt debug`); the secret value must not be one."""
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    assert "secret_env_var: SUBSCRIBER_KEY_SECRET" in profile
    assert "env_var('SUBSCRIBER_KEY_SECRET'" not in profile and 'env_var("SUBSCRIBER_KEY_SECRET"' not in profile
