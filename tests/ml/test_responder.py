"""The simulated campaign responder behind ml.experiments.outcomes.OutcomeSource."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.propensity.features import PRODUCT_CATEGORIES
from ml.experiments.outcomes import MEMBER_COLUMNS, OUTCOME_COLUMNS, OutcomeSource, validate_outcomes
from ml.simulator import AudienceConfig, DirtyDataConfig, generate_landing
from ml.simulator.responder import SimulatedOutcomeSource


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("responder")
    config = AudienceConfig(n_people=4000, days=30, seed=21, dirty=DirtyDataConfig.clean())
    generate_landing(config, tmp / "landing", tmp / "oracle")
    return tmp / "oracle"


@pytest.fixture(scope="module")
def people(oracle):
    return pd.read_parquet(oracle / "people.parquet")


def _members(people: pd.DataFrame, *, is_sent: bool, category: str | pd.Series = "general",
             subject: str = "This week's picks for you") -> pd.DataFrame:
    frame = pd.DataFrame({
        "subscriber_key": [f"key-{p}" for p in people["person_id"]],
        "arm": "treatment" if is_sent else "holdout",
        "is_sent": is_sent,
        "subject_line": subject if is_sent else None,
        "variant_category": category if isinstance(category, str) else category.to_numpy(),
        "crm_id": people["crm_id"].to_numpy(),
        "esp_id": people["esp_id"].to_numpy(),
    })
    return frame[list(MEMBER_COLUMNS)]


def test_implements_the_outcome_source_protocol(oracle, people):
    source: OutcomeSource = SimulatedOutcomeSource(oracle, seed=1)
    members = _members(people.head(500), is_sent=True)
    outcomes = source.observe(members)
    assert list(outcomes.columns) == list(OUTCOME_COLUMNS)
    checked = validate_outcomes(members, outcomes)  # every member exactly once
    assert list(checked["subscriber_key"]) == list(members["subscriber_key"])
    assert outcomes["revenue"].dtype == np.float64
    for column in ("opened", "clicked", "converted"):
        assert outcomes[column].dtype == bool


def test_is_deterministic_and_independent_of_member_order(oracle, people):
    members = _members(people.head(1500), is_sent=True)
    first = SimulatedOutcomeSource(oracle, seed=1).observe(members)
    again = SimulatedOutcomeSource(oracle, seed=1).observe(members)
    pd.testing.assert_frame_equal(first, again)
    shuffled = members.sample(frac=1.0, random_state=0)
    reordered = SimulatedOutcomeSource(oracle, seed=1).observe(shuffled).set_index("subscriber_key")
    pd.testing.assert_frame_equal(reordered.loc[first["subscriber_key"]].reset_index(), first)
    other_seed = SimulatedOutcomeSource(oracle, seed=2).observe(members)
    assert not other_seed["opened"].equals(first["opened"])


def test_holdout_opens_and_clicks_nothing_but_still_buys(oracle, people):
    outcomes = SimulatedOutcomeSource(oracle, seed=1).observe(_members(people, is_sent=False))
    assert not outcomes["opened"].any() and not outcomes["clicked"].any()
    assert 0.01 < outcomes["converted"].mean() < 0.2
    assert (outcomes.loc[~outcomes["converted"], "revenue"] == 0).all()
    assert (outcomes.loc[outcomes["converted"], "revenue"] > 0).all()


def test_treatment_converts_more_than_holdout(oracle, people):
    source = SimulatedOutcomeSource(oracle, seed=1)
    sent = source.observe(_members(people, is_sent=True, category=people["top_category"]))
    held = source.observe(_members(people, is_sent=False))
    # Same people, same random numbers: sending can only add conversions, never remove one.
    assert (sent["converted"] >= held["converted"]).all()
    assert sent["converted"].sum() > held["converted"].sum() * 1.1
    assert sent["revenue"].sum() > held["revenue"].sum()
    assert 0.1 < sent["opened"].mean() < 0.5
    assert (sent.loc[sent["clicked"], "opened"]).all()


def test_matching_category_raises_clicks(oracle, people):
    source = SimulatedOutcomeSource(oracle, seed=1)
    affinity = people[[f"affinity_{c}" for c in PRODUCT_CATEGORIES]].to_numpy()
    least_liked = pd.Series(np.array(PRODUCT_CATEGORIES)[affinity.argmin(axis=1)])
    matched = source.observe(_members(people, is_sent=True, category=people["top_category"]))
    mismatched = source.observe(_members(people, is_sent=True, category=least_liked))
    assert matched["clicked"].mean() > 1.5 * mismatched["clicked"].mean()


def test_people_churned_before_the_campaign_do_nothing(oracle, people):
    source = SimulatedOutcomeSource(oracle, seed=1, campaign_day=datetime(2026, 6, 30))
    churned = people[people["churned_at"] <= pd.Timestamp("2026-06-30")]
    assert len(churned) > 100
    outcomes = source.observe(_members(churned, is_sent=True))
    assert not outcomes[["opened", "clicked", "converted"]].any().any()


def test_campaign_day_defaults_to_the_export_moment(oracle):
    assert SimulatedOutcomeSource(oracle, seed=1).campaign_day == datetime(2026, 6, 30)
    assert SimulatedOutcomeSource(oracle, seed=1, campaign_day="2026-07-02").campaign_day == datetime(2026, 7, 2)


def test_members_are_found_by_either_id(oracle, people):
    esp_only = _members(people.head(300), is_sent=True).assign(crm_id=None)
    crm_only = _members(people.head(300), is_sent=True).assign(esp_id=None)
    source = SimulatedOutcomeSource(oracle, seed=1)
    usable = esp_only["esp_id"].notna() & crm_only["crm_id"].notna()
    by_esp = source.observe(esp_only[usable])
    by_crm = source.observe(crm_only[usable])
    pd.testing.assert_frame_equal(by_esp.reset_index(drop=True), by_crm.reset_index(drop=True))


def test_unknown_or_conflicting_members_raise(oracle, people):
    source = SimulatedOutcomeSource(oracle, seed=1)
    stranger = _members(people.head(3), is_sent=True).assign(crm_id="C99999999", esp_id=None)
    with pytest.raises(ValueError, match="match no simulated person"):
        source.observe(stranger)
    both = people[people["in_crm"] & people["in_esp"]].head(2)
    crossed = _members(both, is_sent=True)
    crossed["esp_id"] = crossed["esp_id"].to_numpy()[::-1]
    with pytest.raises(ValueError, match="two different people"):
        source.observe(crossed)
    with pytest.raises(ValueError, match="more than once"):
        source.observe(pd.concat([_members(people.head(2), is_sent=True)] * 2))
    with pytest.raises(ValueError, match="lack columns"):
        source.observe(_members(people.head(2), is_sent=True).drop(columns="arm"))


def test_missing_oracle_folder_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate_landing"):
        SimulatedOutcomeSource(tmp_path, seed=1)


def test_true_probabilities_are_what_observed_outcomes_average_to(oracle, people):
    """The oracle's closed form agrees with the draws. Over 4,000 people and 20 seeds the
    observed rates sit within sampling error of the true probabilities; the uplift is read
    on paired draws (the same person's random numbers with and without the email), so its
    error is small enough to catch a wrong mixture weight."""
    members_sent = _members(people, is_sent=True, category=people["top_category"])
    members_held = _members(people, is_sent=False)
    truth = SimulatedOutcomeSource(oracle, seed=1).true_purchase_probabilities(members_sent)
    assert (truth["true_uplift"] >= -1e-12).all() and truth["true_uplift"].mean() > 0
    seeds = range(1, 21)
    sent = np.array([SimulatedOutcomeSource(oracle, seed=s).observe(members_sent)["converted"].mean() for s in seeds])
    held = np.array([SimulatedOutcomeSource(oracle, seed=s).observe(members_held)["converted"].mean() for s in seeds])
    n = len(seeds) * len(people)
    for observed, column in ((sent.mean(), "p_purchase_if_sent"), (held.mean(), "p_purchase_if_not_sent")):
        expected = truth[column].mean()
        assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / n), (column, observed, expected)
    uplift = truth["true_uplift"].mean()
    assert abs((sent - held).mean() - uplift) < 4 * np.sqrt(uplift / n), ((sent - held).mean(), uplift)


def test_scoring_by_true_uplift_beats_random_targeting(oracle, people):
    from ml.simulator.evaluation import targeting_value

    truth = SimulatedOutcomeSource(oracle, seed=1).true_purchase_probabilities(_members(people, is_sent=True))
    uplift = truth["true_uplift"].to_numpy()
    best_half = uplift >= np.median(uplift)
    value = targeting_value(uplift, best_half)
    assert value.ratio_to_oracle == pytest.approx(1.0, abs=1e-9)
    assert value.ratio_to_random > 1.2
    random_half = np.random.default_rng(0).random(len(uplift)) < 0.5
    assert targeting_value(uplift, random_half).ratio_to_random == pytest.approx(1.0, abs=0.1)


def test_as_in_the_history_only_crm_customers_buy(oracle, people):
    """The history records orders for CRM customers only; the campaign world is the same:
    a person known only to the ESP may open and click but never converts."""
    esp_only = people[~people["in_crm"]]
    assert len(esp_only) > 200
    members = _members(esp_only, is_sent=True, category=esp_only["top_category"])
    source = SimulatedOutcomeSource(oracle, seed=1)
    outcomes = source.observe(members)
    assert outcomes["opened"].any() and not outcomes["converted"].any()
    truth = source.true_purchase_probabilities(members)
    assert (truth[["p_purchase_if_sent", "p_purchase_if_not_sent", "true_uplift"]] == 0).all().all()
