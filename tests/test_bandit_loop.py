"""A bandit campaign through the orchestrator, day after day (issue 11 section 3): the real
experiment_assignments and experiment_report assets on a small hand-made warehouse (no dbt,
no model), a few seconds.

Day 0 assigns and its members are planned a send on day 1; day 1's sends land with their
clicks (the declared bandit's reward: variant_b's recipients click far more often) and
orders; day 1's allocation cannot see them yet (their reward window closes on day 2) and day
2's does. So the two loop days' slices differ because of day 1's outcomes, and only because
of them: with the same sends and no events, day 2's weights stay near an even split."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ml.decisioning.send_plan import campaign_id, send_plan_id
from ml.experiments.bandit import ALLOCATION_MLFLOW_EXPERIMENT, ThompsonBandit
from ml.experiments.bandit_readout import stratified_lift
from ml.experiments.design import BANDIT_EXPERIMENT_ID, declared_design
from orchestration import tables
from orchestration.defs.campaign import experiment_assignments, experiment_report
from orchestration.resources import PipelineSettings

DAY0 = date(2026, 6, 29)
DAY1, DAY2 = DAY0 + timedelta(1), DAY0 + timedelta(2)
PEOPLE = 3_000
DESIGN = declared_design(BANDIT_EXPERIMENT_ID)
# Click chance within a day of the send, by arm (the bandit's reward), and purchase chance.
CLICK_RATE = {"control": 0.03, "variant_a": 0.03, "variant_b": 0.30, "variant_c": 0.03}
BUY_RATE = {"control": 0.02, "variant_a": 0.02, "variant_b": 0.20, "variant_c": 0.02}
DAY3 = DAY0 + timedelta(3)


def materialise(settings: PipelineSettings, day: date, assets=(experiment_assignments,)) -> dg.ExecuteInProcessResult:
    result = dg.materialize(list(assets), partition_key=day.isoformat(), resources={"settings": settings},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success, [event.event_specific_data for event in result.get_step_failure_events()]
    return result


def allocation(settings: PipelineSettings, day: date) -> pd.DataFrame:
    return settings.warehouse().read(
        f"select * from {tables.BANDIT_ALLOCATIONS} where allocated_on = ? order by arm", [day])


def land_day1(settings: PipelineSettings, *, outcomes: bool, unsubscribe_rate: dict | None = None) -> None:
    """Day 0's plan for day 1 (everyone outside the holdout), its sends landed on day 1, and
    the clicks (an hour after the send), unsubscribes (`unsubscribe_rate` by arm) and orders
    (within the day) of day 1's recipients, seeded; none without `outcomes`."""
    warehouse = settings.warehouse()
    members = warehouse.read(f"select subscriber_key, arm from {tables.EXPERIMENT_ASSIGNMENTS} "
                             "where assigned_on = ? and arm <> 'holdout' order by subscriber_key", [DAY0])
    send_ids = [send_plan_id(DESIGN.experiment_id, DAY1, key) for key in members["subscriber_key"]]
    warehouse.write_table(members.assign(
        send_plan_id=send_ids, experiment_id=DESIGN.experiment_id, planned_for=pd.Timestamp(DAY1),
        planned_at=settings.as_of(DAY0)), tables.PLANNED_SENDS)
    sent_at = pd.Timestamp(DAY1) + pd.Timedelta(hours=10)
    campaign = campaign_id(DESIGN.experiment_id, DAY1)
    warehouse.write_table(pd.DataFrame({
        "send_id": send_ids, "campaign_id": campaign, "subscriber_key": members["subscriber_key"], "sent_at": sent_at}),
        tables.FCT_SENDS)
    rng = np.random.default_rng(4)
    draws = rng.random((3, len(members)))
    clicks = outcomes & (draws[0] < members["arm"].map(CLICK_RATE).to_numpy())
    unsubscribes = outcomes & (draws[1] < members["arm"].map(unsubscribe_rate or {}).fillna(0.0).to_numpy())
    buys = outcomes & (draws[2] < members["arm"].map(BUY_RATE).to_numpy())
    send_id = pd.Series(send_ids)
    warehouse.write_table(pd.concat([
        pd.DataFrame({"send_id": send_id[clicks], "event_type": "click", "occurred_at": sent_at + pd.Timedelta(hours=1)}),
        pd.DataFrame({"send_id": send_id[unsubscribes], "event_type": "unsubscribe",
                      "occurred_at": sent_at + pd.Timedelta(hours=2)}),
    ], ignore_index=True).assign(campaign_id=campaign), tables.FCT_EMAIL_EVENTS)
    warehouse.write_table(pd.DataFrame({
        "subscriber_key": members.loc[buys, "subscriber_key"], "ordered_at": sent_at + pd.Timedelta(hours=5),
        "amount_usd": 30.0}), tables.FCT_ORDERS)


