"""The world's memory between days: what each person carries into the next day.

A state file is written after every simulated day (the history counts as one), named after
that day, so a live day can be re-run from the state before it and gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.simulator import formatting
from ml.simulator.config import AudienceConfig
from ml.simulator.population import DAY, People

FATIGUE_WINDOW_DAYS = 7
WORLD_DIR = "world"
_SEND_COLUMNS = tuple(f"sends_{k}d_ago" for k in range(1, FATIGUE_WINDOW_DAYS + 1))
STATE_SCHEMA = pa.schema(
    [
        ("person_id", pa.int64()),
        ("boost_level", pa.float64()),
        *[(column, pa.int16()) for column in _SEND_COLUMNS],
        ("opted_out_at", pa.int64()),  # epoch seconds; 2**62 when the ESP still mails them
    ]
)


def history_last_day(config: AudienceConfig) -> date:
    """The last whole day of the history; the first live day is the day after."""
    return (config.end - timedelta(seconds=1)).date()


def day_start(day: date) -> int:
    return formatting.epoch_seconds(day) // DAY * DAY


def state_path(oracle_dir: Path, day: date) -> Path:
    return Path(oracle_dir) / WORLD_DIR / f"state_{day.isoformat()}.parquet"


@dataclass
class WorldState:
    """Per person (aligned on ``person_id``): the purchase boost carried into the next day,
    sends on each of the last 7 days (fatigue; column 0 is the day just ended) and when the
    ESP stopped mailing them."""

    person_id: np.ndarray
    boost_level: np.ndarray
    recent_sends: np.ndarray  # (people, FATIGUE_WINDOW_DAYS)
    opted_out_at: np.ndarray

    @classmethod
    def after_history(
        cls, people: People, send_person: np.ndarray, sent_at: np.ndarray, boost_level: np.ndarray,
        opted_out_at: np.ndarray, end: int,
    ) -> WorldState:
        recent = np.zeros((len(people), FATIGUE_WINDOW_DAYS), dtype=np.int16)
        days_ago = (end - 1) // DAY - sent_at // DAY
        keep = days_ago < FATIGUE_WINDOW_DAYS
        np.add.at(recent, (send_person[keep], days_ago[keep]), 1)
        return cls(people.person_id, np.asarray(boost_level, float), recent, np.asarray(opted_out_at, np.int64))

    def sends_last_week(self) -> np.ndarray:
        return self.recent_sends.sum(axis=1)

    def table(self) -> pa.Table:
        return pa.table(
            {
                "person_id": self.person_id,
                "boost_level": self.boost_level,
                **{column: self.recent_sends[:, k] for k, column in enumerate(_SEND_COLUMNS)},
                "opted_out_at": self.opted_out_at,
            },
            schema=STATE_SCHEMA,
        )

    @classmethod
    def read(cls, path: Path) -> WorldState:
        table = pq.read_table(path)
        person_id = table["person_id"].to_numpy()
        order = np.argsort(person_id, kind="stable")
        recent = np.stack([table[column].to_numpy() for column in _SEND_COLUMNS], axis=1)
        return cls(
            person_id[order], table["boost_level"].to_numpy()[order], recent[order],
            table["opted_out_at"].to_numpy()[order],
        )

    def write(self, path: Path) -> None:
        write_parquet(self.table(), path)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write a whole file: to a hidden partial file first, then replace, so a reader never
    sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial, compression="zstd")
    partial.replace(path)
