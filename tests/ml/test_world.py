"""The simulated world stepped day by day: same rules as the history, exact drops, a true oracle."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest

from ml.simulator import AudienceConfig, DirtyDataConfig, generate_landing
from ml.simulator.population import ESP, draw_calendar, subscriber_ids
from ml.simulator.world import World, drop_folder, send_truth_path

N_PEOPLE = 20_000


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("world")
    config = AudienceConfig(n_people=N_PEOPLE, seed=11, dirty=DirtyDataConfig.clean())
    generate_landing(config, tmp / "landing", tmp / "oracle")
    return config, tmp


def fresh_copy(history, tmp_path) -> tuple[Path, Path]:
    """A private copy of the world, so each test steps its own days."""
    import shutil

    _, tmp = history
    shutil.copytree(tmp / "oracle", tmp_path / "oracle")
    shutil.copytree(tmp / "landing", tmp_path / "landing")
    return tmp_path / "landing", tmp_path / "oracle"


def sends_to(esp_ids, day, subject="A little something for you", category="general") -> pd.DataFrame:
    esp_ids = pd.Series(list(esp_ids), dtype=object)
    return pd.DataFrame({
        "send_id": [f"ps_{day}_{e}" for e in esp_ids], "esp_id": esp_ids, "campaign_id": f"exp:{day}",
        "subject_line": subject, "category": category,
    })


def esp_contacts(world: World) -> pd.Series:
    """The ESP ids of everyone the ESP knows."""
    return pd.Series(subscriber_ids(world.people.person_id[world.people.in_esp], ESP).to_numpy(zero_copy_only=False))


def landed(landing: Path, table: str) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted((landing / "drops").glob(f"*/{table}.parquet"))]
    return pd.concat(frames, ignore_index=True)


def test_history_and_live_days_follow_the_same_rules(history, tmp_path):
    """History campaigns sent again on the first live day, each person the campaign they got
    under the same conditions (as many sends in the week before, not churned, still mailed),
    are opened equally often."""
    config, tmp = history
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    people = pd.read_parquet(oracle / "people.parquet")
    calendar = draw_calendar(config)
    sends = pd.read_parquet(tmp / "landing" / "sends.parquet")
    sends["sent_at"] = pd.to_datetime(sends["sent_at"])
    events = pd.read_parquet(tmp / "landing" / "email_events.parquet")
    first_live = world.last_history_day + timedelta(days=1)
    state = world._state_before(first_live)[0]
    cohorts = []
    for c in np.flatnonzero(calendar.category == "general")[::-1]:
        launched = pd.Timestamp(calendar.launched_at[c], unit="s")
        prior = sends[(sends["sent_at"] < launched) & (sends["sent_at"] >= launched - pd.Timedelta(days=7))]
        recipients = sends[sends["campaign_id"] == calendar.campaign_id[c]]
        recent_then = recipients["esp_id"].map(prior["esp_id"].value_counts()).fillna(0).to_numpy()
        row = world.rows_of(recipients["esp_id"].astype(str).reset_index(drop=True))
        alive = people["churned_at"].to_numpy()[row] > np.datetime64(f"{first_live + timedelta(days=3)}")
        same = (state.sends_last_week()[row] == recent_then) & alive & (state.opted_out_at[row] > 2**61)
        cohorts.append(recipients[same].assign(subject_line=calendar.subject_line[c]))
    cohort = pd.concat(cohorts).drop_duplicates("esp_id")  # the latest matching campaign per person
    assert len(cohort) > 5000

    then_opened = events[(events["event_type"] == "open") & events["send_id"].isin(cohort["send_id"])]["send_id"].nunique()
    day = first_live
    live = sends_to(cohort["esp_id"], day).assign(subject_line=cohort["subject_line"].to_numpy())
    world.step(day, live, landing)
    for k in range(1, 3):  # late opens land on the next days
        world.step(day + timedelta(days=k), sends_to([], day), landing)
    live_events = landed(landing, "email_events")
    now_opened = live_events[live_events["event_type"] == "open"]["send_id"].nunique()
    n = len(cohort)
    _, p_value = proportions_ztest([then_opened, now_opened], [n, n])
    assert 0.05 < then_opened / n < 0.5
    assert p_value > 0.001, (then_opened / n, now_opened / n)


def test_every_landed_event_belongs_to_a_planned_send_and_lands_once(history, tmp_path):
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    day = world.last_history_day + timedelta(days=1)
    planned = sends_to(esp_contacts(world).sample(6000, random_state=1), day)
    first = world.step(day, planned, landing)
    for k in range(1, 5):  # events come up to 3 days after a send
        world.step(day + timedelta(days=k), sends_to([], day), landing)
    sends, events = landed(landing, "sends"), landed(landing, "email_events")
    truth = pd.read_parquet(send_truth_path(oracle, day))

    assert set(sends["send_id"]) <= set(planned["send_id"])
    assert len(sends) == len(planned) - first.skipped_by_esp == int((~truth["skipped_by_esp"]).sum())
    assert set(events["send_id"]) <= set(sends["send_id"])
    assert not events["event_id"].duplicated().any()
    per_send = events.pivot_table(index="send_id", columns="event_type", aggfunc="size", fill_value=0)
    # Each send is delivered or bounces, exactly once; opens and clicks at most once.
    assert ((per_send.get("delivered", 0) + per_send.get("bounce", 0)) == 1).all()
    assert per_send.reindex(sends["send_id"]).notna().all().all()
    assert (per_send.max() <= 1).all()
    # Against the oracle: realised open and click rates match the true probabilities.
    n = len(planned)
    for event, column in (("open", "p_open"), ("click", "p_click")):
        expected = truth[column].sum()
        observed = int((events["event_type"] == event).sum())
        assert abs(observed - expected) < 4 * np.sqrt(expected) + 1, (event, observed, expected, n)


def test_the_oracle_purchase_probabilities_come_true(history, tmp_path):
    """Purchases within the window after a send happen as often as the oracle says, for the
    emailed half and (by the oracle's no-send answer) for the other half."""
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    people = world.people
    customers = np.flatnonzero(people.in_esp & people.in_crm)
    esp = pd.Series(subscriber_ids(people.person_id[customers], ESP).to_numpy(zero_copy_only=False))
    emailed = np.asarray(pd.Series(esp).map(lambda e: hashlib.sha256(e.encode()).digest()[0] % 2 == 0))
    day = world.last_history_day + timedelta(days=1)
    carried_boost = world._state_before(day)[0].boost_level[customers]
    not_sent_truth = world.true_uplift(day, esp[~emailed].reset_index(drop=True))
    world.step(day, sends_to(esp[emailed], day), landing)
    for k in range(1, 14):
        world.step(day + timedelta(days=k), sends_to([], day), landing)
    sent_truth = pd.read_parquet(send_truth_path(oracle, day))
    orders = landed(landing, "orders")
    crm_of = dict(zip(esp, subscriber_ids(people.person_id[customers], 0).to_numpy(zero_copy_only=False)))
    buyers = set(orders["crm_id"])
    bought = np.array([crm_of[e] in buyers for e in esp])
    for group, truth in ((emailed, sent_truth["p_purchase_if_sent"]), (~emailed, not_sent_truth["p_purchase_if_not_sent"])):
        expected = truth.sum()
        observed = int(bought[group].sum())
        assert abs(observed - expected) < 4 * np.sqrt(expected), (observed, expected)
    # Recent clickers still buy more, from the boost they carry over from the history.
    truth = np.empty(len(esp))
    truth[emailed] = sent_truth["p_purchase_if_sent"].to_numpy()
    truth[~emailed] = not_sent_truth["p_purchase_if_not_sent"].to_numpy()
    boosted = carried_boost > 0.5
    expected = truth[boosted].sum()
    assert abs(int(bought[boosted].sum()) - expected) < 4 * np.sqrt(expected), (bought[boosted].sum(), expected)
    # The uplift is heterogeneous: some people are put off by an email.
    assert (sent_truth["true_uplift"] < 0).any() and (sent_truth["true_uplift"] > 0).any()
    # The oracle's window probability reaches into the live days the world has lived (the
    # loop's models are judged on live cutoffs): for every CRM customer, over the 14 live
    # days, as many buyers as it expects; one day further has no oracle yet.
    from ml.simulator.evaluation import history_purchase_probability

    everyone = pd.Series(subscriber_ids(people.person_id[np.flatnonzero(people.in_crm)], 0).to_numpy(zero_copy_only=False))
    start = pd.Timestamp(day)
    probability = history_purchase_probability(oracle, everyone, [start] * len(everyone), 14)
    ordered_at = pd.to_datetime(orders["ordered_at"])
    window_buyers = set(orders.loc[(ordered_at >= start) & (ordered_at < start + pd.Timedelta(days=14)), "crm_id"])
    observed = int(everyone.isin(window_buyers).sum())
    assert not np.isnan(probability).any() and observed > 100
    assert abs(observed - probability.sum()) < 4 * np.sqrt(probability.sum()), (observed, probability.sum())
    assert np.isnan(history_purchase_probability(oracle, everyone[:1], [start + pd.Timedelta(days=1)], 14)).all()


def test_rerunning_a_day_rewrites_the_same_drop(history, tmp_path):
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    day = world.last_history_day + timedelta(days=1)
    planned = sends_to(esp_contacts(world).sample(3000, random_state=2), day)

    def digest() -> dict[str, str]:
        folder = drop_folder(landing, day)
        files = [*folder.iterdir(), Path(oracle / "world" / f"state_{day}.parquet")]
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}

    world.step(day, planned, landing)
    first = digest()
    World(oracle).step(day, planned, landing)
    assert digest() == first