@pytest.fixture(scope="module")
def day0_state(tmp_path_factory) -> Path:
    """A state whose day 0 has run: its assignment, allocation slice and MLflow run (made once:
    the MLflow store's creation is most of the time)."""
    state = tmp_path_factory.mktemp("bandit") / "state"
    settings = PipelineSettings(state_dir=str(state), experiment_id=BANDIT_EXPERIMENT_ID)
    state.mkdir(parents=True, exist_ok=True)
    keys = [f"k{i:05d}" for i in range(PEOPLE)]
    settings.warehouse().write_table(pd.DataFrame({
        "subscriber_key": keys * 4, "scored_on": [pd.Timestamp(d) for d in (DAY0, DAY1, DAY2, DAY3) for _ in keys]}),
        tables.PROPENSITY_SCORES)
    materialise(settings, DAY0)
    return state


@pytest.fixture
def bandit_state(day0_state, tmp_path) -> PipelineSettings:
    """A copy of the day-0 state for one test."""
    shutil.copytree(day0_state, tmp_path / "state")
    return PipelineSettings(state_dir=str(tmp_path / "state"), experiment_id=BANDIT_EXPERIMENT_ID)


def test_two_loop_days_give_two_slices_the_second_moved_by_the_first_days_outcomes(bandit_state):
    settings = bandit_state
    land_day1(settings, outcomes=True)
    materialise(settings, DAY1)
    first = allocation(settings, DAY1)
    assert first["units"].sum() == 0  # day 1's sends have not matured by day 1's end
    materialise(settings, DAY2)
    second = allocation(settings, DAY2).set_index("arm")
    sent = settings.warehouse().read(f"select arm, count(*) as n from {tables.PLANNED_SENDS} group by arm order by arm")
    assert second["units"].to_dict() == dict(zip(sent["arm"], sent["n"]))
    # The successes are day 1's clicks (the declared reward), not its orders.
    assert second["successes"].sum() == len(settings.warehouse().read_table(tables.FCT_EMAIL_EVENTS))
    assert second["successes"].sum() != len(settings.warehouse().read_table(tables.FCT_ORDERS))
    assert set(second["metric"]) == {"click"} and (second["held_reason"] == "").all()
    # variant_b's recipients clicked most: it now has most of the traffic; the others keep the floor.
    floor = DESIGN.bandit.exploration_floor
    assert second.loc["variant_b", "weight"] == pytest.approx(1 - 3 * floor)
    assert first.set_index("arm").loc["variant_b", "weight"] < 0.3
    # The day's assignment follows the day's weights; the holdout is the same people every day.
    assigned = settings.warehouse().read(
        f"select assigned_on, arm, list(subscriber_key order by subscriber_key) as members, count(*) as n "
        f"from {tables.EXPERIMENT_ASSIGNMENTS} group by all")
    by_day = assigned.set_index(["assigned_on", "arm"])
    holdouts = [by_day.loc[(pd.Timestamp(d), "holdout"), "members"].tolist() for d in (DAY0, DAY1, DAY2)]
    assert holdouts[0] == holdouts[1] == holdouts[2]
    day2 = by_day.xs(pd.Timestamp(DAY2))["n"]
    assert day2["variant_b"] / PEOPLE == pytest.approx(second.loc["variant_b", "traffic_share"], abs=0.03)
    # One MLflow run per day, holding the day's weights.
    client = settings.mlflow_client()
    runs = client.search_runs([client.get_experiment_by_name(ALLOCATION_MLFLOW_EXPERIMENT).experiment_id])
    assert sorted(run.data.tags["allocated_on"] for run in runs) == [d.isoformat() for d in (DAY0, DAY1, DAY2)]
    day2_run = next(run for run in runs if run.data.tags["allocated_on"] == DAY2.isoformat())
    assert day2_run.info.run_id == second["mlflow_run_id"].iloc[0]
    assert day2_run.data.metrics["variant_b.weight"] == pytest.approx(second.loc["variant_b", "weight"])

    # Re-running day 2 gives the same weights and the same people in each arm, and still one run for the day.
    before = settings.warehouse().read(f"select * from {tables.EXPERIMENT_ASSIGNMENTS} where assigned_on = ? "
                                       "order by subscriber_key", [DAY2])
    materialise(settings, DAY2)
    again = allocation(settings, DAY2).set_index("arm")
    pd.testing.assert_frame_equal(again.drop(columns="mlflow_run_id"), second.drop(columns="mlflow_run_id"))
    pd.testing.assert_frame_equal(before, settings.warehouse().read(
        f"select * from {tables.EXPERIMENT_ASSIGNMENTS} where assigned_on = ? order by subscriber_key", [DAY2]))
    runs = client.search_runs([client.get_experiment_by_name(ALLOCATION_MLFLOW_EXPERIMENT).experiment_id])
    assert sorted(run.data.tags["allocated_on"] for run in runs) == [d.isoformat() for d in (DAY0, DAY1, DAY2)]


