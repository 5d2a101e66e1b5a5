"""The project's closed vocabularies, for Python: one definition each.

SQL reads the same lists from the vars in dbt_project/dbt_project.yml, and the Great
Expectations suites hold them as value sets; tests/test_one_source.py proves that every
copy equals these (dbt cannot import Python, and a GX suite is a JSON file).
"""

from __future__ import annotations

# Quarantine reason codes in priority order: a row with several problems gets the first.
REASON_CODES = (
    "value_too_long",
    "missing_required_field",
    "invalid_email",
    "unparseable_timestamp",
    "future_timestamp",
    "invalid_timezone",
    "unknown_consent_status",
    "unknown_event_type",
    "invalid_amount",
    "unknown_currency",
    "unknown_subscriber",
    "before_signup",
    "duplicate_event_id",
    "exact_duplicate",
)

# Why a person may not be emailed, in priority order.
EXCLUSION_REASONS = (
    "erased",
    "suppressed_legal_request",
    "suppressed_complaint",
    "suppressed_hard_bounce",
    "unsubscribed",
    "consent_record_quarantined",
    "no_consent_record",
)

# Why a consented person is not emailed on a day, in order (marts.subscriber_contact_policy).
CONTACT_EXCLUSION_REASONS = ("frequency_cap", "minimum_gap", "fatigue_backoff")

CONSENT_STATUSES = ("subscribed", "unsubscribed", "erased")
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "legal_request")
EMAIL_EVENT_TYPES = ("delivered", "open", "click", "bounce", "unsubscribe", "complaint")
# The ones that revoke consent (dbt's var revocation_event_type_fragments matches exactly these).
REVOKING_EMAIL_EVENT_TYPES = ("bounce", "unsubscribe", "complaint")
CURRENCIES = ("USD", "EUR", "GBP")

# How a return line found the order it is netted against (marts.fct_order_returns.matched_by),
# in the order they are tried (docs/data_contract.md, order lines and returns).
RETURN_MATCHES = ("returns_order_id", "same_order", "latest_order_with_product")
# The simulated shop's product categories, which the approved copy blocks are written for
# (data/copy). Not a closed list of the landing contract: a shop's products may carry any
# category; the models see them through the category slots below.
SIMULATOR_CATEGORIES = ("apparel", "beauty", "electronics", "home", "outdoor", "toys")
# The models' category features are generic slots (docs/data_contract.md, "Product
# categories"): marts.category_slots maps every product category to one of
# CATEGORY_SLOT_COUNT slots, by the optional mapping file in the landing folder, else by
# revenue rank (the top CATEGORY_SLOT_COUNT categories); every other category goes to
# OTHER_CATEGORY_SLOT, never dropped. Six slots: the simulator's six categories map one to one.
CATEGORY_SLOT_COUNT = 6
CATEGORY_SLOTS = tuple(f"category_slot_{n}" for n in range(1, CATEGORY_SLOT_COUNT + 1))
OTHER_CATEGORY_SLOT = "category_other"
# The label of the other bucket in marts.category_slots.slot_label and subscriber_profiles.top_category.
OTHER_CATEGORY_LABEL = "other"
# How marts.category_slots filled the slots: from the mapping file, or by revenue rank.
CATEGORY_SLOT_SOURCES = ("mapping_file", "top_revenue")
# The category the order-lines connector gives products without one: never ranked for a slot
# (it says nothing about taste), so it falls in the other bucket.
UNCATEGORISED = "uncategorised"
# Where a person is in their relationship with the shop (marts.subscriber_profiles).
LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed", "never_engaged")
# Audit attributes (marts.subscriber_profiles): used only to audit model decisions per
# group (fairlearn), never as model features or in prompts. 'unknown' when not exported.
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")
GENDERS = ("female", "male", "non_binary", "not_stated", "unknown")
# Tenure bands (days since first signup) that evaluations break results down by.
TENURE_BANDS = ("0-89d", "90-364d", "365-729d", "730d+")
SOURCE_SYSTEMS = ("crm", "esp")
# What produced a product recommendation: collaborative filtering on the person's purchases,
# or the popularity fallback for people with too little history (ml/decisioning/recommendations.py).
RECOMMENDATION_SOURCES = ("collaborative", "popularity")
# What an experiment's declared decision rule says on a day (ml/experiments/decision.py).
EXPERIMENT_VERDICTS = ("ship", "stop", "keep_running")
# Days after a send in which a purchase is attributed to it (marts, the simulator's oracle).
ATTRIBUTION_WINDOW_DAYS = 14
