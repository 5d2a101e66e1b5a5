"""The simulated world, stepped one live day at a time: `World.step(day, sends) -> DayDrop`.

The history (`generate_landing`) is the same world run with the shop's business-as-usual
campaigns; it leaves the world's state after its last day. Each live day then:

1. sends the pipeline's planned e-mails for the day (the ESP skips addresses it has itself
   stopped mailing after a bounce, complaint or unsubscribe);
2. draws reactions with the shared rules (`engine.react_to_sends`); events that happen
   after the day ends are carried over and land on the day they happen;
3. draws the day's purchases with the carried-over boost of earlier opens and clicks;
4. writes the day's landing drop (``<landing>/drops/<day>/``, docs/data_contract.md) and,
   in the oracle folder, the new state and the truth about every planned send.

The oracle per planned send holds the true probabilities of open, click and purchase within
the attribution window if sent and if not sent, and the true uplift. The pipeline never
reads the oracle folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.simulator import behaviour, engine, formatting
from ml.simulator import randomness as rnd
from ml.simulator.config import AudienceConfig
from ml.simulator.contract import DROPS_DIR, LANDING_SCHEMAS, MANIFEST_FILE
from ml.simulator.population import (
    CRM, DAY, ESP, HOUR, NEVER, draw_calendar, draw_catalogue, draw_people, subscriber_ids,
)
from ml.simulator.state import WORLD_DIR, WorldState, day_start, history_last_day, state_path, write_parquet
from ml.vocabulary import ATTRIBUTION_WINDOW_DAYS, EMAIL_EVENT_TYPES

SEND_COLUMNS = ("send_id", "esp_id", "campaign_id", "subject_line", "category")
# Optional: `scheduled_at` (UTC) per send. A scheduled send leaves within this many seconds of it.
SCHEDULED_SPREAD_SECONDS = 5 * 60
PENDING_SCHEMA = pa.schema(
    [
        ("send_id", pa.string()), ("person", pa.int64()), ("campaign_index", pa.int64()),
        ("event_type", pa.int64()), ("occurred_at", pa.int64()),
    ]
)


@dataclass(frozen=True)
class DayDrop:
    """What one live day produced: the landing drop's row counts and where it is."""

    day: date
    live_day: int  # 1 is the first day after the history
    folder: Path
    rows: dict[str, int]
    planned: int
    skipped_by_esp: int
    shift_active: bool


def pending_path(oracle_dir: Path, day: date) -> Path:
    return Path(oracle_dir) / WORLD_DIR / f"pending_{day.isoformat()}.parquet"


def send_truth_path(oracle_dir: Path, day: date) -> Path:
    return Path(oracle_dir) / WORLD_DIR / f"send_truth_{day.isoformat()}.parquet"


def purchase_hazard_path(oracle_dir: Path, day: date) -> Path:
    """A live day's realised daily purchase hazard per CRM customer (the history's is
    audience.HISTORY_HAZARD_FILE): what evaluation.history_purchase_probability reads once a
    label window reaches past the history."""
    return Path(oracle_dir) / WORLD_DIR / f"purchase_hazard_{day.isoformat()}.parquet"


def drop_folder(landing_dir: Path, day: date) -> Path:
    return Path(landing_dir) / DROPS_DIR / day.isoformat()


