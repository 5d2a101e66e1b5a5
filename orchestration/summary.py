"""`make demo` ends here: where the results are, in a few lines."""

from __future__ import annotations

import duckdb

from orchestration import tables
from orchestration.resources import PipelineSettings

SCHEMAS = ("marts", "quality", "experiments", "ml")


def main() -> None:
    settings = PipelineSettings()
    state = settings.state_path()
    print(f"\nState folder: {state}")

    print(f"\nWarehouse (no PII): {settings.warehouse_path()}")
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS} order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            rows = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            print(f"  {schema + '.' + table:<42} {rows:>10,} rows")
        reconciliation = connection.execute(
            f"select sum(rows_in), sum(rows_staged), sum(rows_quarantined) from {tables.LANDING_RECONCILIATION}"
        ).fetchone()
        print(
            f"  landing rows in {reconciliation[0]:,} = staged {reconciliation[1]:,} "
            f"+ quarantined {reconciliation[2]:,}"
        )
    print(f"PII vault (the only place with emails and names): {settings.pii_vault_path()}")

    client = settings.mlflow_client()
    version = client.get_model_version_by_alias(settings.registered_model_name, "candidate")
    run = client.get_run(version.run_id)
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(run.data.metrics.items()) if k.startswith("test_"))
    print(f"\nMLflow: {settings.tracking_uri()}")
    print(f"  model {settings.registered_model_name} version {version.version} (alias candidate)")
    print(f"  run {version.run_id}: {metrics}")

    print(f"\nReports: {settings.reports_path()}")
    for path in sorted(settings.reports_path().glob("*.html")):
        print(f"  {path.name}")
    print("\nBrowse it all with `make ui` (Dagster on :3000, MLflow on :5000).")


if __name__ == "__main__":
    main()
