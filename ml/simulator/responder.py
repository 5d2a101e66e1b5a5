"""Answer a planned campaign with what the simulated people do (an `OutcomeSource`).

The responder looks up each experiment member's hidden person in the oracle (by CRM or ESP
id) and applies the same behaviour model as the landing generator: a sent e-mail may be
opened and clicked (more likely when the promoted category matches the person's taste and
the subject line is appealing), and a click or open raises the chance of a purchase in the
following 14 days. The holdout receives nothing and buys only organically.

Draws are keyed by (seed, person, campaign day), not by arm, so the same person would get
the same random numbers in every arm: arm differences come from the treatment alone.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ml.propensity.features import PRODUCT_CATEGORIES
from ml.experiments.outcomes import MEMBER_COLUMNS, OUTCOME_COLUMNS
from ml.simulator import behaviour, formatting
from ml.simulator import randomness as rnd

CONVERSION_WINDOW_DAYS = 14
_PEOPLE_COLUMNS = [
    "person_id", "crm_id", "esp_id", "in_crm", "engagement", "price_sensitivity", "churned_at",
    "base_daily_purchase_hazard",
    *[f"affinity_{c}" for c in PRODUCT_CATEGORIES],
]


def _as_datetime(moment: datetime | date | str) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    elif not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


class SimulatedOutcomeSource:
    """`ml.experiments.outcomes.OutcomeSource` backed by the simulator's oracle folder.

    ``campaign_day`` is when the campaign goes out (default: the export moment
    ``extracted_at`` in ``truth.json``); people who churned before it neither open nor buy.
    """

    def __init__(self, oracle_dir: Path, seed: int, campaign_day: datetime | date | str | None = None):
        self.oracle_dir = Path(oracle_dir)
        self.seed = int(seed)
        truth_path = self.oracle_dir / "truth.json"
        people_path = self.oracle_dir / "people.parquet"
        if not truth_path.exists() or not people_path.exists():
            raise FileNotFoundError(
                f"{self.oracle_dir} is not a simulator oracle folder (needs truth.json and people.parquet); "
                "run ml.simulator.generate_landing first"
            )
        if campaign_day is None:
            campaign_day = json.loads(truth_path.read_text())["extracted_at"]
        self.campaign_day = _as_datetime(campaign_day)
        self._people = pd.read_parquet(people_path, columns=_PEOPLE_COLUMNS)
        products = pd.read_parquet(self.oracle_dir / "products.parquet")
        self._prices = products["price"].to_numpy()
        codes = behaviour.category_codes(products["category"].tolist())
        self._products_by_category = np.stack([
            np.flatnonzero(codes == k)[np.argsort(self._prices[codes == k], kind="stable")]
            for k in range(len(PRODUCT_CATEGORIES))
        ])
        self._row_by_crm = self._row_lookup("crm_id")
        self._row_by_esp = self._row_lookup("esp_id")

    def _row_lookup(self, id_column: str) -> pd.Series:
        ids = self._people[id_column]
        return pd.Series(np.flatnonzero(ids.notna()), index=ids[ids.notna()].to_numpy())

    def _person_rows(self, members: pd.DataFrame) -> np.ndarray:
        by_crm = members["crm_id"].map(self._row_by_crm).to_numpy(dtype=np.float64)
        by_esp = members["esp_id"].map(self._row_by_esp).to_numpy(dtype=np.float64)
        conflict = ~np.isnan(by_crm) & ~np.isnan(by_esp) & (by_crm != by_esp)
        if conflict.any():
            raise ValueError(
                f"{int(conflict.sum())} members have a CRM id and an ESP id of two different people, "
                f"e.g. subscriber_key {members['subscriber_key'].iloc[np.flatnonzero(conflict)[0]]}"
            )
        rows = np.where(np.isnan(by_crm), by_esp, by_crm)
        unknown = np.isnan(rows)
        if unknown.any():
            raise ValueError(
                f"{int(unknown.sum())} members match no simulated person by crm_id or esp_id, "
                f"e.g. subscriber_key {members['subscriber_key'].iloc[np.flatnonzero(unknown)[0]]}; "
                "was the landing data generated with this oracle folder?"
            )
        return rows.astype(np.int64)

    def _email_response(self, members: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each member's person and their chances today under the behaviour rules.

        As in the history, only CRM customers buy (orders are CRM records): someone known
        only to the ESP opens and clicks but never converts.
        """
        rows = self._person_rows(members)
        people = self._people.iloc[rows]
        affinity = people[[f"affinity_{c}" for c in PRODUCT_CATEGORIES]].to_numpy()
        engagement = people["engagement"].to_numpy()
        churned = (people["churned_at"] <= pd.Timestamp(self.campaign_day)).to_numpy()
        categories = members["variant_category"].where(members["variant_category"].notna(), "general").tolist()
        match = behaviour.category_match(affinity, behaviour.category_codes(categories))
        appeal = behaviour.subject_appeal(members["subject_line"].where(members["subject_line"].notna(), None).tolist())
        return {
            "people": people,
            "affinity": affinity,
            "churned": churned,
            "hazard": people["base_daily_purchase_hazard"].to_numpy() * people["in_crm"].to_numpy(dtype=float),
            "p_open": behaviour.open_probability(engagement, match, np.zeros(len(rows)), churned, appeal),
            "p_click_given_open": behaviour.click_given_open_probability(engagement, match),
        }

    def true_purchase_probabilities(self, members: pd.DataFrame) -> pd.DataFrame:
        """The oracle: each member's true probability of a purchase within the conversion
        window if emailed today and if not, and their difference, the true uplift. Uses the
        member's planned subject line and category, or a generic email where there is none.
        For tests, benchmarks and the demo's evaluation only: the pipeline never reads it."""
        response = self._email_response(members)
        hazard, churned, p_open = response["hazard"], response["churned"], response["p_open"]
        p_click = p_open * response["p_click_given_open"]
        window = CONVERSION_WINDOW_DAYS
        yes, no = np.ones(len(members), bool), np.zeros(len(members), bool)
        if_not_sent = behaviour.purchase_probability(hazard, window, no, no, churned)
        if_sent = (
            p_click * behaviour.purchase_probability(hazard, window, yes, yes, churned)
            + (p_open - p_click) * behaviour.purchase_probability(hazard, window, no, yes, churned)
            + (1 - p_open) * if_not_sent
        )
        return pd.DataFrame(
            {
                "subscriber_key": members["subscriber_key"].to_numpy(),
                "p_purchase_if_sent": if_sent,
                "p_purchase_if_not_sent": if_not_sent,
                "true_uplift": if_sent - if_not_sent,
            }
        )

    def observe(self, members: pd.DataFrame) -> pd.DataFrame:
        """One row per member with OUTCOME_COLUMNS: opened, clicked, converted, revenue."""
        missing = [c for c in MEMBER_COLUMNS if c not in members.columns]
        if missing:
            raise ValueError(f"members lack columns {missing}")
        if members["subscriber_key"].duplicated().any():
            raise ValueError("members contain a subscriber_key more than once")
        response = self._email_response(members)
        people, affinity, churned, hazard = (response[k] for k in ("people", "affinity", "churned", "hazard"))
        p_open, p_click = response["p_open"], response["p_click_given_open"]
        is_sent = members["is_sent"].to_numpy(dtype=bool, na_value=False)

        day = formatting.epoch_seconds(self.campaign_day) // 86_400
        person_id = people["person_id"].to_numpy()
        u = lambda stream: rnd.uniform(self.seed, f"responder/{stream}", person_id, day)  # noqa: E731
        opened = is_sent & (u("open") < p_open)
        clicked = opened & (u("click") < p_click)
        p_convert = behaviour.purchase_probability(hazard, CONVERSION_WINDOW_DAYS, clicked, opened, churned)
        converted = u("convert") < p_convert
        product = behaviour.choose_products(
            affinity, people["price_sensitivity"].to_numpy(), u("explore"), u("category"), u("product"),
            self._products_by_category,
        )
        revenue = np.where(converted, self._prices[product], 0.0)
        return pd.DataFrame(
            {
                "subscriber_key": members["subscriber_key"].to_numpy(),
                "opened": opened,
                "clicked": clicked,
                "converted": converted,
                "revenue": revenue.astype(np.float64),
            },
            columns=list(OUTCOME_COLUMNS),
        )
