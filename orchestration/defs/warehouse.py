"""The dbt project as Dagster assets; dbt tests appear as asset checks."""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from ml.landing_health import systemic_breakages
from orchestration.dbt_project import email_dbt_project
from orchestration.resources import (
    PipelineSettings,
    subscriber_key_secret_is_configured,
    subscriber_key_secret_problem,
)

# The dbt plugin dbt_project/plugins/dies_with_parent.py reads this to die with its parent.
_PARENT_PID_ENV_VAR = "PIPELINE_DBT_PARENT_PID"
# The models that give every contract landing row its verdict: built first, judged, then
# the rest. (The vendored Hillstrom file is not a contract export.)
_VERDICT_SELECTION = ["--select", "path:models/staging path:models/intermediate", "--exclude", "path:models/staging/hillstrom"]

# Which team answers for a folder of models.
_OWNERS = {
    "staging": ["team:data-engineering"],
    "intermediate": ["team:data-engineering"],
    "quality": ["team:data-engineering"],
    "core": ["team:data-engineering"],
    "features": ["team:ml-engineering"],
    "experiments": ["team:ml-engineering"],
}


class EmailPipelineTranslator(DagsterDbtTranslator):
    """Groups dbt models by folder: staging, intermediate, and one group per mart area."""

    @staticmethod
    def _area(dbt_resource_props: Mapping[str, Any]) -> str:
        folders = dbt_resource_props.get("fqn", [])[1:-1]
        if not folders:
            return "warehouse"
        return folders[1] if folders[0] == "marts" and len(folders) > 1 else folders[0]

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Model names are unique and are the names people use: `subscriber_profiles`, not
        # `marts/subscriber_profiles`. Sources and vault tables keep their explicit meta keys.
        has_explicit_key = dbt_resource_props.get("meta", {}).get("dagster", {}).get("asset_key")
        if dbt_resource_props["resource_type"] in ("model", "seed") and not has_explicit_key:
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "landing"
        return f"warehouse_{self._area(dbt_resource_props)}"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        return _OWNERS.get(self._area(dbt_resource_props), ["team:data-engineering"])


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the dbt subprocess only, then restore the old ones."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _relations_by_unique_id(manifest_path: Path) -> dict[str, str]:
    nodes = json.loads(manifest_path.read_text())["nodes"]
    return {
        unique_id: node["relation_name"]
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model" and node.get("relation_name")
    }


