"""The bandit's declaration, its matured rewards, and the day-stratified readout that stays
right where the naive pooled lift is wrong."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.experiments.bandit import ThompsonBandit
from ml.experiments.bandit_readout import (
    arm_totals, bandit_guardrail_check, counts_of, cumulative_lifts, daily_reward_counts, guardrail_holds,
    guardrail_holds_from_counts, matured_counts, matured_rewards, reward_counts, stratified_lift,
)
from ml.experiments.decision import DecisionRule
from ml.experiments.design import (
    BANDIT_EXPERIMENT_ID, FIXED_EXPERIMENT_ID, BanditAllocation, ExperimentDesign, declared_design,
)

DAY = date(2026, 7, 1)


# ----------------------------------------------------------------------------- the declaration


def test_one_declaration_says_fixed_or_bandit():
    fixed, bandit = declared_design(FIXED_EXPERIMENT_ID), declared_design(BANDIT_EXPERIMENT_ID)
    assert not fixed.is_bandit and bandit.is_bandit
    assert fixed.arms == bandit.arms and bandit.arms["holdout"] == 0.10
    declared = ThompsonBandit.declared(bandit)
    assert declared.arms == ("control", "variant_a", "variant_b", "variant_c")
    assert (declared.seed, declared.exploration_floor) == (bandit.bandit.seed, bandit.bandit.exploration_floor)
    with pytest.raises(ValueError, match="fixed split"):
        ThompsonBandit.declared(fixed)
    # An id declared nowhere is the fixed multi-arm test under that id.
    assert not declared_design("my-test").is_bandit and declared_design("my-test").arms == fixed.arms


def test_a_bandit_keeps_its_holdout_first_and_needs_two_arms_besides():
    with pytest.raises(ValueError, match="holdout first"):
        ExperimentDesign("x", arms={"control": 0.5, "holdout": 0.1, "t": 0.4}, bandit=BanditAllocation())
    with pytest.raises(ValueError, match="holdout first"):
        ExperimentDesign("x", arms={"holdout": 0.1, "control": 0.9}, bandit=BanditAllocation())
    with pytest.raises(ValueError, match="reward_days"):
        BanditAllocation(reward_days=0)


# ----------------------------------------------------------------------------- rewards


def test_only_matured_sends_count_and_a_reward_is_an_order_inside_the_window():
    as_of = datetime(2026, 7, 3, 23, 59, 59)
    sends = pd.DataFrame({
        "send_id": ["s1", "s2", "s3", "s4", "s5"],
        "subscriber_key": ["a", "b", "c", "d", "e"],
        "arm": ["control", "control", "variant_a", "variant_a", "variant_a"],
        "sent_at": pd.to_datetime(["2026-07-01 10:00", "2026-07-01 11:00", "2026-07-02 09:00",
                                   "2026-07-02 20:00", "2026-07-03 08:00"]),
    })
    orders = pd.DataFrame({
        "subscriber_key": ["a", "b", "c", "d", "e", "x"],
        # a: inside; b: a day and an hour later (outside); c: before the send; d: inside;
        # e: inside, but e's send has not matured
        "ordered_at": pd.to_datetime(["2026-07-02 09:59", "2026-07-02 12:00", "2026-07-02 08:00",
                                      "2026-07-03 19:00", "2026-07-03 09:00", "2026-07-01 12:00"]),
    })
    rewards = matured_rewards(sends, orders, as_of=as_of, reward_days=1)
    assert rewards.set_index("send_id")["rewarded"].to_dict() == {"s1": True, "s2": False, "s3": False, "s4": True}
    assert reward_counts(rewards).to_dict("records") == [
        {"arm": "control", "successes": 1, "n": 2}, {"arm": "variant_a", "successes": 1, "n": 2}]
    assert daily_reward_counts(rewards)[["day", "arm", "n"]].values.tolist() == [
        [date(2026, 7, 1), "control", 2], [date(2026, 7, 2), "variant_a", 2]]
    # With a two-day window, s3 and s4 have not matured by as_of and s2's order counts.
    two = matured_rewards(sends, orders, as_of=as_of, reward_days=2)
    assert two.set_index("send_id")["rewarded"].to_dict() == {"s1": True, "s2": True}


def test_a_click_reward_is_the_emails_click_inside_the_window_and_guardrails_ride_along():
    as_of = datetime(2026, 7, 3, 23, 59, 59)
    sends = pd.DataFrame({
        "send_id": ["s1", "s2", "s3", "s4"], "subscriber_key": ["a", "b", "c", "d"],
        "arm": ["control", "control", "variant_a", "variant_a"],
        "sent_at": pd.to_datetime(["2026-07-01 10:00", "2026-07-01 11:00", "2026-07-02 09:00", "2026-07-03 08:00"]),
    })
    # a bought but never clicked; s2 clicked a day and an hour late; s3 clicked and unsubscribed in time;
    # s4 has not matured. An open is not a click.
    orders = pd.DataFrame({"subscriber_key": ["a"], "ordered_at": pd.to_datetime(["2026-07-01 12:00"])})
    events = pd.DataFrame({
        "send_id": ["s1", "s2", "s3", "s3", "s4"], "event_type": ["open", "click", "click", "unsubscribe", "click"],
        "occurred_at": pd.to_datetime(["2026-07-01 10:30", "2026-07-02 12:00", "2026-07-02 09:30",
                                       "2026-07-02 10:00", "2026-07-03 09:00"]),
    })
    clicks = matured_rewards(sends, orders, as_of=as_of, reward_days=1, metric="click", events=events).set_index("send_id")
    assert clicks["rewarded"].to_dict() == {"s1": False, "s2": False, "s3": True}
    assert clicks["unsubscribed"].to_dict() == {"s1": False, "s2": False, "s3": True}
    assert not clicks["complained"].any()
    opens = matured_rewards(sends, orders, as_of=as_of, reward_days=1, metric="open", events=events)
    assert opens.set_index("send_id")["rewarded"].to_dict() == {"s1": True, "s2": False, "s3": False}
    purchases = matured_rewards(sends, orders, as_of=as_of, reward_days=1, events=events)
    assert purchases.set_index("send_id")["rewarded"].to_dict() == {"s1": True, "s2": False, "s3": False}
    with pytest.raises(ValueError, match="pass events"):
        matured_rewards(sends, orders, as_of=as_of, reward_days=1, metric="click")
    with pytest.raises(ValueError, match="reward metric"):
        matured_rewards(sends, orders, as_of=as_of, reward_days=1, metric="revenue", events=events)


def test_one_count_of_the_outcomes_gives_the_reward_the_readout_and_the_guardrails_of_each_window():
    """matured_counts reads the sends, orders and events once for the bandit's reward (a click
    within a day) and the readout's purchase (within two days); each slice equals what
    matured_rewards and its daily counts give for that metric and window alone."""
    as_of = datetime(2026, 7, 4, 23, 59, 59)
    rng = np.random.default_rng(3)
    n = 400
    sends = pd.DataFrame({"send_id": [f"s{i}" for i in range(n)], "subscriber_key": [f"k{i % 300}" for i in range(n)],
                          "arm": rng.choice(["control", "variant_a"], n),
                          "sent_at": pd.Timestamp("2026-07-01 08:00") + pd.to_timedelta(rng.integers(0, 80, n), "h")})
    orders = pd.DataFrame({"subscriber_key": [f"k{i}" for i in rng.integers(0, 300, 120)],
                           "ordered_at": pd.Timestamp("2026-07-01") + pd.to_timedelta(rng.integers(0, 100, 120), "h")})
    picked = rng.integers(0, n, 200)
    events = pd.DataFrame({"send_id": sends["send_id"].to_numpy()[picked],
                           "event_type": rng.choice(["click", "open", "unsubscribe", "complaint"], 200),
                           "occurred_at": sends["sent_at"].to_numpy()[picked] + pd.to_timedelta(rng.integers(0, 40, 200), "h")})
    counts = matured_counts(sends, orders, events, as_of=as_of, windows=[("click", 1), ("purchase", 2)])
    assert sorted(set(zip(counts["metric"], counts["window_days"]))) == [
        ("click", 1), ("complaint_rate", 1), ("complaint_rate", 2), ("purchase", 2), ("unsubscribe_rate", 1),
        ("unsubscribe_rate", 2)]
    for metric, days in (("click", 1), ("purchase", 2)):
        rewards = matured_rewards(sends, orders, as_of=as_of, reward_days=days, metric=metric, events=events)
        pd.testing.assert_frame_equal(counts_of(counts, metric, days), daily_reward_counts(rewards))
        pd.testing.assert_frame_equal(counts_of(counts, "unsubscribe_rate", days),
                                      daily_reward_counts(rewards, "unsubscribed"))
    clicks = matured_rewards(sends, orders, as_of=as_of, reward_days=1, metric="click", events=events)
    pd.testing.assert_frame_equal(arm_totals(counts_of(counts, "click", 1)), reward_counts(clicks))
    assert counts_of(counts, "click", 1)["successes"].sum() > 0 and counts_of(counts, "purchase", 2)["successes"].sum() > 0
    # A purchase reward in the primary window is counted once, guardrails included.
    same = matured_counts(sends, orders, events, as_of=as_of, windows=[("purchase", 2), ("purchase", 2)])
    assert not same.duplicated(["metric", "window_days", "day", "arm"]).any()


def guardrail_rewards(unsubscribed: dict[str, int], n: int = 2_000, days: int = 2) -> pd.DataFrame:
    """`days` days of `n` matured sends per arm a day, `unsubscribed[arm]` of them unsubscribing each day."""
    return pd.DataFrame([
        {"send_id": f"{arm}{d}-{i}", "arm": arm, "sent_day": DAY + timedelta(d), "rewarded": False,
         "unsubscribed": i < k, "complained": False}
        for arm, k in unsubscribed.items() for d in range(days) for i in range(n)])


def test_an_arm_whose_unsubscribe_rate_is_significantly_above_controls_is_held_with_the_reason():
    rule = DecisionRule("conversion_rate")
    rewards = guardrail_rewards({"control": 10, "variant_a": 100, "variant_b": 14})
    held = guardrail_holds(rewards, ["control", "variant_a", "variant_b"], "control", rule, planned_sample_size=8_000)
    assert list(held) == ["variant_a"]
    expected = stratified_lift(daily_reward_counts(rewards, "unsubscribed"), "variant_a", "control",
                               planned_sample_size=8_000)
    assert expected.lift == pytest.approx(0.045) and expected.ci_low > 0
    assert held["variant_a"] == (f"guardrail unsubscribe_rate breached against control over 2 days (8,000 matured "
                                 f"sends): difference +0.045, always-valid CI [{expected.ci_low:+.4g}, "
                                 f"{expected.ci_high:+.4g}]")
    # The same from the daily counts alone.
    daily = {"unsubscribe_rate": daily_reward_counts(rewards, "unsubscribed"),
             "complaint_rate": daily_reward_counts(rewards, "complained")}
    assert guardrail_holds_from_counts(daily, ["control", "variant_a", "variant_b"], "control", rule,
                                       planned_sample_size=8_000) == held
    # variant_b's 0.2 pp more is within the noise; a lower rate is no harm.
    assert guardrail_holds(guardrail_rewards({"control": 100, "variant_a": 10}), ["control", "variant_a"], "control",
                           rule, planned_sample_size=8_000) == {}
    with pytest.raises(ValueError, match="guardrail flag"):
        guardrail_holds(rewards.drop(columns="complained"), ["control", "variant_a"], "control", rule,
                        planned_sample_size=8_000)


def allocation_days(held: dict[int, dict[str, str]], arms=("control", "variant_a", "variant_b")) -> pd.DataFrame:
    """Allocation rows for days 0..max(held): `held[day][arm]` is the arm's held_reason that day."""
    return pd.DataFrame([{"allocated_on": DAY + timedelta(d), "arm": arm, "held_reason": held[d].get(arm, "")}
                         for d in range(max(held) + 1) for arm in arms])