def test_days_must_be_stepped_in_order(history, tmp_path):
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    later = world.last_history_day + timedelta(days=2)
    with pytest.raises(FileNotFoundError, match="stepped in order"):
        world.step(later, sends_to([], later), landing)
    with pytest.raises(ValueError, match="ESP ids the ESP does not know"):
        world.step(world.last_history_day + timedelta(days=1), sends_to(["E99999999"], later), landing)


def test_the_scripted_shift_changes_the_segment_on_its_day(history, tmp_path):
    config, _ = history
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    shift = config.shift
    segment = np.flatnonzero((world.people.top_category == shift.category) & world.people.in_esp)
    esp = pd.Series(subscriber_ids(world.people.person_id[segment], ESP).to_numpy(zero_copy_only=False))
    before = world.last_history_day + timedelta(days=shift.live_day - 1)
    on = before + timedelta(days=1)
    rows = world.rows_of(esp)
    assert (world.shift_responsiveness(rows, before) == 1.0).all()
    assert (world.shift_responsiveness(rows, on) == shift.responsiveness_factor).all()
    assert (world.demand_factor(rows, on) == shift.demand_factor).all()


def test_a_send_scheduled_for_its_own_time_leaves_then_and_one_outside_the_day_is_refused(history, tmp_path):
    landing, oracle = fresh_copy(history, tmp_path)
    world = World(oracle)
    day = world.last_history_day + timedelta(days=1)
    planned = sends_to(esp_contacts(world).sample(400, random_state=2), day)
    start = pd.Timestamp(day)
    # Half scheduled across the day (UTC), half left to the ESP's campaign launch.
    scheduled = [start + pd.Timedelta(hours=int(h)) for h in np.arange(len(planned)) % 24]
    planned["scheduled_at"] = [at if i % 2 == 0 else pd.NaT for i, at in enumerate(scheduled)]
    with pytest.raises(ValueError, match="1 sends are scheduled outside"):
        world.step(day, planned.assign(scheduled_at=planned["scheduled_at"].where(planned.index != 0, start - pd.Timedelta(minutes=1))), landing)
    world.step(day, planned, landing)
    sends = landed(landing, "sends").merge(planned, on="send_id")
    sent_at = pd.to_datetime(sends["sent_at"])
    own = sends["scheduled_at"].notna()
    lag = (sent_at[own] - pd.to_datetime(sends.loc[own, "scheduled_at"])).dt.total_seconds()
    assert own.sum() > 150 and lag.between(0, 5 * 60).all()
    # The rest leave with the day's campaign, within two hours of its launch.
    launch = pd.Timestamp(world.launch_time(day), unit="s")
    assert ((sent_at[~own] - launch).dt.total_seconds().between(0, 2 * 3600)).all()