def test_without_the_first_days_outcomes_the_second_day_stays_at_the_no_data_weights(bandit_state):
    settings = bandit_state
    land_day1(settings, outcomes=False)
    materialise(settings, DAY2)
    second = allocation(settings, DAY2)
    assert second["units"].sum() > 0 and second["successes"].sum() == 0
    # Equal counts on every arm: no arm is favoured beyond the Monte Carlo's noise.
    assert second["weight"].to_numpy() == pytest.approx([0.25] * 4, abs=0.01)


def test_the_bandit_report_reads_each_day_stratified_and_says_it_is_a_bandit(bandit_state):
    settings = bandit_state
    land_day1(settings, outcomes=True)
    materialise(settings, DAY1)
    materialise(settings, DAY2)
    # Day 1's sends' primary window (a purchase within primary_days = 2 days) closes on day 3.
    assert DESIGN.bandit.primary_days == 2
    result = materialise(settings, DAY3, (experiment_assignments, experiment_report))
    twin = json.loads((settings.reports_path() / f"experiment_report_{BANDIT_EXPERIMENT_ID}_{DAY3}.json").read_text())
    assert twin["readout"] == "bandit" and twin["srm_passed"]
    # The lift printed is the stratified lift of the landed purchases (the primary metric), not of the clicks.
    rows = settings.warehouse().read(
        f"select p.arm, count(*) as n, count(o.subscriber_key) as successes from {tables.PLANNED_SENDS} p "
        f"left join {tables.FCT_ORDERS} o using (subscriber_key) group by all")
    expected = stratified_lift(rows.assign(day=DAY1), "variant_b", "control", planned_sample_size=DESIGN.planned_members)
    shown = next(row for row in twin["lifts"] if row["arm"] == "variant_b" and row["through_day"] == str(DAY1))
    assert shown["lift"] == pytest.approx(expected.lift) and shown["ci_low"] == pytest.approx(expected.ci_low)
    page = (settings.reports_path() / f"experiment_report_{BANDIT_EXPERIMENT_ID}_{DAY3}.html").read_text()
    assert 'data-readout="bandit"' in page and page.count("data:image/png;base64,") == 3
    checks = {check.check_name: check.passed for check in result.get_asset_check_evaluations()}
    assert checks["sample_ratio_matches_design"]


