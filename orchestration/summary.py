"""`make demo` ends here: where the results are, in a few lines."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration import tables
from orchestration.resources import PipelineSettings

SCHEMAS = ("marts", "quality", "experiments", "ml")

# The people the policy chose among by score: non-holdout, scored, not in the random control.
_SCORED_GROUP = f"""
select a.subscriber_key, coalesce(ps.selected_by = 'top_propensity_share', false) as emailed,
       max(x.source_id) filter (x.source_system = 'crm') as crm_id,
       max(x.source_id) filter (x.source_system = 'esp') as esp_id
from {tables.EXPERIMENT_ASSIGNMENTS} a
join {tables.PROPENSITY_SCORES} s using (subscriber_key)
left join {tables.PLANNED_SENDS} ps using (subscriber_key)
join {tables.SUBSCRIBER_IDENTITY_CROSSWALK} x using (subscriber_key)
where a.arm <> 'holdout' and coalesce(ps.selected_by, '') <> 'random_control'
group by all
"""


def targeting_value_from_the_truth(connection: duckdb.DuckDBPyConnection, simulator_dir: Path, seed: int):
    """The policy's true incremental purchases against random targeting of the same volume,
    from the simulator's oracle. For the demo summary and tests only: no asset reads it."""
    from ml.simulator.evaluation import targeting_value
    from ml.simulator.responder import SimulatedOutcomeSource

    members = connection.execute(_SCORED_GROUP).df()
    members = members.assign(arm="control", is_sent=True, subject_line=None, variant_category="general")
    truth = SimulatedOutcomeSource(simulator_dir, seed=seed).true_purchase_probabilities(members)
    return targeting_value(truth["true_uplift"].to_numpy(), members["emailed"].to_numpy(dtype=bool))


def main() -> None:
    settings = PipelineSettings()
    state = settings.state_path()
    print(f"\nState folder: {state}")

    print(f"\nWarehouse (no PII): {settings.warehouse_path()}")
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as connection:
        listed = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS} order by 1, 2"
        ).fetchall()
        for schema, table in listed:
            rows = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            print(f"  {schema + '.' + table:<42} {rows:>10,} rows")
        reconciliation = connection.execute(
            f"select sum(rows_in), sum(rows_staged), sum(rows_quarantined) from {tables.LANDING_RECONCILIATION}"
        ).fetchone()
        print(
            f"  landing rows in {reconciliation[0]:,} = staged {reconciliation[1]:,} "
            f"+ quarantined {reconciliation[2]:,}"
        )
        if settings.user_landing_dir() is None and (settings.simulator_path() / "truth.json").exists():
            value = targeting_value_from_the_truth(connection, settings.simulator_path(), settings.audience_seed)
            print(
                f"\nTargeting, judged by the simulator's truth (the pipeline never reads it): emailed "
                f"{value.emailed:,} of {value.population:,} by propensity; true incremental purchases "
                f"{value.policy_incremental_purchases:.1f} against {value.random_incremental_purchases:.1f} for random "
                f"targeting of the same volume ({value.ratio_to_random:.2f}x random, "
                f"{value.ratio_to_oracle:.2f}x the true-uplift ranking)."
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
