"""The subscriber models, declared once: what each predicts, from what, and what it must pass.

Everything that differs between the models lives here; one training function, one asset
factory (orchestration/defs/models.py), one promotion gate and one model card template
serve them all. Add a model by adding a spec (and its label column in training_examples).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml.propensity.features import FEATURE_COLUMNS, LABEL_COLUMNS, SEGMENT_COLUMNS
from ml.propensity.promotion import GateCriteria


@dataclass(frozen=True)
class TrainingParams:
    """LightGBM settings. Defaults train ~120k rows x 25 features in seconds on 2 cores."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 100
    colsample_bytree: float = 0.9
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 20
    # Share of training subscribers (all their cutoffs) held back to pick the number of trees.
    validation_fraction: float = 0.2
    seed: int = 0
    n_jobs: int = 2

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError("n_estimators must be at least 1")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be between 0 and 1")
        if self.early_stopping_rounds < 1:
            raise ValueError("early_stopping_rounds must be at least 1")

    def classifier_kwargs(self) -> dict:
        """Keyword arguments for `lightgbm.LGBMClassifier`, fixed for reproducible fits."""
        return {
            "objective": "binary",
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "random_state": self.seed,
            "n_jobs": self.n_jobs,
            # Same data + same seed -> same trees, on any run.
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }


@dataclass(frozen=True)
class ModelSpec:
    """One model: its target, label, horizon, features, gate and the words its card uses.

    key: short name ("purchase"); the Dagster asset is ``asset_name``, the MLflow registered
        model ``registered_model_name`` and its runs go to the experiment ``experiment_name``.
    label: the 0/1 column of marts.training_examples; ``horizon_days`` is its window after
        the cutoff, used to purge training rows whose window reaches the test cutoff.
    """

    key: str
    asset_name: str
    registered_model_name: str
    experiment_name: str
    label: str
    horizon_days: int
    target: str
    intended_use: str
    out_of_scope: tuple[str, ...]
    features: tuple[str, ...] = FEATURE_COLUMNS
    segments: tuple[str, ...] = SEGMENT_COLUMNS
    params: TrainingParams = field(default_factory=TrainingParams)
    gate: GateCriteria = field(default_factory=GateCriteria)
    caveats: tuple[str, ...] = ()
    # What the label is made of, said when it has no variation (LabelHasOneClass).
    label_source: str = ""

    def __post_init__(self) -> None:
        if self.label not in LABEL_COLUMNS:
            raise ValueError(f"model {self.key!r}: unknown label {self.label!r}; expected one of {list(LABEL_COLUMNS)}")
        if self.horizon_days < 1:
            raise ValueError(f"model {self.key!r}: horizon_days must be at least 1")
        unknown = sorted(set(self.features) - set(FEATURE_COLUMNS))
        if unknown:
            raise ValueError(f"model {self.key!r}: features {unknown} are not in the feature contract")


_COMMON_OUT_OF_SCOPE = (
    "Deciding anything about a person who has not consented: eligibility (consent, "
    "suppression, erasure) is decided before scoring and is never overridden by a score.",
    "Credit, employment, insurance, pricing or any decision with legal or similarly "
    "significant effects on a person.",
    "Scoring people outside the shop's own subscriber base, or data from another shop, "
    "without retraining and a new gate decision.",
)

_COMMON_CAVEATS = (
    "Trained on the shop's own history; a change in campaigns, catalogue or audience shifts "
    "the scores (daily drift checks watch for it).",
    "A propensity is not the effect of an email: people likely to buy anyway score high. "
    "Targeting by score is not targeting by uplift.",
)

PURCHASE = ModelSpec(
    key="purchase",
    asset_name="purchase_propensity_model",
    registered_model_name="purchase_propensity",
    experiment_name="purchase-propensity",
    label="label_purchase_14d",
    horizon_days=14,
    target="Probability that the subscriber places an order within 14 days of the cutoff.",
    intended_use=(
        "Rank consented, eligible subscribers for the daily campaign: the top share by score "
        "is emailed, beside a random control and the persistent holdout."
    ),
    out_of_scope=_COMMON_OUT_OF_SCOPE,
    caveats=_COMMON_CAVEATS,
)

CLICK = ModelSpec(
    key="click",
    asset_name="click_propensity_model",
    registered_model_name="click_propensity",
    experiment_name="click-propensity",
    label="label_click_7d",
    horizon_days=7,
    target="Probability that the subscriber clicks an email within 7 days of the cutoff.",
    intended_use="Engagement forecasting and send-volume planning; an input to content and send-time decisions.",
    out_of_scope=_COMMON_OUT_OF_SCOPE,
    caveats=_COMMON_CAVEATS + (
        "A click needs a send: people the shop did not email in the window have label 0 "
        "whatever their interest.",
    ),
    label_source=(
        "Clicks come from the ESP's email events (email_events.parquet); a folder without an ESP export "
        "has none (docs/connectors.md, esp-events)"
    ),
)

CHURN = ModelSpec(
    key="churn",
    asset_name="churn_risk_model",
    registered_model_name="churn_risk",
    experiment_name="churn-risk",
    label="label_churn_28d",
    horizon_days=28,
    target=(
        "Probability that the subscriber churns, defined as inactivity: no open, click or "
        "order in the 28 days after the cutoff."
    ),
    intended_use="Flag subscribers at risk of lapsing for win-back content and for frequency back-off.",
    out_of_scope=_COMMON_OUT_OF_SCOPE + (
        "Reading churn as an unsubscribe: unsubscribes are consent events, handled by "
        "eligibility, not predicted here.",
    ),
    caveats=_COMMON_CAVEATS + (
        "Inactivity partly reflects how often the shop emailed: fewer sends mean fewer "
        "chances to open, so the label mixes the person's and the shop's behaviour.",
    ),
)

MODEL_SPECS: tuple[ModelSpec, ...] = (PURCHASE, CLICK, CHURN)


def spec_by_key(key: str) -> ModelSpec:
    for spec in MODEL_SPECS:
        if spec.key == key:
            return spec
    raise ValueError(f"unknown model {key!r}; expected one of {[spec.key for spec in MODEL_SPECS]}")