class World:
    """The hidden world behind a generated landing folder (its oracle folder)."""

    def __init__(self, oracle_dir: Path):
        self.oracle_dir = Path(oracle_dir)
        truth_path = self.oracle_dir / "truth.json"
        if not truth_path.exists():
            raise FileNotFoundError(
                f"{self.oracle_dir} holds no simulated world (no truth.json); generate the history first "
                "with ml.simulator.generate_landing"
            )
        self.config = AudienceConfig.from_manifest(json.loads(truth_path.read_text())["generator"])
        self.seed = self.config.seed
        self.last_history_day = history_last_day(self.config)
        self.history_start = formatting.epoch_seconds(self.config.end) - self.config.days * DAY
        self.n_history_campaigns = len(draw_calendar(self.config))
        self.catalogue = draw_catalogue(self.seed)
        self.people = draw_people(self.config, np.arange(self.config.n_people, dtype=np.int64))
        esp_rows = np.flatnonzero(self.people.in_esp)
        self._row_by_esp_id = pd.Series(
            esp_rows, index=subscriber_ids(self.people.person_id[esp_rows], ESP).to_numpy(zero_copy_only=False)
        )

    # -- calendar ----------------------------------------------------------------------------
    def live_day(self, day: date) -> int:
        return (day - self.last_history_day).days

    def day_index(self, day: date) -> int:
        return (day_start(day) - self.history_start) // DAY

    def campaign_index(self, day: date) -> int:
        index = self.n_history_campaigns + self.live_day(day) - 1
        if index >= 1 << engine.SEND_UID_BITS:
            raise ValueError(f"{day} is beyond the simulator's {(1 << engine.SEND_UID_BITS) - self.n_history_campaigns} live days")
        return index

    def send_moments(self, day: date, sends: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """When the ESP starts each send, and over how many seconds it spreads: the send's own
        `scheduled_at` (UTC) when the plan gives one, within minutes; else the day's launch
        time, over two hours. A scheduled time outside the day is refused."""
        launch = self.launch_time(day)
        blast = np.full(len(sends), launch, dtype=np.int64), np.full(len(sends), 2 * HOUR, dtype=np.int64)
        if "scheduled_at" not in sends.columns:
            return blast
        scheduled = pd.to_datetime(sends["scheduled_at"])
        given = scheduled.notna().to_numpy()
        seconds = np.where(given, (scheduled.fillna(pd.Timestamp(0)) - pd.Timestamp(0)) // pd.Timedelta(seconds=1), launch)
        begin = day_start(day)
        outside = given & ((seconds < begin) | (seconds >= begin + DAY))
        if outside.any():
            raise ValueError(f"{int(outside.sum())} sends are scheduled outside {day} (UTC)")
        return seconds.astype(np.int64), np.where(given, SCHEDULED_SPREAD_SECONDS, 2 * HOUR).astype(np.int64)

    def launch_time(self, day: date) -> int:
        """The day's send time: office hours (UTC), like the history's campaigns."""
        index = self.day_index(day)
        hour = 8 + int(rnd.integers(self.seed, "live/launch_hour", 10, np.array([index]))[0])
        minute = int(rnd.integers(self.seed, "live/launch_minute", 60, np.array([index]))[0])
        return day_start(day) + hour * HOUR + minute * 60

    # -- the hidden rules applied to a day ------------------------------------------------------
    def _shifted(self, rows: np.ndarray, day: date) -> np.ndarray:
        """Whether the scripted shift applies to each of these people on ``day``."""
        shift = self.config.shift
        return shift.applies(self.live_day(day)) & (self.people.top_category[rows] == shift.category)

    def shift_responsiveness(self, rows: np.ndarray, day: date) -> np.ndarray:
        return np.where(self._shifted(rows, day), self.config.shift.responsiveness_factor, 1.0)

    def daily_hazard(self, rows: np.ndarray, first_day: date, days: int) -> np.ndarray:
        """(rows, days): base purchase hazard times exposure and the scripted shift, from
        ``first_day`` on. Only CRM customers buy (orders are CRM records)."""
        dates = [first_day + timedelta(days=k) for k in range(days)]
        starts = np.array([day_start(d) for d in dates], dtype=np.int64)[None, :]
        exposure, _, _ = engine.daily_exposure(self.people, rows, starts, NEVER)
        demand = np.stack([self.demand_factor(rows, d) for d in dates], axis=1)
        base = self.people.base_purchase_hazard[rows] * self.people.in_crm[rows]
        return base[:, None] * exposure * demand

    def demand_factor(self, rows: np.ndarray, day: date) -> np.ndarray:
        return np.where(self._shifted(rows, day), self.config.shift.demand_factor, 1.0)

    def _state_before(self, day: date) -> tuple[WorldState, pd.DataFrame]:
        previous = day - timedelta(days=1)
        path = state_path(self.oracle_dir, previous)
        if not path.exists():
            raise FileNotFoundError(
                f"the world has no state after {previous} ({path}); live days are stepped in order from "
                f"{self.last_history_day + timedelta(days=1)}"
            )
        pending = pending_path(self.oracle_dir, previous)
        carried = pq.read_table(pending).to_pandas() if pending.exists() else PENDING_SCHEMA.empty_table().to_pandas()
        return WorldState.read(path), carried

    def rows_of(self, esp_ids: pd.Series) -> np.ndarray:
        rows = esp_ids.map(self._row_by_esp_id)
        if rows.isna().any():
            unknown = esp_ids[rows.isna()].iloc[0]
            raise ValueError(f"{int(rows.isna().sum())} planned sends address ESP ids the ESP does not know, e.g. {unknown}")
        return rows.to_numpy(dtype=np.int64)

    # -- one live day ------------------------------------------------------------------------
    def step(self, day: date, sends: pd.DataFrame, landing_dir: Path) -> DayDrop:
        """Send ``sends`` (SEND_COLUMNS) on ``day``, draw the day and write its landing drop."""
        missing = [c for c in SEND_COLUMNS if c not in sends.columns]
        if missing:
            raise ValueError(f"planned sends lack columns {missing}")
        if sends["send_id"].duplicated().any():
            raise ValueError("planned sends contain a send_id more than once")
        if self.live_day(day) < 1:
            raise ValueError(f"{day} is inside the history (it ends on {self.last_history_day})")
        state, carried = self._state_before(day)
        people, seed = self.people, self.seed
        begin = day_start(day)
        until = begin + DAY
        c = self.campaign_index(day)
        launched, spread = self.send_moments(day, sends)
        live_day = self.live_day(day)

        rows = self.rows_of(sends["esp_id"].astype(str))
        if len(np.unique(rows)) != len(rows):
            raise ValueError("planned sends address one person more than once on the same day")
        recent = state.sends_last_week()
        esp_skips = state.opted_out_at[rows] <= launched
        kept = ~esp_skips
        idx = rows[kept]
        send_frame = sends.loc[kept].reset_index(drop=True)
        categories = behaviour.category_codes(send_frame["category"].fillna("general").tolist())
        reaction = engine.react_to_sends(
            seed, people, idx, c, launched[kept], categories, send_frame["subject_line"].tolist(), recent[idx],
            responsiveness=self.shift_responsiveness(idx, day), spread_seconds=spread[kept],
        )
        truth = self._send_truth(day, sends, rows, esp_skips, state, recent, launched)
        launched_at = int(launched.min()) if len(launched) else self.launch_time(day)

        # Events: carried over from earlier days, then today's sends; later ones wait.
        new_events = [
            pd.DataFrame({
                "send_id": send_frame["send_id"].to_numpy()[happened], "person": idx[happened],
                "campaign_index": c, "event_type": code, "occurred_at": moment[happened],
            })
            for code, happened, moment in reaction.events()
        ]
        events = pd.concat([carried, *new_events], ignore_index=True)
        events["occurred_at"] = events["occurred_at"].astype(np.int64)
        today = events[events["occurred_at"] < until].sort_values(["occurred_at", "send_id", "event_type"], kind="stable")
        later = events[events["occurred_at"] >= until]

        # The ESP stops mailing after a bounce, unsubscribe or complaint.
        person, event_type = today["person"].to_numpy(), today["event_type"].to_numpy()
        moment = today["occurred_at"].to_numpy()
        stops = np.isin(event_type, [engine.EVENT_CODE[k] for k in ("bounce", "unsubscribe", "complaint")])
        opted_out_at = state.opted_out_at.copy()
        np.minimum.at(opted_out_at, person[stops], moment[stops])

        # Purchases today with the boost carried into today; today's events move tomorrow.
        buyers = np.flatnonzero(people.in_crm)
        hazard = (
            people.base_purchase_hazard[buyers] * self.demand_factor(buyers, day)
            * behaviour.hazard_factor(state.boost_level[buyers])
        )[:, None]
        day_index = np.array([[self.day_index(day)]], dtype=np.int64)
        purchases = engine.draw_purchases(
            seed, people, self.catalogue, buyers, day_index, np.array([[begin]]), hazard, until
        )
        weights = behaviour.boost_weights(event_type, people.persuadability[person], people.email_averse[person], engine.EVENT_CODE)
        engagement = np.bincount(person, weights=weights, minlength=len(people.person_id))
        boost_level = state.boost_level * behaviour.boost_decay() + engagement
        recent_sends = np.roll(state.recent_sends, 1, axis=1)
        recent_sends[:, 0] = 0
        np.add.at(recent_sends[:, 0], idx, 1)
        after = WorldState(state.person_id, boost_level, recent_sends, opted_out_at)

        folder = drop_folder(landing_dir, day)
        tables = self._drop_tables(day, send_frame, idx, reaction, today, purchases, launched_at, until)
        rows_written = _write_drop(folder, tables, until, self.oracle_dir / WORLD_DIR)
        after.write(state_path(self.oracle_dir, day))
        write_parquet(pa.Table.from_pandas(later, schema=PENDING_SCHEMA, preserve_index=False), pending_path(self.oracle_dir, day))
        write_parquet(pa.Table.from_pandas(truth, preserve_index=False), send_truth_path(self.oracle_dir, day))
        # Realised, as the history's: the hazard times the share of the day each could buy.
        exposure = engine.daily_exposure(people, buyers, np.array([[begin]]), until)[0]
        write_parquet(pa.table({"person_id": people.person_id[buyers], "daily_purchase_hazard": (hazard * exposure)[:, 0]}),
                      purchase_hazard_path(self.oracle_dir, day))
        return DayDrop(
            day=day, live_day=live_day, folder=folder, rows=rows_written, planned=len(sends),
            skipped_by_esp=int(esp_skips.sum()), shift_active=self.config.shift.applies(live_day),
        )

    def _send_truth(
        self, day: date, sends: pd.DataFrame, rows: np.ndarray, esp_skips: np.ndarray, state: WorldState,
        recent: np.ndarray, launched: np.ndarray | int | None = None,
    ) -> pd.DataFrame:
        """The oracle for each planned send: true chances if sent and if not, and the uplift."""
        people = self.people
        window = ATTRIBUTION_WINDOW_DAYS
        launched_at = self.launch_time(day) if launched is None else launched
        churned = people.churned_at[rows] <= launched_at
        categories = behaviour.category_codes(sends["category"].fillna("general").tolist())
        p_open, p_click_given_open = engine.send_conditions(
            people, rows, categories, sends["subject_line"].tolist(), recent[rows], churned,
            self.shift_responsiveness(rows, day),
        )
        p_delivered = np.where(esp_skips, 0.0, 1.0 - np.where(people.bad_mailbox[rows], 1.0, behaviour.RANDOM_HARD_BOUNCE))
        p_open, p_click = p_delivered * p_open, p_delivered * p_open * p_click_given_open
        averse = people.email_averse[rows]
        if_sent, if_not_sent = engine.purchase_if_sent(
            people, rows, self.daily_hazard(rows, day, window), state.boost_level[rows], p_delivered, p_open, p_click
        )
        return pd.DataFrame({
            "send_id": sends["send_id"].to_numpy(),
            "person_id": people.person_id[rows],
            "day": pd.Timestamp(day),
            "skipped_by_esp": esp_skips,
            "p_open": p_open,
            "p_click": p_click,
            "p_purchase_if_sent": if_sent,
            "p_purchase_if_not_sent": if_not_sent,
            "true_uplift": if_sent - if_not_sent,
            "email_averse": averse,
            "shift_active": self.config.shift.applies(self.live_day(day)),
        })

    def true_uplift(self, day: date, esp_ids: pd.Series, subject_line: str | None = None, category: str = "general") -> pd.DataFrame:
        """The oracle for anyone (not only planned sends): the true uplift of one e-mail on
        ``day`` to each ESP id, with the world's state before that day. For tests and the demo
        summary (e.g. to score random targeting); the pipeline never calls it."""
        state, _ = self._state_before(day)
        sends = pd.DataFrame({
            "send_id": np.arange(len(esp_ids)).astype(str), "esp_id": esp_ids.to_numpy(),
            "subject_line": subject_line, "category": category,
        })
        rows = self.rows_of(esp_ids.astype(str).reset_index(drop=True))
        skips = state.opted_out_at[rows] <= self.launch_time(day)
        truth = self._send_truth(day, sends, rows, skips, state, state.sends_last_week())
        return truth.drop(columns=["send_id"]).assign(esp_id=esp_ids.to_numpy())

    # -- the drop ----------------------------------------------------------------------------
    def _drop_tables(
        self, day: date, send_frame: pd.DataFrame, idx: np.ndarray, reaction: engine.SendReactions,
        events: pd.DataFrame, purchases: engine.Purchases, launched_at: int, until: int,
    ) -> dict[str, pa.Table]:
        seed, people = self.seed, self.people
        pid = people.person_id
        strings = lambda values: pa.array(np.asarray(values, dtype=object), pa.string())  # noqa: E731
        campaigns = send_frame.groupby("campaign_id", sort=True).agg(
            subject_line=("subject_line", lambda s: s.value_counts().index[0]),
            category=("category", lambda s: s.dropna().iloc[0] if s.nunique() == 1 and s.notna().all() else "general"),
        ).reset_index()
        tables = {
            "campaigns.parquet": pa.table({
                "campaign_id": strings(campaigns["campaign_id"]),
                "campaign_name": strings(campaigns["campaign_id"] + f" {day.isoformat()}"),
                "category": strings(campaigns["category"]),
                "subject_line": strings(campaigns["subject_line"]),
                "launched_at": formatting.timestamps(np.full(len(campaigns), launched_at, dtype=np.int64)),
            }, schema=LANDING_SCHEMAS["campaigns.parquet"]),
            "sends.parquet": pa.table({
                "send_id": strings(send_frame["send_id"]),
                "campaign_id": strings(send_frame["campaign_id"]),
                "esp_id": strings(send_frame["esp_id"]),
                "sent_at": formatting.timestamps(reaction.sent_at),
            }, schema=LANDING_SCHEMAS["sends.parquet"]),
        }
        person = events["person"].to_numpy()
        event_type = events["event_type"].to_numpy()
        occurred_at = events["occurred_at"].to_numpy()
        campaign_index = events["campaign_index"].to_numpy()
        event_uid = engine.event_uids(engine.send_uids(pid[person], campaign_index), event_type)
        esp_ids = subscriber_ids(pid[person], ESP)
        tables["email_events.parquet"] = pa.table({
            "event_id": formatting.hex_ids("evt_", rnd.unique_ids(seed, "event_id", event_uid)),
            "send_id": strings(events["send_id"]),
            "esp_id": esp_ids,
            "event_type": pa.array(EMAIL_EVENT_TYPES, pa.string()).take(pa.array(event_type)),
            "occurred_at": formatting.timestamps(occurred_at),
        }, schema=LANDING_SCHEMAS["email_events.parquet"])
        derived = engine.records_from_events(seed, event_type, occurred_at, pid[person], campaign_index, until)
        consent_uid = engine.DERIVED_UID | event_uid[derived.consent_rows]
        tables["consent_events.parquet"] = pa.table({
            "consent_event_id": formatting.hex_ids("cns_", rnd.unique_ids(seed, "consent_event_id", consent_uid)),
            "source_system": strings(np.full(len(consent_uid), "esp")),
            "source_subscriber_id": subscriber_ids(pid[person[derived.consent_rows]], ESP),
            "status": strings(np.full(len(consent_uid), "unsubscribed")),
            "recorded_at": formatting.timestamps(derived.consent_at),
            "consent_source": strings(np.full(len(consent_uid), "preference_center")),
            "proof": pa.nulls(len(consent_uid), pa.string()),
        }, schema=LANDING_SCHEMAS["consent_events.parquet"])
        suppressing = derived.suppression_rows
        suppression_uid = engine.DERIVED_UID | event_uid[suppressing]
        tables["suppressions.parquet"] = pa.table({
            "suppression_id": formatting.hex_ids("sup_", rnd.unique_ids(seed, "suppression_id", suppression_uid)),
            "source_system": strings(np.full(len(suppressing), "esp")),
            "source_subscriber_id": subscriber_ids(pid[person[suppressing]], ESP),
            "reason": strings(np.where(event_type[suppressing] == engine.EVENT_CODE["bounce"], "hard_bounce", "complaint")),
            "suppressed_at": formatting.timestamps(derived.suppression_at),
        }, schema=LANDING_SCHEMAS["suppressions.parquet"])
        order = np.argsort(purchases.ordered_at, kind="stable")
        buyer = purchases.person[order]
        order_uid = (pid[buyer].astype(np.uint64) << np.uint64(12)) | purchases.day[order].astype(np.uint64)
        tables["orders.parquet"] = pa.table({
            "order_id": formatting.hex_ids("ord_", rnd.unique_ids(seed, "order_id", order_uid)),
            "crm_id": subscriber_ids(pid[buyer], CRM),
            "product_id": pa.array(self.catalogue.product_id, pa.string()).take(pa.array(purchases.product[order])),
            "ordered_at": formatting.timestamps(purchases.ordered_at[order]),
            "amount": formatting.amounts(purchases.amount[order]),
            "currency": strings(purchases.currency[order]),
        }, schema=LANDING_SCHEMAS["orders.parquet"])
        return tables


def _write_drop(folder: Path, tables: dict[str, pa.Table], until: int, staging_root: Path) -> dict[str, int]:
    """Write a drop folder whole. Files are staged outside the landing folder (in the oracle
    folder, on the same disk) and moved in at the end, so the pipeline never sees half a drop."""
    staging = Path(staging_root) / f".drop_{folder.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, table in tables.items():
        pq.write_table(table, staging / name, compression="zstd")
    extracted_at = formatting.timestamps(np.array([until - 1], dtype=np.int64))[0].as_py()
    (staging / MANIFEST_FILE).write_text(json.dumps({"extracted_at": extracted_at}, indent=2) + "\n")
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.move(str(staging), str(folder))
    return {name: table.num_rows for name, table in tables.items()}