def test_the_bandit_guardrail_check_passes_when_every_breach_is_held_and_says_since_when():
    # variant_a held on days 1-3, released on 2, held again on 3 and 4: held since day 3, two days.
    allocations = allocation_days({0: {}, 1: {"variant_a": "old"}, 2: {}, 3: {"variant_a": "unsub day 3"},
                                   4: {"variant_a": "unsub day 4"}})
    check = bandit_guardrail_check(allocations, {"variant_a": "readout: unsub"})
    assert check.outcome == "pass" and check.passed and check.allocated_on == DAY + timedelta(4)
    assert check.held.to_dict("records") == [{"arm": "variant_a", "held_since": DAY + timedelta(3), "days_held": 2,
                                              "reason": "unsub day 4"}]
    assert check.unheld_breaches == {} and check.unconfirmed_holds == ()
    assert check.summary() == (f"held at the exploration floor on {DAY + timedelta(4)}: variant_a since "
                               f"{DAY + timedelta(3)} (unsub day 4)")
    # Nothing held, nothing breached: a pass too.
    quiet = bandit_guardrail_check(allocation_days({0: {}, 1: {}}), {})
    assert quiet.outcome == "pass" and quiet.held.empty


def test_the_bandit_guardrail_check_fails_on_a_breach_the_allocation_does_not_hold():
    # variant_b breaches in the readout, but only variant_a is held on the latest day (variant_b was held before).
    allocations = allocation_days({0: {"variant_b": "earlier"}, 1: {"variant_a": "unsub"}})
    check = bandit_guardrail_check(allocations, {"variant_a": "unsub", "variant_b": "complaints"})
    assert check.outcome == "fail" and not check.passed
    assert check.unheld_breaches == {"variant_b": "complaints"} and list(check.held["arm"]) == ["variant_a"]
    assert check.held["held_since"].tolist() == [DAY + timedelta(1)]
    # Before any allocation a breach is unheld as well.
    empty = allocation_days({0: {}}).iloc[:0]
    assert bandit_guardrail_check(empty, {"variant_a": "x"}).outcome == "fail"
    assert bandit_guardrail_check(empty, {}).outcome == "pass"