@contextmanager
def _warehouse_with_vault(settings: PipelineSettings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, with the PII vault attached as `pii`."""
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as connection:
        connection.execute(f"attach '{settings.pii_vault_path()}' as pii (read_only)")
        yield connection


def quarantine_counts(
    connection: duckdb.DuckDBPyConnection, relations: Mapping[str, str]
) -> pd.DataFrame:
    """Rows per (landing file, reason code) over every `int_*_classified` model, with one
    example row's raw values per group (for its shape only; see ml.landing_health)."""
    classified = [
        relation for unique_id, relation in sorted(relations.items())
        if unique_id.split(".")[-1].startswith("int_") and unique_id.endswith("_classified")
    ]
    per_reason = " union all ".join(
        f"select source_file, reason_code, count(*) as rows, "
        f"cast(any_value(raw_values) as varchar) as example_raw_values from {relation} group by all"
        for relation in classified
    )
    return connection.execute(
        f"""
        select source_file, sum(rows) over (partition by source_file) as rows_in,
               reason_code, rows, example_raw_values
        from ({per_reason})
        """
    ).df()


def _with_warehouse_metadata(
    event: Any, connection: duckdb.DuckDBPyConnection, relations: Mapping[str, str]
) -> Any:
    if not isinstance(event, dg.Output):
        return event
    unique_id = getattr(event.metadata.get("unique_id"), "value", None)
    relation = relations.get(unique_id)
    if relation is None:
        return event
    extra: dict[str, Any] = {
        "dagster/row_count": connection.execute(f"select count(*) from {relation}").fetchone()[0]
    }
    name = unique_id.split(".")[-1]
    if name == "landing_reconciliation":
        extra.update(warehouse_quality_numbers(connection))
    elif name == "subscriber_identity_crosswalk":
        extra.update(identity_resolution_numbers(connection))
    elif name == "subscriber_eligibility":
        extra.update(eligibility_numbers(connection))
    return event.with_metadata({**event.metadata, **extra})


def warehouse_quality_numbers(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Rows in, staged and quarantined per landing file, and quarantine reasons."""
    reconciliation = connection.execute(
        "select * from quality.landing_reconciliation order by source_file"
    ).df()
    reasons = connection.execute(
        """
        select reason_code, count(*) as n from (
            select reason_code from quality.quarantine_rows
            union all select reason_code from pii.quarantined_subscribers
        ) group by reason_code order by n desc
        """
    ).fetchall()
    return {
        "rows_in": int(reconciliation["rows_in"].sum()),
        "rows_staged": int(reconciliation["rows_staged"].sum()),
        "rows_quarantined": int(reconciliation["rows_quarantined"].sum()),
        "all_files_conserved": bool(reconciliation["is_conserved"].all()),
        "reconciliation": dg.MetadataValue.md(reconciliation.to_markdown(index=False)),
        "quarantine_reasons": {reason: int(n) for reason, n in reasons},
    }


def identity_resolution_numbers(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How many source records became how many canonical people."""
    row = connection.execute(
        """
        with per_key as (
            select subscriber_key,
                   bool_or(source_system = 'crm') as in_crm,
                   bool_or(source_system = 'esp') as in_esp,
                   count(*) as records
            from marts.subscriber_identity_crosswalk group by subscriber_key
        )
        select sum(records), count(*), count(*) filter (in_crm and in_esp),
               count(*) filter (in_crm and not in_esp), count(*) filter (in_esp and not in_crm)
        from per_key
        """
    ).fetchone()
    return {
        "source_records": int(row[0] or 0),
        "canonical_subscribers": int(row[1] or 0),
        "matched_in_crm_and_esp": int(row[2] or 0),
        "crm_only": int(row[3] or 0),
        "esp_only": int(row[4] or 0),
    }


def eligibility_numbers(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    rows = connection.execute(
        """
        select coalesce(exclusion_reason, 'eligible'), count(*) from marts.subscriber_eligibility
        group by 1 order by 2 desc
        """
    ).fetchall()
    return {"eligibility": {reason: int(n) for reason, n in rows}}


def _dbt_assets_definition() -> dg.AssetsDefinition:
    project = email_dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=EmailPipelineTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
        ),
        name="warehouse_models",
    )
    def warehouse_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: PipelineSettings
    ):
        """Builds and tests every dbt model: staging, quarantine, identity, consent, marts.

        Staging and intermediate models are built first and judged: a landing file with
        more than `max_quarantine_share` of its rows quarantined stops the run before any
        mart is built.
        """
        problem = subscriber_key_secret_problem(settings)
        if problem:
            raise dg.Failure(problem)
        if not subscriber_key_secret_is_configured():
            context.log.warning(
                "SUBSCRIBER_KEY_SECRET is not set: subscriber keys use the DEVELOPMENT-ONLY "
                "secret. Never run production data like this (docs/privacy.md)."
            )
        as_of = settings.as_of().isoformat(sep=" ")
        context.log.info(f"Building the warehouse as of {as_of}")
        relations = _relations_by_unique_id(email_dbt_project().manifest_path)
        target = settings.dbt_target_path()
        vars_arg = json.dumps({"as_of": as_of})
        # The dbt profile reads these paths; the dbt subprocess inherits them, and dies with
        # this process. Held results wait until dbt has released the DuckDB file, then get
        # row counts and the data-quality and identity numbers the UI should show.
        with _environment({**settings.dbt_env(), _PARENT_PID_ENV_VAR: str(os.getpid())}):
            dbt.cli(
                ["run", *_VERDICT_SELECTION, "--vars", vars_arg], target_path=target / "verdicts"
            ).wait()
            with _warehouse_with_vault(settings) as connection:
                breakages = systemic_breakages(quarantine_counts(connection, relations), settings.max_quarantine_share)
            if breakages:
                raise dg.Failure(
                    "Landing data looks broken, so no mart was built: "
                    + " | ".join(breakage.message() for breakage in breakages),
                    metadata={
                        "broken_files": [b.source_file for b in breakages],
                        "max_quarantine_share": settings.max_quarantine_share,
                    },
                )
            invocation = dbt.cli(
                ["build", "--vars", vars_arg], context=context, target_path=target / "build"
            )
            events = list(invocation.stream())
        with _warehouse_with_vault(settings) as connection:
            for event in events:
                yield _with_warehouse_metadata(event, connection, relations)

    return warehouse_models


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[_dbt_assets_definition()])
