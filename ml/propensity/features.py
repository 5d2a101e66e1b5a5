"""The feature contract shared by the dbt feature marts and the models.

`training_examples` and `scoring_features` (dbt marts) both carry exactly these columns,
computed by one dbt macro, so a model trained on one can score the other.
"""

from ml import vocabulary

ID_COLUMNS = ("subscriber_key", "cutoff_at")

NUMERIC_FEATURES = (
    "tenure_days",
    "consent_age_days",
    "orders_total",
    "monetary_total",
    "orders_90d",
    "monetary_90d",
    "days_since_last_order",
    "sends_7d",
    "sends_30d",
    "sends_90d",
    "opens_7d",
    "opens_30d",
    "opens_90d",
    "clicks_7d",
    "clicks_30d",
    "clicks_90d",
    "open_rate_30d",
    "click_rate_30d",
    "open_rate_90d",
    "click_rate_90d",
    "days_since_last_open",
    "days_since_last_click",
    "preferred_send_hour",
    "fatigue_score",
)

CATEGORICAL_FEATURES = ("top_category",)

FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES

LABEL_COLUMNS = ("label_purchase_14d", "label_click_7d", "label_churn_60d")

PURCHASE_LABEL = "label_purchase_14d"

# Known categories, so encodings are stable between training and scoring.
PRODUCT_CATEGORIES = vocabulary.PRODUCT_CATEGORIES
