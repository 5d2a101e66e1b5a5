"""Landing files (and drops) so broken that the run must stop before any mart is built.

One row per systemic breakage: a file, over all its batches or in one large enough batch,
with more than `max_quarantine_share` of its rows quarantined. The judgement is
ml.landing.health's, the one the tests of that module pin; this model only counts the
verdicts of every `int_*_classified` model for it (tests/test_definitions.py checks that
every one is read here). The test `has_no_rows` on this model fails the build, and every mart
depends on this model, so dbt skips them all. Each row's `message` names the file, the share,
the dominant reason and the shape of an offending row: never a raw value.
"""

import pandas as pd

from ml.landing.health import breakage_rows


def model(dbt, session):
    dbt.config(materialized="table")
    # One literal ref per classified model: dbt reads a Python model's refs from its text.
    classified = [
        dbt.ref("int_campaigns_classified"),
        dbt.ref("int_consent_events_classified"),
        dbt.ref("int_crm_subscribers_classified"),
        dbt.ref("int_email_events_classified"),
        dbt.ref("int_esp_subscribers_classified"),
        dbt.ref("int_orders_classified"),
        dbt.ref("int_products_classified"),
        dbt.ref("int_sends_classified"),
        dbt.ref("int_suppressions_classified"),
    ]
    per_reason = pd.concat(
        [
            relation.aggregate(
                "source_file, landing_batch, reason_code, count(*) as rows, "
                "cast(any_value(raw_values) as varchar) as example_raw_values",
                "source_file, landing_batch, reason_code",
            ).df()
            for relation in classified
        ],
        ignore_index=True,
    )
    return breakage_rows(per_reason, float(dbt.config.get("max_quarantine_share")))
