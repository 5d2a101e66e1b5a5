"""Send-time optimisation: own history, shrinkage to the segment, fallbacks, quiet hours across
midnight and across daylight-saving changes in the person's own time zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from ml.decisioning.send_time import (
    PRIOR_STRENGTH_GRID, SendTimePolicy, best_hours, empirical_bayes_strength, local_hours, plan_send_times,
    schedule_on, send_time_readout,
)

POLICY = SendTimePolicy()
NO_EXPERIMENT = SendTimePolicy(fixed_hour_share=0.0)


def opens_at(key: str, local_hours_: list[int], tz: str, day: date = date(2026, 6, 1)) -> pd.DataFrame:
    """Opens of `key` at these local hours, one per day, as UTC instants."""
    moments = [
        datetime(day.year, day.month, day.day, hour, 15, tzinfo=ZoneInfo(tz)) + timedelta(days=i)
        for i, hour in enumerate(local_hours_)
    ]
    return pd.DataFrame({"subscriber_key": key, "opened_at": [m.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) for m in moments]})


def test_open_hours_are_read_in_local_time_across_a_dst_change():
    # 13:00 UTC is 09:00 in New York in summer (EDT) and 08:00 in winter (EST).
    instants = pd.Series(pd.to_datetime(["2026-07-01 13:00", "2026-12-01 13:00", "2026-12-01 13:00"]))
    assert local_hours(instants, pd.Series(["America/New_York", "America/New_York", None])).tolist() == [9, 8, 13]


def test_a_person_with_enough_opens_gets_their_own_hour_shrunk_toward_the_segment():
    segment_crowd = pd.concat([opens_at(f"c{i}", [19] * 5, "Europe/Berlin") for i in range(20)])
    own = opens_at("me", [7, 7, 7, 7, 7, 7, 7, 7], "Asia/Tokyo")
    few = opens_at("few", [7], "Asia/Tokyo")
    profiles = pd.DataFrame({
        "subscriber_key": ["me", "few", "nobody"] + [f"c{i}" for i in range(20)],
        "timezone": ["Asia/Tokyo", "Asia/Tokyo", "Europe/Berlin"] + ["Europe/Berlin"] * 20,
        "segment": "active",
    })
    hours = best_hours(pd.concat([segment_crowd, own, few]), profiles, POLICY).set_index("subscriber_key")
    # The crowd opens at 19:00 every time: empirical Bayes trusts individuals (a weak prior).
    strength = hours.loc["me", "prior_strength"]
    assert strength == PRIOR_STRENGTH_GRID[0]
    assert hours.loc["me", ["best_local_hour", "send_time_source", "own_opens"]].tolist() == [7, "own_history", 8]
    assert hours.loc["me", "send_time_confidence"] == pytest.approx(8 / (8 + strength))
    # One open is below min_opens: the source says segment, though the posterior may follow the open.
    assert hours.loc["few", "send_time_source"] == "segment"
    assert hours.loc["nobody", ["best_local_hour", "send_time_source", "send_time_confidence"]].tolist() == [19, "segment", 0.0]


def test_empirical_bayes_prefers_a_strong_prior_when_people_look_like_their_segment():
    rng = np.random.default_rng(3)
    shares = np.full(24, 1 / 24)
    alike = rng.multinomial(4, shares, size=400).astype(float)
    # Each person always opens at one hour of their own: individuals differ a lot.
    distinct = np.zeros((400, 24))
    distinct[np.arange(400), rng.integers(0, 24, 400)] = 4
    assert empirical_bayes_strength(alike, shares) >= 64
    assert empirical_bayes_strength(distinct, shares) <= 1


def test_without_a_segment_history_the_default_hour_applies():
    profiles = pd.DataFrame({"subscriber_key": ["a"], "timezone": ["Europe/Paris"], "segment": ["new"]})
    opens = opens_at("a", [3, 3, 3, 3], "Europe/Paris")
    hours = best_hours(opens, profiles, SendTimePolicy(min_segment_opens=50)).iloc[0]
    assert (hours["best_local_hour"], hours["send_time_source"]) == (POLICY.default_local_hour, "default")


@pytest.mark.parametrize(
    ("hour", "expected_local_hour"),
    [(20, 20), (21, 8), (23, 8), (0, 8), (7, 8), (8, 8), (12, 12)],
)
def test_quiet_hours_across_midnight_move_the_send_to_their_end(hour, expected_local_hour):
    at, landed = schedule_on(date(2026, 6, 2), hour, "Europe/Berlin", POLICY)
    assert landed == expected_local_hour
    assert at.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Europe/Berlin")).hour == expected_local_hour
    assert date(2026, 6, 2) == at.date()


def test_the_send_lands_inside_the_utc_send_day_for_zones_far_from_utc():
    # 10:00 in Kiritimati (UTC+14) on June 2 is June 1 20:00 UTC: the June 3 local morning is used.
    at, landed = schedule_on(date(2026, 6, 2), 10, "Pacific/Kiritimati", POLICY)
    assert (at, landed) == (datetime(2026, 6, 2, 20, 0), 10)
    at, landed = schedule_on(date(2026, 6, 2), 10, "Pacific/Pago_Pago", POLICY)  # UTC-11
    assert (at, landed) == (datetime(2026, 6, 2, 21, 0), 10)


def test_quiet_hours_hold_across_the_dst_changes_of_the_person_s_zone():
    # New York springs forward on 2026-03-08 (02:00 -> 03:00) and falls back on 2026-11-01.
    spring = SendTimePolicy(quiet_start_hour=22, quiet_end_hour=1, default_local_hour=10)
    at, landed = schedule_on(date(2026, 3, 8), 1, "America/New_York", spring)
    assert (at, landed) == (datetime(2026, 3, 8, 6, 0), 1)  # 01:00 EST, before the gap
    # 02:00 does not exist that day: it is read as 03:00 EDT (07:00 UTC), out of quiet hours.
    at, landed = schedule_on(date(2026, 3, 8), 2, "America/New_York", spring)
    assert (at, landed) == (datetime(2026, 3, 8, 7, 0), 3)
    # The same local hour is an hour later in UTC after the fall-back.
    before, _ = schedule_on(date(2026, 10, 31), 9, "America/New_York", POLICY)
    after, _ = schedule_on(date(2026, 11, 1), 9, "America/New_York", POLICY)
    assert (before.hour, after.hour) == (13, 14)
    # Quiet hours 21-8 in local time on both days.
    for day in (date(2026, 3, 8), date(2026, 11, 1)):
        for hour in range(24):
            at, landed = schedule_on(day, hour, "America/New_York", POLICY)
            local = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("America/New_York"))
            assert local.hour == landed and not POLICY.in_quiet_hours(np.array([local.hour]))[0]


def test_every_profile_gets_a_time_on_the_send_day_and_its_reason():
    profiles = pd.DataFrame({"subscriber_key": ["a", "b"], "timezone": ["Asia/Kolkata", None], "segment": "x"})
    times = plan_send_times(opens_at("a", [18] * 60, "Asia/Kolkata"), profiles, date(2026, 6, 2), NO_EXPERIMENT)
    assert times["scheduled_send_at"].dt.date.eq(date(2026, 6, 2)).all()
    assert times.set_index("subscriber_key").loc["a", ["send_local_hour", "send_time_source"]].tolist() == [18, "own_history"]
    # b (UTC, no opens of its own) takes the segment's hour.
    assert times.set_index("subscriber_key").loc["b", ["send_local_hour", "send_time_source"]].tolist() == [18, "segment"]


def test_a_default_hour_inside_the_quiet_hours_is_refused():
    with pytest.raises(ValueError, match="inside the quiet hours"):
        SendTimePolicy(default_local_hour=22)


def test_the_fixed_hour_arm_is_half_of_everyone_stable_and_sent_at_the_default_hour():
    keys = [f"key{i:05d}" for i in range(10_000)]
    profiles = pd.DataFrame({"subscriber_key": keys, "timezone": "Europe/Lisbon", "segment": "x"})
    opens = pd.concat([opens_at(key, [18] * 3, "Europe/Lisbon") for key in keys[:200]])
    times = plan_send_times(opens, profiles, date(2026, 6, 2), POLICY).set_index("subscriber_key")
    fixed = times["send_time_arm"] == "fixed_hour"
    assert abs(fixed.mean() - 0.5) < 0.02
    assert (times.loc[fixed, "send_local_hour"] == POLICY.default_local_hour).all()
    assert (times.loc[fixed, "send_time_source"] == "fixed_hour").all()
    assert (times.loc[~fixed, "send_local_hour"] == 18).all()
    again = plan_send_times(opens, profiles.iloc[::-1], date(2026, 6, 3), POLICY).set_index("subscriber_key")
    assert again["send_time_arm"].reindex(times.index).equals(times["send_time_arm"])


def test_the_readout_compares_open_rates_of_delivered_sends_with_newcombe_s_interval():
    from statsmodels.stats.proportion import confint_proportions_2indep

    outcomes = pd.DataFrame({
        "send_time_arm": ["optimised"] * 200 + ["fixed_hour"] * 210,
        "delivered": [True] * 190 + [False] * 10 + [True] * 200 + [False] * 10,
        "opened": [True] * 60 + [False] * 140 + [True] * 40 + [False] * 170,
    })
    readout = send_time_readout(outcomes)
    assert (readout.optimised_sends, readout.optimised_opens, readout.fixed_hour_sends, readout.fixed_hour_opens) == (
        190, 60, 200, 40)
    assert readout.difference == pytest.approx(60 / 190 - 40 / 200)
    low, high = confint_proportions_2indep(60, 190, 40, 200, method="newcomb", compare="diff")
    assert (readout.ci_low, readout.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert 0 < readout.ci_low < readout.difference < readout.ci_high


def test_the_plan_stores_every_send_time_column():
    from ml.decisioning.send_plan import SEND_TIME_COLUMN_TYPES
    from ml.decisioning.send_time import SEND_TIME_COLUMNS

    assert list(SEND_TIME_COLUMN_TYPES) == [c for c in SEND_TIME_COLUMNS if c != "subscriber_key"]


def test_no_profiles_and_no_sends_are_empty_states_not_errors():
    """A day with nobody to send to: no send times, and a readout of no sends (NaN rates, 0 counts)."""
    from ml.decisioning.send_time import SEND_TIME_COLUMNS

    times = plan_send_times(
        pd.DataFrame({"subscriber_key": [], "opened_at": pd.Series([], dtype="datetime64[ns]")}),
        pd.DataFrame({"subscriber_key": [], "timezone": [], "segment": []}), date(2026, 7, 1), POLICY,
    )
    assert times.empty and list(times.columns) == list(SEND_TIME_COLUMNS)
    readout = send_time_readout(pd.DataFrame({"send_time_arm": [], "delivered": [], "opened": []}))
    figures = readout.metrics()
    assert figures["optimised_sends"] == 0 and figures["fixed_hour_sends"] == 0
    assert np.isnan(figures["open_rate_difference"])