def test_the_bandit_guardrail_check_warns_on_a_hold_the_readout_does_not_confirm():
    check = bandit_guardrail_check(allocation_days({0: {"variant_a": "unsub"}, 1: {"variant_a": "unsub"}}), {})
    assert check.outcome == "warn" and not check.passed and check.unconfirmed_holds == ("variant_a",)
    assert check.held[["arm", "held_since", "days_held"]].values.tolist() == [["variant_a", DAY, 2]]
    with pytest.raises(ValueError, match="more than one row"):
        bandit_guardrail_check(pd.concat([allocation_days({0: {}})] * 2), {})


def test_a_proxy_reward_must_be_declared_with_its_justification():
    declared = declared_design(BANDIT_EXPERIMENT_ID).bandit
    assert (declared.reward_metric, declared.reward_days, declared.primary_days) == ("click", 1, 2)
    assert "rank the same on clicks as on purchases" in declared.reward_justification
    with pytest.raises(ValueError, match="reward_justification"):
        BanditAllocation(reward_metric="click")
    with pytest.raises(ValueError, match="reward_metric"):
        BanditAllocation(reward_metric="revenue", reward_justification="x")
    with pytest.raises(ValueError, match="primary_days"):
        BanditAllocation(primary_days=0)
    assert BanditAllocation().reward_metric == "purchase"


