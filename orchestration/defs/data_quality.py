"""Great Expectations suites on the marts, as blocking asset checks (dbt tests run in dbt)."""

import dagster as dg

from orchestration.gx_checks import gx_check_spec, run_gx_check
from orchestration.resources import PipelineSettings

# dbt model name -> the relation it is built as.
MART_RELATIONS = {
    "subscriber_identity_crosswalk": "marts.subscriber_identity_crosswalk",
    "consent_history": "marts.consent_history",
    "suppression_list": "marts.suppression_list",
    "subscriber_eligibility": "marts.subscriber_eligibility",
    "subscriber_profiles": "marts.subscriber_profiles",
    "training_examples": "marts.training_examples",
    "scoring_features": "marts.scoring_features",
    "quarantine_rows": "quality.quarantine_rows",
    "landing_reconciliation": "quality.landing_reconciliation",
    "hillstrom_arm_outcomes": "experiments.hillstrom_arm_outcomes",
}


@dg.multi_asset_check(
    specs=[gx_check_spec(dg.AssetKey(model), model) for model in MART_RELATIONS],
    can_subset=True,
    name="mart_expectations",
)
def mart_expectations(
    context: dg.AssetCheckExecutionContext, settings: PipelineSettings
):
    warehouse = settings.warehouse()
    docs_dir = settings.reports_path() / "data_docs"
    for check_key in context.selected_asset_check_keys:
        model = check_key.asset_key.path[-1]
        frame = warehouse.read_table(MART_RELATIONS[model])
        yield run_gx_check(frame, table=model, asset_key=check_key.asset_key, docs_dir=docs_dir)
