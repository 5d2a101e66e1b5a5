"""Great Expectations suites on the marts, as blocking asset checks (dbt tests run in dbt)."""

import dagster as dg

from ml.quality import WarehouseTable
from orchestration.dbt_project import email_dbt_project, mart_relations
from orchestration.gx_checks import gx_check_spec, run_gx_check
from orchestration import tables
from orchestration.resources import PipelineSettings

def _mart_expectations() -> dg.AssetChecksDefinition:
    marts = mart_relations(email_dbt_project().manifest_path)

    @dg.multi_asset_check(
        specs=[gx_check_spec(dg.AssetKey(model), model) for model in marts],
        can_subset=True,
        name="mart_expectations",
    )
    def mart_expectations(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
        """One Great Expectations suite per mart, expectations/<mart>.json, run inside DuckDB."""
        database = settings.warehouse_path()
        docs = settings.data_docs_site()
        duckdb_settings = settings.duckdb_settings()
        for check_key in context.selected_asset_check_keys:
            model = check_key.asset_key.path[-1]
            table = WarehouseTable(database=database, relation=marts[model], duckdb_settings=duckdb_settings)
            yield run_gx_check(table, table=model, asset_key=check_key.asset_key, docs=docs, log=context.log, run_id=context.run.run_id)
        docs.build()

    return mart_expectations


@dg.asset_check(
    asset=dg.AssetKey("subscriber_eligibility"),
    additional_deps=[dg.AssetKey("consent_records_untied")],
    blocking=True,
    description=(
        "Every quarantined row that may revoke consent is tied to a subscriber row (so its "
        "person is excluded). An untied one (quality.consent_records_untied) blocks sends: "
        "nobody can be excluded for it. Names file and row number, never raw values."
    ),
)
def consent_records_all_tied(settings: PipelineSettings) -> dg.AssetCheckResult:
    untied = settings.warehouse().read(
        "select source_file, source_row_key, source_record_id, record_kind, reason_code "
        f"from {tables.CONSENT_RECORDS_UNTIED} order by source_file, source_row_key"
    )
    rows = [
        f"{r.source_file} row {r.source_row_key} ({r.record_kind} {r.source_record_id}, {r.reason_code})"
        for r in untied.itertuples()
    ]
    return dg.AssetCheckResult(
        passed=untied.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "All quarantined consent rows are tied to a person."
            if untied.empty
            else "Quarantined consent rows tied to nobody; fix the feed or the subscriber export: "
            + "; ".join(rows[:20])
            + (f"; and {len(rows) - 20} more" if len(rows) > 20 else "")
        ),
        metadata={"untied_consent_records": len(untied), "rows": dg.MetadataValue.md("\n".join(f"- {r}" for r in rows[:200]) or "none")},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(asset_checks=[_mart_expectations(), consent_records_all_tied])
