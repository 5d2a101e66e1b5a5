"""Every warehouse table the Python assets read or write, named once.

The dbt-built ones are checked against the dbt manifest by tests/test_definitions.py.
"""

# Built by dbt.
SUBSCRIBER_PROFILES = "marts.subscriber_profiles"
SUBSCRIBER_ELIGIBILITY = "marts.subscriber_eligibility"
SUBSCRIBER_CONTACT_POLICY = "marts.subscriber_contact_policy"
SUBSCRIBER_IDENTITY_CROSSWALK = "marts.subscriber_identity_crosswalk"
TRAINING_EXAMPLES = "marts.training_examples"
SCORING_FEATURES = "marts.scoring_features"
# Which product category fills each of the models' category slots (logged with each model).
CATEGORY_SLOTS = "marts.category_slots"
FCT_SENDS = "marts.fct_sends"
FCT_EMAIL_EVENTS = "marts.fct_email_events"
FCT_ORDERS = "marts.fct_orders"
FCT_SEND_OUTCOMES = "marts.fct_send_outcomes"
CONSENT_RECORDS_UNTIED = "quality.consent_records_untied"
LANDING_RECONCILIATION = "quality.landing_reconciliation"
DBT_TABLES = (
    SUBSCRIBER_PROFILES,
    SUBSCRIBER_ELIGIBILITY,
    SUBSCRIBER_CONTACT_POLICY,
    SUBSCRIBER_IDENTITY_CROSSWALK,
    TRAINING_EXAMPLES,
    SCORING_FEATURES,
    CATEGORY_SLOTS,
    FCT_SENDS,
    FCT_EMAIL_EVENTS,
    FCT_ORDERS,
    FCT_SEND_OUTCOMES,
    CONSENT_RECORDS_UNTIED,
    LANDING_RECONCILIATION,
)

# Written by the Python assets, in schema `ml`.
SUBJECT_LINE_VARIANTS = "ml.subject_line_variants"
# Every approval move of a copy variant (proposed -> approved/rejected, approved -> retired),
# append-only, with reviewer, time and reason (ml/copy/approval.py).
COPY_VARIANT_APPROVALS = "ml.copy_variant_approvals"
PROPENSITY_SCORES = "ml.propensity_scores"
EXPERIMENT_ASSIGNMENTS = "ml.experiment_assignments"
PLANNED_SENDS = "ml.planned_sends"
# Products per person per day (orchestration/defs/recommendations.py).
PRODUCT_RECOMMENDATIONS = "ml.product_recommendations"
# Each person's estimated uplift of an email per day, and whether the uplift model decides
# (orchestration/defs/uplift.py).
UPLIFT_ESTIMATES = "ml.uplift_estimates"
# The experiment's declared decision rule, applied each day: ship, stop or keep running per arm
# (orchestration/defs/campaign.py experiment_report); a stopped arm gets control's copy.
EXPERIMENT_VERDICTS = "ml.experiment_verdicts"
# Why each person was or was not emailed on a send day: one row per person per day
# (ml.decisioning.send_plan.DECISION_COLUMNS). The table auditors query.
SEND_DECISIONS = "ml.send_decisions"
# The Dagster run that wrote each row, on the tables an auditor follows back to a run
# (PROPENSITY_SCORES, PLANNED_SENDS, SEND_DECISIONS): Warehouse.replace_day(run_id=...) adds it.
RUN_ID_COLUMN_TYPES = {"dagster_run_id": "varchar"}
# The moment the warehouse is built as of: one row, written before each dbt build and read
# by dbt's as_of() macro (dbt var as_of_relation).
WAREHOUSE_AS_OF = "ml.warehouse_as_of"
# Every promotion gate decision and rollback, one row each (ml.propensity.promotion.PromotionRecord).
MODEL_PROMOTIONS = "ml.model_promotions"
# A bandit campaign's weights and posteriors per day: one row per bandit arm and allocation day
# (ml.experiments.bandit.ALLOCATION_COLUMN_TYPES), written by experiment_assignments.
BANDIT_ALLOCATIONS = "ml.bandit_allocations"
# What a bandit's day counted from its landed outcomes, once, for its allocation and its report:
# one row per reading day, metric, window, send day and arm
# (ml.experiments.bandit_readout.REWARD_COUNT_COLUMN_TYPES), written by experiment_assignments.
BANDIT_REWARD_COUNTS = "ml.bandit_reward_counts"
