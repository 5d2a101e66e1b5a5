"""ESP event exports (one row per recipient, campaign, event type and time) to contract v2.

What is derived: the ESP contacts (one per recipient, case and surrounding space ignored),
the campaigns, one send per recipient and campaign, and the email events with their types
mapped to the contract's. Ids are sequences in order of first appearance, never derived
from an email (a hash of an email links back to it). What is never invented: consent
(being mailed is not consent), subject lines, names (docs/connectors.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.connectors.exports import ExportColumn, normalised_type, read_export, read_timestamps, require_columns
from ml.connectors.landing_writer import empty_frame, write_into_existing_folder, write_new_landing_folder
from ml.connectors.order_lines import Conversion

# The contract's event type of each common spelling, after normalisation (lower case,
# spaces and hyphens as '_'). None: the row is a real ESP event the contract has no type
# for, so it writes no event (a send still exists). Any other type is written as the export
# has it, and the pipeline quarantines it as unknown_event_type.
EVENT_TYPE_SPELLINGS: dict[str, str | None] = {
    **dict.fromkeys(["delivered", "delivery", "deliver"], "delivered"),
    **dict.fromkeys(["open", "opened", "opens", "unique_open", "email_opened"], "open"),
    **dict.fromkeys(["click", "clicked", "clicks", "unique_click", "link_click", "email_clicked"], "click"),
    **dict.fromkeys(["bounce", "bounced", "hard_bounce", "hardbounce", "hard_bounced", "email_bounced"], "bounce"),
    **dict.fromkeys(
        ["unsubscribe", "unsubscribed", "unsub", "opt_out", "optout", "opted_out", "group_unsubscribe", "email_unsubscribed"],
        "unsubscribe",
    ),
    **dict.fromkeys(["complaint", "complained", "spamreport", "spam_report", "spam", "spam_complaint", "abuse", "email_marked_as_spam"], "complaint"),
    # A soft bounce is not the contract's bounce (a hard bounce, which suppresses the person).
    **dict.fromkeys(["sent", "send", "processed", "deferred", "soft_bounce", "softbounce", "soft_bounced"], None),
}

# Types whose time is the send's time.
_SEND_TIME_TYPES = {"sent", "send", "processed", "delivered", "delivery", "deliver"}

ID_DIGITS = 7

NO_CONSENT_NOTE = (
    "no consent: being mailed is not consent, so consent_events stays empty and nobody is eligible "
    "to be emailed until your ESP's subscription (opt-in) export is landed as consent_events "
    "(docs/data_contract.md); unsubscribe and complaint events are revocations and are kept"
)

ESP_TABLES = ("esp_subscribers", "campaigns", "sends", "email_events")
OTHER_TABLES = ("crm_subscribers", "consent_events", "suppressions", "products", "orders")


@dataclass(frozen=True)
class EspEventsColumns:
    recipient: str = "email"
    campaign: str = "campaign"
    event_type: str = "event"
    timestamp: str = "timestamp"

    def wanted(self) -> list[ExportColumn]:
        return [
            ExportColumn("recipient email", self.recipient, "--recipient-column"),
            ExportColumn("campaign", self.campaign, "--campaign-column"),
            ExportColumn("event type", self.event_type, "--event-column"),
            ExportColumn("timestamp", self.timestamp, "--timestamp-column"),
        ]


@dataclass(frozen=True)
class EspEventsOptions:
    timezone: str = "UTC"
    date_format: str | None = None


def sequence_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{number:0{ID_DIGITS}d}" for number in range(1, count + 1)]


def contract_event_type(raw: str) -> str | None:
    """The contract's type for an export's event type (None: no event); an unknown type as written."""
    return EVENT_TYPE_SPELLINGS.get(normalised_type(raw), raw)


def convert_esp_events(
    export: pd.DataFrame,
    *,
    source: Path,
    columns: EspEventsColumns = EspEventsColumns(),
    options: EspEventsOptions = EspEventsOptions(),
) -> Conversion:
    """Convert an ESP event export (every column text) to the ESP's contract tables."""
    require_columns(export, source, columns.wanted())
    times = read_timestamps(
        export[columns.timestamp], path=source, column=columns.timestamp, zone_name=options.timezone, date_format=options.date_format
    )
    rows = pd.DataFrame(
        {
            "email": export[columns.recipient],
            # The same contact whatever the case or surrounding space, as the pipeline matches emails.
            "recipient": export[columns.recipient].str.strip().str.lower(),
            "campaign": export[columns.campaign].str.strip(),
            "raw_type": export[columns.event_type],
            "event_type": export[columns.event_type].map(contract_event_type),
            "at": times.text,
            "instant": times.instants,
        }
    ).reset_index(drop=True)

    recipients = rows.loc[rows["recipient"] != "", "recipient"].drop_duplicates()
    esp_id = dict(zip(recipients, sequence_ids("E", len(recipients))))
    campaigns = rows.loc[rows["campaign"] != "", "campaign"].drop_duplicates()
    campaign_id = dict(zip(campaigns, sequence_ids("K", len(campaigns))))
    rows["esp_id"] = rows["recipient"].map(esp_id).fillna("")
    rows["campaign_id"] = rows["campaign"].map(campaign_id).fillna("")
    pairs = rows.loc[rows["esp_id"] != "", ["esp_id", "campaign_id"]].drop_duplicates()
    send_id = dict(zip(map(tuple, pairs.to_numpy()), sequence_ids("S", len(pairs))))
    rows["send_id"] = [send_id.get((esp, campaign), "") for esp, campaign in zip(rows["esp_id"], rows["campaign_id"])]

    subscribers = pd.DataFrame(
        {
            "esp_id": [esp_id[recipient] for recipient in recipients],
            "email": rows.loc[recipients.index, "email"].to_list(),
            "first_name": "",
            "created_at": recipients.map(_earliest_by(rows, "recipient")).fillna("").to_list(),
        }
    )
    campaign_table = pd.DataFrame(
        {
            "campaign_id": [campaign_id[name] for name in campaigns],
            "campaign_name": list(campaigns),
            "category": "general",
            "subject_line": "",
            "launched_at": campaigns.map(_earliest_by(rows, "campaign")).fillna("").to_list(),
        }
    )
    sends = pd.DataFrame(
        {
            "send_id": list(send_id.values()),
            "campaign_id": [campaign for _, campaign in send_id],
            "esp_id": [esp for esp, _ in send_id],
            "sent_at": _send_times(rows, list(send_id.values())),
        }
    )
    written = rows[rows["event_type"].notna()]
    events = pd.DataFrame(
        {
            "event_id": sequence_ids("EV", len(written)),
            "send_id": written["send_id"].to_list(),
            "esp_id": written["esp_id"].to_list(),
            "event_type": written["event_type"].to_list(),
            "occurred_at": written["at"].to_list(),
        }
    )
    unknown = written[~written["event_type"].isin(set(filter(None, EVENT_TYPE_SPELLINGS.values())))]
    known = times.instants.dropna()
    report = {
        "input": str(source),
        "rows_read": len(export),
        "subscribers": len(subscribers),
        "campaigns": len(campaign_table),
        "sends": len(sends),
        "events_written": len(events),
        "events_by_type": {kind: int(n) for kind, n in written["event_type"].value_counts().sort_index().items()},
        # Rows of types the contract has no event for (sent, deferred, soft bounces): no event.
        "rows_without_contract_event": {
            kind: int(n) for kind, n in rows.loc[rows["event_type"].isna(), "raw_type"].value_counts().sort_index().items()
        },
        # Written as the export has them; the pipeline quarantines them as unknown_event_type.
        "unknown_event_types": {kind: int(n) for kind, n in unknown["raw_type"].value_counts().sort_index().items()},
        "rows_without_recipient": int((rows["recipient"] == "").sum()),
        "rows_without_campaign": int((rows["campaign"] == "").sum()),
        "rows_without_timestamp": int((rows["at"] == "").sum()),
        "first_timestamp": rows.loc[times.instants == known.min(), "at"].iloc[0] if len(known) else None,
        "last_timestamp": rows.loc[times.instants == known.max(), "at"].iloc[0] if len(known) else None,
        "ambiguous_clock_times": times.ambiguous,
        "nonexistent_clock_times": times.nonexistent,
        "timezone": options.timezone,
        "note": NO_CONSENT_NOTE,
    }
    tables = {"esp_subscribers": subscribers, "campaigns": campaign_table, "sends": sends, "email_events": events}
    return Conversion(tables=tables, report=report)