def test_an_arm_that_breaches_a_guardrail_is_held_at_the_floor_with_the_reason(bandit_state):
    """variant_b earns the most clicks, but 10% of its recipients unsubscribe against 0.5% of
    control's: on day 2 it keeps only the exploration floor, and the table says why."""
    settings = bandit_state
    land_day1(settings, outcomes=True, unsubscribe_rate={"control": 0.005, "variant_a": 0.005,
                                                         "variant_b": 0.10, "variant_c": 0.005})
    materialise(settings, DAY2)
    second = allocation(settings, DAY2).set_index("arm")
    floor = DESIGN.bandit.exploration_floor
    assert second.loc["variant_b", "weight"] == pytest.approx(floor)
    assert second.loc["variant_b", "held_reason"].startswith("guardrail unsubscribe_rate breached against control")
    assert (second.drop(index="variant_b")["held_reason"] == "").all()
    assert second["weight"].sum() == pytest.approx(1.0)
    # The others share the rest by their chance of being the best of them.
    others = second.drop(index="variant_b")
    assert others["weight"].to_numpy() == pytest.approx(floor + (1 - 4 * floor) * others["probability_best"].to_numpy())


def test_the_reports_guardrail_check_lists_the_held_arm_and_fails_when_a_breach_is_not_held(bandit_state):
    """The readout's own sends (day 1's, read on day 3 in the purchase window) show variant_b's
    unsubscribes; the allocation has held it since day 2: the check passes and says so. With
    the day's hold erased from ml.bandit_allocations, the same readout fails the check."""
    settings = bandit_state
    land_day1(settings, outcomes=True, unsubscribe_rate={"control": 0.005, "variant_a": 0.005,
                                                         "variant_b": 0.10, "variant_c": 0.005})
    materialise(settings, DAY2)
    result = materialise(settings, DAY3, (experiment_assignments, experiment_report))
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "guardrails_hold")
    assert check.passed
    held = check.metadata["held"].value
    assert "variant_b" in held and str(DAY2) in held and "guardrail unsubscribe_rate breached" in held
    assert check.metadata["allocated_on"].value == str(DAY3)
    assert check.metadata["breached_not_held"].value == "none"
    # The same readout against an allocation that let variant_b's traffic run.
    with settings.warehouse().connect() as connection:
        connection.execute(f"update {tables.BANDIT_ALLOCATIONS} set held_reason = '' where allocated_on = ?", [DAY3])
    result = materialise(settings, DAY3, (experiment_report,))
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "guardrails_hold")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["breached_not_held"].value.startswith("variant_b: guardrail unsubscribe_rate breached")


def test_the_bandit_report_reads_the_outcomes_its_days_allocation_counted_not_the_marts_again(bandit_state):
    """A bandit day reads the sends, orders and events once, in the allocation, and keeps the
    counts as the day's slice of ml.bandit_reward_counts; the report reads that slice. With
    the three marts gone after the allocation, the report gives the same figures."""
    settings = bandit_state
    land_day1(settings, outcomes=True, unsubscribe_rate={"control": 0.005, "variant_a": 0.005,
                                                         "variant_b": 0.10, "variant_c": 0.005})
    materialise(settings, DAY2)
    materialise(settings, DAY3)
    counts = settings.warehouse().read(f"select * from {tables.BANDIT_REWARD_COUNTS} where counted_on = ?", [DAY3])
    assert {("click", 1), ("purchase", 2), ("unsubscribe_rate", 1), ("unsubscribe_rate", 2)} <= set(
        zip(counts["metric"], counts["window_days"]))
    twin_path = settings.reports_path() / f"experiment_report_{BANDIT_EXPERIMENT_ID}_{DAY3}.json"
    first = materialise(settings, DAY3, (experiment_report,))
    with_marts = json.loads(twin_path.read_text())
    with settings.warehouse().connect() as connection:
        for table in (tables.FCT_SENDS, tables.FCT_ORDERS, tables.FCT_EMAIL_EVENTS):
            connection.execute(f"drop table {table}")
    second = materialise(settings, DAY3, (experiment_report,))
    assert json.loads(twin_path.read_text()) == with_marts
    assert any(row["n"] > 0 for row in with_marts["lifts"])
    check = {run: next(c for c in result.get_asset_check_evaluations() if c.check_name == "guardrails_hold")
             for run, result in (("first", first), ("second", second))}
    assert check["first"].passed and check["first"].metadata == check["second"].metadata
