"""The dbt project as Dagster assets; dbt tests appear as asset checks."""

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt_project import email_dbt_project
from orchestration.dbt_test_descriptions import describe_dbt_test
from orchestration.partitions import daily_partitions, one_run_per_day, partition_day
from orchestration.resources import (
    PipelineSettings,
    subscriber_key_secret_is_configured,
    subscriber_key_secret_problem,
)

# dbt unit tests check SQL logic on fixed inputs, not the day's data: they run in `make test`
# (tests/dbt/test_dbt_build.py) and CI, where the SQL changes, not in every daily run
# (docs/warehouse.md, "What the daily run skips").
NOT_IN_DAILY_RUNS = ["--exclude-resource-type", "unit_test"]

# The landing verdict (dbt_project/models/intermediate/int_landing_files_judged.py): every mart
# depends on it, and its test fails on any row, so a broken landing file stops the marts
# inside the one dbt build.
LANDING_VERDICT_MODEL = "model.email_pipeline.int_landing_files_judged"


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
    """Groups dbt models by layer (get_group_name) and keys them by name."""

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
        """The groups as people name them: landing (sources), staging (staging, intermediate and
        seeds), quality (quarantine and reconciliation), marts (every other mart area)."""
        if dbt_resource_props["resource_type"] == "source":
            return "landing"
        area = self._area(dbt_resource_props)
        return area if area in ("staging", "quality") else "staging" if area in ("intermediate", "warehouse") else "marts"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        return _OWNERS.get(self._area(dbt_resource_props), ["team:data-engineering"])

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        """dagster-dbt's metadata, with each column's constraints (enforced by the model's
        contract: DuckDB refuses a null, or a value outside a `check`, while the table builds)
        in the column schema: `not_null` as not nullable, each `check` expression under other.
        dagster-dbt leaves constraints out, and these columns have no not_null or
        accepted_values test whose check would say it instead."""
        metadata = dict(super().get_metadata(dbt_resource_props))
        schema = metadata.get("dagster/column_schema")
        columns = dbt_resource_props.get("columns", {})
        if schema is None or not dbt_resource_props.get("config", {}).get("contract", {}).get("enforced"):
            return metadata

        def constraints(column: dg.TableColumn) -> dg.TableColumnConstraints:
            declared = columns.get(column.name, {}).get("constraints", [])
            return dg.TableColumnConstraints(
                nullable=not any(constraint.get("type") == "not_null" for constraint in declared),
                other=[constraint["expression"] for constraint in declared if constraint.get("type") == "check"],
            )

        metadata["dagster/column_schema"] = dg.TableSchema(columns=[
            dg.TableColumn(name=column.name, type=column.type, description=column.description, tags=column.tags,
                           constraints=constraints(column))
            for column in schema.columns
        ])
        return metadata

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project) -> dg.AssetCheckSpec | None:
        """dagster-dbt's check, described by orchestration/dbt_test_descriptions.py (it reads only
        a test's meta.description). The override point dagster-dbt calls per test, like
        get_asset_spec per node."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return dg.AssetCheckSpec(
            name=spec.name, asset=spec.asset_key, description=describe_dbt_test(manifest["nodes"][unique_id]),
            additional_deps=spec.additional_deps, blocking=spec.blocking, metadata=spec.metadata,
            automation_condition=spec.automation_condition, partitions_def=spec.partitions_def,
        )


@dataclass(frozen=True)
class BuiltModel:
    """A dbt model as the manifest describes it: its relation and its metadata queries."""

    relation: str
    # name -> SQL over "{this}", from the model's `meta.dagster_metadata` in its YAML.
    metadata_queries: Mapping[str, str]


def built_models(manifest_path: Path) -> dict[str, BuiltModel]:
    nodes = json.loads(manifest_path.read_text())["nodes"]
    return {
        unique_id: BuiltModel(
            relation=node["relation_name"],
            metadata_queries=node.get("config", {}).get("meta", {}).get("dagster_metadata", {}),
        )
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model" and node.get("relation_name")
    }


def metadata_from_query(connection: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """One metadata value from a query: a single value stays a value, two columns become a
    mapping of the first to the second, anything else a Markdown table."""
    frame = connection.execute(sql).df()
    if frame.shape == (1, 1):
        value = frame.iat[0, 0]
        return value.item() if hasattr(value, "item") else value
    if frame.shape[1] == 2:
        return {str(key): (value.item() if hasattr(value, "item") else value) for key, value in frame.itertuples(index=False)}
    return dg.MetadataValue.md(frame.to_markdown(index=False))


@contextmanager
def _warehouse_with_vault(settings: PipelineSettings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, with the PII vault attached as `pii`."""
    with settings.warehouse().connect(read_only=True) as connection:
        connection.execute(f"attach '{settings.pii_vault_path()}' as pii (read_only)")
        yield connection