# ----------------------------------------------------------------------------- stratified readout


def daily(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["day", "arm", "successes", "n"])


def drifting_days(lift: float) -> pd.DataFrame:
    """Two days in expectation: the base rate falls from 10% to 2% while the bandit moves
    traffic from control to variant_a (80/20, then 20/80); variant_a is `lift` above control
    on both days."""
    return daily([
        (DAY, "control", 800 * 0.10, 800), (DAY, "variant_a", 200 * (0.10 + lift), 200),
        (DAY + timedelta(1), "control", 200 * 0.02, 200), (DAY + timedelta(1), "variant_a", 800 * (0.02 + lift), 800),
    ])


@pytest.mark.parametrize("lift", [0.0, 0.01])
def test_the_stratified_lift_is_right_where_the_naive_pooled_one_is_wrong(lift):
    estimate = stratified_lift(drifting_days(lift), "variant_a", "control", planned_sample_size=2_000)
    assert estimate.lift == pytest.approx(lift, abs=1e-12)
    # Pooled, variant_a's sends sit on the low-rate day: (20 + 16) / 1000 against (80 + 4) / 1000.
    assert estimate.naive_lift == pytest.approx((200 * (0.10 + lift) + 800 * (0.02 + lift)) / 1000 - 0.084)
    assert estimate.naive_lift < lift - 0.03
    assert (estimate.days, estimate.n) == (2, 2000)
    assert estimate.ci_low < lift < estimate.ci_high