def _earliest_by(rows: pd.DataFrame, key: str) -> dict[str, str]:
    """The timestamp text of each `key`'s earliest row (the first in the export on a tie);
    a key none of whose rows has a timestamp is left out."""
    timed = rows[rows["instant"].notna() & (rows[key] != "")]
    earliest = timed.loc[timed.groupby(key, sort=False)["instant"].idxmin()]
    return dict(zip(earliest[key], earliest["at"]))


def _send_times(rows: pd.DataFrame, send_ids: list[str]) -> list[str]:
    """Each send's time: its earliest sent or delivered event, else its earliest event."""
    sent_or_delivered = rows[rows["raw_type"].map(normalised_type).isin(_SEND_TIME_TYPES)]
    sent_at = _earliest_by(sent_or_delivered, "send_id")
    any_event_at = _earliest_by(rows, "send_id")
    return [sent_at.get(send, any_event_at.get(send, "")) for send in send_ids]


def convert_esp_events_file(
    input_path: Path,
    output_dir: Path,
    *,
    into_existing: bool = False,
    columns: EspEventsColumns = EspEventsColumns(),
    options: EspEventsOptions = EspEventsOptions(),
    encoding: str = "utf-8-sig",
) -> dict:
    """Read the export at `input_path` (never changed) and write the ESP files: into a new
    landing folder `output_dir` (with the other contract files empty), or, `into_existing`,
    next to an order-lines conversion there. Return the report."""
    export = read_export(Path(input_path), encoding=encoding)
    conversion = convert_esp_events(export, source=Path(input_path), columns=columns, options=options)
    if into_existing:
        write_into_existing_folder(Path(output_dir), conversion.tables, "esp-events", conversion.report)
    else:
        tables = {**conversion.tables, **{table: empty_frame(table) for table in OTHER_TABLES}}
        write_new_landing_folder(Path(output_dir), tables, "esp-events", conversion.report)
    return conversion.report