def landing_breakages(connection: duckdb.DuckDBPyConnection, models: Mapping[str, BuiltModel]) -> list[str]:
    """The messages of the landing verdict's rows: each systemically broken file or drop."""
    relation = models[LANDING_VERDICT_MODEL].relation
    return [message for (message,) in connection.execute(f"select message from {relation} order by file_name").fetchall()]


def landing_verdict_failed(events: Sequence[Any]) -> bool:
    """Whether this build's events hold a failed check of the landing verdict (its table is
    then this build's). Read from the stream, not from run_results.json: a build that dies
    early leaves the previous day's file in place."""
    verdict = LANDING_VERDICT_MODEL.split(".")[-1]
    return any(
        isinstance(event, dg.AssetCheckResult) and not event.passed and verdict in (event.check_name or "")
        for event in events
    )


def _with_warehouse_metadata(
    event: Any, connection: duckdb.DuckDBPyConnection, models: Mapping[str, BuiltModel]
) -> Any:
    if not isinstance(event, dg.Output):
        return event
    model = models.get(getattr(event.metadata.get("unique_id"), "value", None))
    if model is None:
        return event
    extra: dict[str, Any] = {
        "dagster/row_count": connection.execute(f"select count(*) from {model.relation}").fetchone()[0]
    }
    for name, sql in model.metadata_queries.items():
        extra[name] = metadata_from_query(connection, sql.replace("{this}", model.relation))
    return event.with_metadata({**event.metadata, **extra})


def _dbt_assets_definition() -> dg.AssetsDefinition:
    project = email_dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=EmailPipelineTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
        ),
        name="warehouse_models",
        partitions_def=daily_partitions,
        backfill_policy=one_run_per_day,
    )
    def warehouse_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: PipelineSettings
    ):
        """Builds and tests every dbt model: staging, quarantine, identity, consent, marts.

        One `dbt build`. A landing file with more than `max_quarantine_share` of its rows
        quarantined fails the landing verdict's test (int_landing_files_judged), on which
        every mart depends: dbt skips them all, and the step fails naming each file.
        """
        problem = subscriber_key_secret_problem(settings)
        if problem:
            raise dg.Failure(problem)
        if not subscriber_key_secret_is_configured():
            context.log.warning(
                "SUBSCRIBER_KEY_SECRET is not set: subscriber keys use the DEVELOPMENT-ONLY "
                "secret. Never run production data like this (docs/privacy.md)."
            )
        day = partition_day(context)
        as_of = settings.as_of(day)
        settings.warehouse().write_as_of(as_of, day)
        context.log.info(f"Building the warehouse as of {as_of}")
        models = built_models(email_dbt_project().manifest_path)
        target = settings.dbt_target_path()
        # The paths reach dbt as vars, the same every day (so dbt parses only what changed).
        # Held results wait until dbt has released the DuckDB file, then get row counts and
        # the data-quality and identity numbers the UI should show.
        vars_arg = json.dumps(settings.dbt_vars())
        build = dbt.cli(
            ["build", *NOT_IN_DAILY_RUNS, "--vars", vars_arg], context=context, target_path=target / "build",
            raise_on_error=False,
        )
        events = list(build.stream())
        verdict_failed = not build.is_successful() and landing_verdict_failed(events)
        if not build.is_successful() and not (events or verdict_failed):
            raise build.get_error()  # nothing was built, perhaps not even the warehouse file
        with _warehouse_with_vault(settings) as connection:
            broken = landing_breakages(connection, models) if verdict_failed else []
            # What did run is recorded even when the build failed: the UI and the loop's message
            # then show the failed dbt test and what was built before it.
            for event in events:
                yield _with_warehouse_metadata(event, connection, models)
        if broken:
            raise dg.Failure(
                "Landing data looks broken, so no mart was built: " + " | ".join(broken),
                metadata={"broken_files": broken, "max_quarantine_share": settings.max_quarantine_share},
            )
        if not build.is_successful():
            raise build.get_error()

    return warehouse_models


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[_dbt_assets_definition()])