def test_stratified_is_unbiased_and_pooled_biased_over_seeded_runs():
    """300 seeded runs of the drifting days with binomial outcomes and a true lift of +1 pp."""
    rng = np.random.default_rng(5)
    truth = drifting_days(0.01)
    rates = truth["successes"] / truth["n"]
    stratified, naive = [], []
    for _ in range(300):
        run = truth.assign(successes=rng.binomial(truth["n"], rates))
        estimate = stratified_lift(run, "variant_a", "control", planned_sample_size=2_000)
        stratified.append(estimate.lift)
        naive.append(estimate.naive_lift)
    stratified, naive = np.array(stratified), np.array(naive)
    standard_error = stratified.std(ddof=1) / np.sqrt(len(stratified))
    assert abs(stratified.mean() - 0.01) < 4 * standard_error
    assert naive.mean() < 0.01 - 0.03  # measured: -0.038, four pp off


def test_days_without_both_arms_add_nothing_and_no_day_gives_nan():
    rows = drifting_days(0.0)
    lonely = pd.concat([rows, daily([(DAY + timedelta(2), "variant_a", 3, 100)])])
    assert stratified_lift(lonely, "variant_a", "control", planned_sample_size=2_000).lift == pytest.approx(0.0)
    empty = stratified_lift(daily([(DAY, "variant_a", 3, 100)]), "variant_a", "control", planned_sample_size=2_000)
    assert empty.days == 0 and np.isnan(empty.lift)


def test_cumulative_lifts_are_the_readout_as_it_stood_each_day():
    rows = drifting_days(0.01)
    table = cumulative_lifts(rows, ["control", "variant_a"], "control", planned_sample_size=2_000)
    assert table["through_day"].tolist() == [DAY, DAY + timedelta(1)]
    first = stratified_lift(rows[rows["day"] == DAY], "variant_a", "control", planned_sample_size=2_000)
    assert table["lift"].tolist() == pytest.approx([first.lift, 0.01])
    # More days, a narrower always-valid interval.
    widths = (table["ci_high"] - table["ci_low"]).tolist()
    assert widths[1] < widths[0]


def test_days_are_weighted_by_cochran_mantel_haenszel_and_the_error_is_the_days_binomial_one():
    rows = daily([(DAY, "control", 10, 100), (DAY, "variant_a", 11, 100),
                  (DAY + timedelta(1), "control", 90, 900), (DAY + timedelta(1), "variant_a", 13, 100)])
    estimate = stratified_lift(rows, "variant_a", "control", planned_sample_size=2_000)
    weights = np.array([100 * 100 / 200, 900 * 100 / 1000])  # 50 and 90
    assert estimate.lift == pytest.approx((50 * 0.01 + 90 * 0.03) / 140)
    variances = np.array([0.11 * 0.89 / 100 + 0.1 * 0.9 / 100, 0.13 * 0.87 / 100 + 0.1 * 0.9 / 900])
    assert estimate.standard_error == pytest.approx(np.sqrt((weights**2 * variances).sum()) / weights.sum())
