"""Parameters of the synthetic audience and of the dirty data injected into it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from ml.vocabulary import REASON_CODES

# Reason codes the simulator injects, in the contract's precedence order: all of them but
# value_too_long (raw exports of this shop never carry over-long values).
CORRUPTION_KINDS = tuple(code for code in REASON_CODES if code != "value_too_long")

# Ids are letter + 8 digits, so at most 10^8 ids per system; half is kept free for the
# "unknown subscriber" ids that must not belong to anybody.
MAX_PEOPLE = 10_000_000
MAX_DAYS = 1_000


@dataclass(frozen=True)
class DirtyDataConfig:
    """Share of rows corrupted with each reason code, in every landing file it applies to.

    Each corrupted row gets exactly one kind. `duplicate_event_id` and `exact_duplicate` add
    a copy of the chosen row later in the file instead of changing the row itself.

    The defaults keep every file under the pipeline's systemic-breakage threshold (5% of a
    file quarantined, PipelineSettings.max_quarantine_share), cascades included: rows of a
    quarantined subscriber are quarantined too.
    """

    missing_required_field: float = 0.002
    invalid_email: float = 0.003
    unparseable_timestamp: float = 0.002
    future_timestamp: float = 0.002
    invalid_timezone: float = 0.002
    unknown_consent_status: float = 0.003
    unknown_event_type: float = 0.002
    invalid_amount: float = 0.004
    unknown_currency: float = 0.003
    unknown_subscriber: float = 0.002
    before_signup: float = 0.002
    duplicate_event_id: float = 0.002
    exact_duplicate: float = 0.004

    def __post_init__(self) -> None:
        for kind in CORRUPTION_KINDS:
            rate = getattr(self, kind)
            if not 0.0 <= rate <= 0.1:
                raise ValueError(f"dirty rate {kind}={rate} must be between 0 and 0.1")

    @classmethod
    def clean(cls) -> DirtyDataConfig:
        """No corruption at all."""
        return cls(**{kind: 0.0 for kind in CORRUPTION_KINDS})

    @classmethod
    def uniform(cls, rate: float) -> DirtyDataConfig:
        """The same rate for every kind (handy for tests on tiny audiences)."""
        return cls(**{kind: rate for kind in CORRUPTION_KINDS})

    def rate(self, kind: str) -> float:
        return float(getattr(self, kind))

    @property
    def is_clean(self) -> bool:
        return all(self.rate(kind) == 0.0 for kind in CORRUPTION_KINDS)


@dataclass(frozen=True)
class ScriptedShift:
    """A documented change of the world on a known live day, so that drift and model decay
    really happen and the oracle knows when and what.

    From live day ``live_day`` on (1 is the first day after the history), people whose top
    category is ``category`` open e-mails ``responsiveness_factor`` times as often and buy
    ``demand_factor`` times as often: that segment's interest has moved elsewhere.
    """

    live_day: int = 4
    category: str = "electronics"
    responsiveness_factor: float = 0.5
    demand_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.live_day < 1:
            raise ValueError("the shift's live_day must be 1 or later (1 is the first live day)")
        if self.responsiveness_factor < 0 or self.demand_factor < 0:
            raise ValueError("the shift's factors must not be negative")

    def applies(self, live_day: int) -> bool:
        return live_day >= self.live_day


@dataclass(frozen=True)
class AudienceConfig:
    """Size, time window, identity overlap and seed of the generated audience.

    `end` is the export moment (`extracted_at` in the manifest); naive datetimes are UTC.
    Every event happens in the `days` before it; most people signed up earlier.
    """

    n_people: int = 20_000
    days: int = 120
    end: datetime = datetime(2026, 6, 30)
    seed: int = 42
    chunk_size: int = 25_000
    # Who is known to which system; the rest of the people are in the ESP only.
    share_in_both: float = 0.70
    share_crm_only: float = 0.15
    # How often a system's copy of the e-mail differs from the canonical one in case or spaces.
    esp_email_variation: float = 0.40
    crm_email_variation: float = 0.10
    # Share of people who sign up inside the window (new subscribers); the rest signed up
    # during `history_days` before it.
    signup_in_window_share: float = 0.20
    history_days: int = 3 * 365
    campaign_every_days: float = 2.0
    campaign_audience_share: tuple[float, float] = (0.5, 0.7)
    dirty: DirtyDataConfig = field(default_factory=DirtyDataConfig)
    shift: ScriptedShift = field(default_factory=ScriptedShift)

    def __post_init__(self) -> None:
        if not 1 <= self.n_people <= MAX_PEOPLE:
            raise ValueError(f"n_people must be between 1 and {MAX_PEOPLE:,}")
        if not 1 <= self.days <= MAX_DAYS:
            raise ValueError(f"days must be between 1 and {MAX_DAYS}")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        shares = (self.share_in_both, self.share_crm_only, self.esp_email_variation,
                  self.crm_email_variation, self.signup_in_window_share)
        if any(not 0.0 <= s <= 1.0 for s in shares):
            raise ValueError("shares must be between 0 and 1")
        if self.share_in_both + self.share_crm_only > 1.0:
            raise ValueError("share_in_both + share_crm_only must not exceed 1")
        low, high = self.campaign_audience_share
        if not 0.0 < low <= high <= 1.0:
            raise ValueError("campaign_audience_share must be (low, high) with 0 < low <= high <= 1")
        if self.campaign_every_days <= 0 or self.history_days < 0:
            raise ValueError("campaign_every_days must be positive and history_days not negative")
        if self.end.tzinfo is not None:
            object.__setattr__(self, "end", self.end.astimezone(UTC).replace(tzinfo=None))

    @property
    def share_esp_only(self) -> float:
        return 1.0 - self.share_in_both - self.share_crm_only

    def as_manifest(self) -> dict[str, Any]:
        """JSON-friendly parameters, written to `_manifest.json` as `generator`."""
        params = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("dirty", "shift")}
        params["end"] = self.end.strftime("%Y-%m-%d %H:%M:%S")
        params["campaign_audience_share"] = list(self.campaign_audience_share)
        params["dirty"] = asdict(self.dirty)
        params["shift"] = asdict(self.shift)
        return params

    @classmethod
    def from_manifest(cls, params: dict[str, Any]) -> AudienceConfig:
        """The config that `as_manifest` wrote (the world re-draws its people from it)."""
        params = dict(params)
        params["end"] = datetime.fromisoformat(params["end"])
        params["campaign_audience_share"] = tuple(params["campaign_audience_share"])
        params["dirty"] = DirtyDataConfig(**params["dirty"])
        params["shift"] = ScriptedShift(**params.get("shift", {}))
        return cls(**params)
