"""The landing files of docs/data_contract.md as the simulator writes them."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ml.landing import contract as landing_contract

# The optional columns the simulated shop exports: every subscriber's time zone, the CRM's
# audit columns (birth year, gender), and one row per order with its amount (no order lines).
SIMULATED_OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "crm_subscribers": ("timezone", "birth_year", "gender"),
    "esp_subscribers": ("timezone",),
    "orders": ("amount",),
}

# File name -> columns, from the one contract definition in ml/landing/contract.py.
LANDING_COLUMNS: dict[str, tuple[str, ...]] = {
    f"{table}.parquet": columns + SIMULATED_OPTIONAL_COLUMNS.get(table, ())
    for table, columns in landing_contract.LANDING_COLUMNS.items()
}

MANIFEST_FILE = "_manifest.json"
DROPS_DIR = landing_contract.DROPS_DIR  # daily drops: <landing>/drops/<YYYY-MM-DD>/<table>.parquet

# Everything is a string except the catalogue price: raw exports must be able to carry garbage.
LANDING_SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema([(c, pa.float64() if (name, c) == ("products.parquet", "price") else pa.string()) for c in cols])
    for name, cols in LANDING_COLUMNS.items()
}

CONSENT_SOURCES = ("signup_form", "double_opt_in", "preference_center", "support_request", "legal_request")


@dataclass(frozen=True)
class CorruptibleFile:
    """Which reason codes can be injected into a landing file, and into which columns."""

    name: str
    key: str | None
    timestamp: str
    subscriber: str | None
    # Columns whose null/blank value the contract calls missing_required_field.
    required: tuple[str, ...]
    kinds: tuple[str, ...]
    # How an `unknown_subscriber` row is made: "phantom" ids belong to nobody; "case" lower-
    # cases the real id, so a fail-closed pipeline can still tie the row to its person.
    # Consent files use "case": a revocation tied to nobody stops the run by design
    # (quality.consent_records_untied), which the demo is not meant to show every day.
    unknown_subscriber_style: str = "phantom"
    # Whether `missing_required_field` may blank the row's own key. Not in the subscriber
    # files: a subscriber row without its id leaves that person's unsubscribes and complaints
    # tied to nobody, which stops the run by design (quality.consent_records_untied). At the
    # default rates a 100,000-person world held 12 such revocations and could never run.
    may_blank_key: bool = True

    @property
    def blankable(self) -> tuple[str, ...]:
        """The required columns `missing_required_field` may blank."""
        return tuple(column for column in self.required if self.may_blank_key or column != self.key)


_SUBSCRIBER_KINDS = (
    "missing_required_field", "invalid_email", "unparseable_timestamp", "future_timestamp", "invalid_timezone",
)
_EVENT_KINDS = ("missing_required_field", "unparseable_timestamp", "future_timestamp")
_TAIL = ("unknown_subscriber",)
_DUPLICATES = ("duplicate_event_id", "exact_duplicate")

CORRUPTIBLE_FILES: dict[str, CorruptibleFile] = {
    f.name: f
    for f in (
        CorruptibleFile(
            # A blank CRM email is no issue in contract v2 (the record is keyed by its id).
            "crm_subscribers.parquet", "crm_id", "signup_at", None, ("crm_id", "signup_at"), _SUBSCRIBER_KINDS,
            may_blank_key=False,
        ),
        CorruptibleFile(
            "esp_subscribers.parquet", "esp_id", "created_at", None, ("esp_id", "email", "created_at"),
            _SUBSCRIBER_KINDS, may_blank_key=False,
        ),
        CorruptibleFile(
            # A blank subscriber id would tie a revocation to nobody: see unknown_subscriber_style.
            "consent_events.parquet", "consent_event_id", "recorded_at", "source_subscriber_id",
            ("consent_event_id", "recorded_at"),
            _EVENT_KINDS + ("unknown_consent_status",) + _TAIL + _DUPLICATES,
            unknown_subscriber_style="case",
        ),
        CorruptibleFile(
            "suppressions.parquet", "suppression_id", "suppressed_at", "source_subscriber_id",
            ("suppression_id", "suppressed_at"),
            _EVENT_KINDS + _TAIL + _DUPLICATES,
            unknown_subscriber_style="case",
        ),
        CorruptibleFile(
            "sends.parquet", "send_id", "sent_at", "esp_id", ("send_id", "esp_id", "sent_at"),
            _EVENT_KINDS + _TAIL + _DUPLICATES,
        ),
        CorruptibleFile(
            "email_events.parquet", "event_id", "occurred_at", "esp_id", ("event_id", "esp_id", "occurred_at"),
            _EVENT_KINDS + ("unknown_event_type",) + _TAIL + ("before_signup",) + _DUPLICATES,
        ),
        CorruptibleFile(
            "orders.parquet", "order_id", "ordered_at", "crm_id", ("order_id", "crm_id", "ordered_at"),
            _EVENT_KINDS + ("invalid_amount", "unknown_currency") + _TAIL + ("before_signup",) + _DUPLICATES,
        ),
    )
}
