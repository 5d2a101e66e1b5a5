"""Scoring a targeting policy against the simulator's truth (tests, benchmarks, the demo).

The expected incremental purchases of emailing a set of people is the sum of their true
uplifts. Random targeting of the same volume from the same population expects the mean
uplift times that volume, so the ratio says how much better than random the policy chose.

Recommendations are scored against the world's own product ranking per person
(`true_product_rankings`): the ceiling any recommender could reach on the same purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TargetingValue:
    emailed: int
    population: int
    policy_incremental_purchases: float
    random_incremental_purchases: float
    oracle_incremental_purchases: float  # the same volume, chosen by true uplift

    @property
    def ratio_to_random(self) -> float:
        return self.policy_incremental_purchases / self.random_incremental_purchases if self.random_incremental_purchases else float("nan")

    @property
    def ratio_to_oracle(self) -> float:
        return self.policy_incremental_purchases / self.oracle_incremental_purchases if self.oracle_incremental_purchases else float("nan")


def targeting_value(true_uplift: np.ndarray, emailed: np.ndarray) -> TargetingValue:
    """`true_uplift` per person of a population, `emailed` the policy's choice among them."""
    uplift = np.asarray(true_uplift, dtype=float)
    chosen = np.asarray(emailed, dtype=bool)
    if uplift.shape != chosen.shape:
        raise ValueError("true_uplift and emailed must have one value per person")
    volume = int(chosen.sum())
    best = np.sort(uplift)[::-1][:volume]
    return TargetingValue(
        emailed=volume,
        population=len(uplift),
        policy_incremental_purchases=float(uplift[chosen].sum()),
        random_incremental_purchases=float(uplift.mean() * volume) if len(uplift) else 0.0,
        oracle_incremental_purchases=float(best.sum()),
    )


def captured_share(true_uplift: np.ndarray, rankings: dict[str, np.ndarray], volume: int) -> dict[str, float]:
    """The share of a pool's true incremental purchases that emailing `volume` people captures,
    for each ranking (name -> score, highest emailed first; ties by position), for random
    targeting (expected: volume / pool) and for the true uplift's own ranking (`oracle`).
    Rankings with a missing score are left out."""
    uplift = np.asarray(true_uplift, dtype=float)
    if not 0 <= volume <= len(uplift):
        raise ValueError(f"volume {volume} is outside the pool of {len(uplift)}")
    total = uplift.sum()
    if len(uplift) == 0 or total == 0:
        return {}

    def top(score) -> float:
        chosen = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:volume]
        return float(uplift[chosen].sum() / total)

    shares = {name: top(score) for name, score in rankings.items()
              if len(score) == len(uplift) and not np.isnan(np.asarray(score, dtype=float)).any()}
    return {**shares, "random": volume / len(uplift), "oracle": top(uplift)}


def history_purchase_probability(oracle_dir, crm_ids, cutoffs, horizon_days: int) -> np.ndarray:
    """The true probability that each person buys in [cutoff, cutoff + horizon_days): one
    minus exp(-the daily hazards they actually lived with in that window), email boosts
    included: the history's, then each live day the world has stepped (its realised hazard,
    `world.purchase_hazard_path`). ``crm_ids`` name the people (None: not a CRM customer, who
    cannot buy: 0). NaN where the window reaches past the last day the world has lived."""
    import json
    from pathlib import Path

    import pyarrow.parquet as pq

    from ml.simulator import formatting
    from ml.simulator.audience import HISTORY_HAZARD_FILE
    from ml.simulator.config import AudienceConfig
    from ml.simulator.population import CRM, DAY, subscriber_ids
    from ml.simulator.world import purchase_hazard_path

    oracle_dir = Path(oracle_dir)
    config = AudienceConfig.from_manifest(json.loads((oracle_dir / "truth.json").read_text())["generator"])
    table = pq.read_table(oracle_dir / HISTORY_HAZARD_FILE)
    person = table["person_id"].to_numpy()
    hazard = np.asarray(table["daily_purchase_hazard"].combine_chunks().flatten()).reshape(len(person), config.days)
    history_start = formatting.epoch_seconds(config.end) - config.days * DAY
    # Live days continue the history's day index (World.day_index), in order, while they exist.
    live = []
    column_of = pd.Series(np.arange(len(person)), index=person)
    while True:
        day = pd.Timestamp(history_start + (config.days + len(live)) * DAY, unit="s").date()
        path = purchase_hazard_path(oracle_dir, day)
        if not path.exists():
            break
        lived = pq.read_table(path)
        column = np.zeros(len(person))
        column[column_of.loc[lived["person_id"].to_numpy()].to_numpy()] = lived["daily_purchase_hazard"].to_numpy()
        live.append(column)
    if live:
        hazard = np.concatenate([hazard, np.stack(live, axis=1)], axis=1)
    days_lived = hazard.shape[1]
    cumulative = np.concatenate([np.zeros((len(person), 1)), np.cumsum(hazard, axis=1, dtype=float)], axis=1)
    row_of = pd.Series(np.arange(len(person)), index=subscriber_ids(person, CRM).to_numpy(zero_copy_only=False))
    rows = pd.Series(list(crm_ids)).map(row_of)
    start_day = ((pd.to_datetime(pd.Series(list(cutoffs))).astype("int64") // 10**9 - history_start) // DAY).to_numpy()
    end_day = start_day + horizon_days
    inside = (start_day >= 0) & (end_day <= days_lived)
    known = rows.notna().to_numpy() & inside
    probability = np.where(inside, 0.0, np.nan)
    r = rows[known].to_numpy(dtype=np.int64)
    probability[known] = 1.0 - np.exp(-(cumulative[r, end_day[known]] - cumulative[r, start_day[known]]))
    return probability


def true_product_rankings(oracle_dir, crm_ids, k: int) -> pd.DataFrame:
    """The world's own top ``k`` products per CRM customer: (crm_id, rank, product_id,
    probability), by the true probability that their next purchase is that product
    (`behaviour.product_probabilities`). The ceiling of any recommender on this world's
    held-out purchases; ids that name no simulated customer are left out."""
    import json
    from pathlib import Path

    from ml.simulator import behaviour
    from ml.simulator.config import AudienceConfig
    from ml.simulator.population import CRM, draw_catalogue, draw_people, subscriber_ids

    config = AudienceConfig.from_manifest(json.loads((Path(oracle_dir) / "truth.json").read_text())["generator"])
    person_ids = np.arange(config.n_people, dtype=np.int64)
    person_of = pd.Series(person_ids, index=subscriber_ids(person_ids, CRM).to_numpy(zero_copy_only=False))
    wanted = pd.Series(pd.unique(pd.Series(list(crm_ids), dtype=object).dropna().astype(str)), dtype=object)
    wanted = wanted.loc[wanted.isin(person_of.index)]
    people = draw_people(config, person_of.loc[wanted].to_numpy())
    catalogue = draw_catalogue(config.seed)
    probability = behaviour.product_probabilities(people.affinity, people.price_sensitivity, catalogue.by_category)
    k = min(k, probability.shape[1])
    # Ties (never in practice: continuous traits) by catalogue order.
    top = np.argsort(-probability, axis=1, kind="stable")[:, :k]
    return pd.DataFrame({
        "crm_id": np.repeat(wanted.to_numpy(dtype=object), k),
        "rank": np.tile(np.arange(1, k + 1), len(wanted)),
        "product_id": catalogue.product_id[top].ravel(),
        "probability": np.take_along_axis(probability, top, axis=1).ravel(),
    })


# ----------------------------------------------------------------------------- bandits


def arm_copy(subscribers: pd.DataFrame, variants: pd.DataFrame, design) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The subject line and promoted category each of `subscribers` (subscriber_key,
    top_category, lifecycle_stage) would get in each sent arm of `design`
    (ml.experiments.design.ExperimentDesign), chosen from `variants` exactly as the plan
    chooses them (ml.copy.variants.choose_variant_per_subscriber)."""
    from ml.copy.variants import choose_variant_per_subscriber

    lines, categories = {}, {}
    for arm in design.arm_names:
        if arm == design.holdout_arm:
            continue
        chosen = choose_variant_per_subscriber(subscribers, variants, personalised=arm in design.personalised_arms,
                                               slot=design.personalised_arms.get(arm))
        lines[arm], categories[arm] = chosen["subject_line"].to_numpy(), chosen["variant_category"].to_numpy()
    return lines, categories


# The send-to-reward metrics `arm_true_rates` reports per arm: an open or a click of the e-mail
# (within a day of the send: opens come at the latest at the recipient's preferred hour, clicks
# minutes after), a purchase within the first `reward_days` of the send, and a purchase within
# the attribution window (the primary metric).
TRUE_RATE_COLUMNS = ("arm", "segment", "people", "open", "click", "purchase_reward", "purchase")
# Sends leave in office hours (08:00-18:00 UTC, `world.launch_time`): the first day after a send
# covers the rest of the send day and about this share of the next one, when an e-mail's
# boost begins (`behaviour.window_purchase_probability`).
NEXT_DAY_SHARE_OF_FIRST_REWARD_DAY = 0.55


def arm_true_rates(people, subject_lines: dict[str, np.ndarray], categories: dict[str, np.ndarray], *,
                   window_days: int, reward_days: int = 1) -> pd.DataFrame:
    """Each arm's true rates per segment (the reader's top category, which with the copy sets a
    subject line's hidden appeal) and over everyone ("all"): TRUE_RATE_COLUMNS, means over
    people of the world's chances that they open, click, buy within `reward_days` of the
    e-mail, and buy within `window_days` (from a rested state: no carried boost, no recent
    sends). `subject_lines[arm]` and `categories[arm]` hold the line and promoted category each
    person would get in that arm. Evaluation only: the pipeline never sees these figures."""
    from ml.simulator import behaviour, engine

    if not 1 <= reward_days <= window_days:
        raise ValueError(f"reward_days must be between 1 and window_days ({window_days}), got {reward_days}")
    rows = np.arange(len(people))
    churned = np.zeros(len(rows), dtype=bool)
    recent = np.zeros(len(rows), dtype=np.int64)
    base = (people.base_purchase_hazard * people.in_crm)[:, None]
    hazard = np.repeat(base, window_days, axis=1)
    # The reward window: the rest of the send day, the days after it, and part of the last.
    reward_share = np.zeros(reward_days + 1)
    reward_share[0], reward_share[1:reward_days] = 1 - NEXT_DAY_SHARE_OF_FIRST_REWARD_DAY, 1.0
    reward_share[reward_days] = NEXT_DAY_SHARE_OF_FIRST_REWARD_DAY
    reward_hazard = base * reward_share[None, :]
    p_delivered = 1.0 - np.where(people.bad_mailbox, 1.0, behaviour.RANDOM_HARD_BOUNCE)
    frames = []
    for arm, lines in subject_lines.items():
        codes = behaviour.category_codes(list(categories[arm]))
        p_open, p_click_given_open = engine.send_conditions(people, rows, codes, list(lines), recent, churned)
        p_open = p_delivered * p_open
        p_click = p_open * p_click_given_open
        no_boost = np.zeros(len(rows))
        if_sent, _ = engine.purchase_if_sent(people, rows, hazard, no_boost, p_delivered, p_open, p_click)
        if_sent_reward, _ = engine.purchase_if_sent(people, rows, reward_hazard, no_boost, p_delivered, p_open, p_click)
        frames.append(pd.DataFrame({"arm": arm, "segment": np.asarray(people.top_category).astype(str), "open": p_open,
                                    "click": p_click, "purchase_reward": if_sent_reward, "purchase": if_sent}))
    per_person = pd.concat(frames, ignore_index=True)
    metrics = list(TRUE_RATE_COLUMNS[3:])
    by_segment = per_person.groupby(["arm", "segment"], sort=True)[metrics].mean()
    by_segment.insert(0, "people", per_person.groupby(["arm", "segment"], sort=True).size())
    overall = per_person.groupby("arm", sort=True)[metrics].mean().assign(segment="all")
    overall.insert(0, "people", per_person.groupby("arm", sort=True).size())
    overall = overall.reset_index().set_index(["arm", "segment"])
    return pd.concat([by_segment, overall]).reset_index()[list(TRUE_RATE_COLUMNS)]


@dataclass(frozen=True)
class BanditRegret:
    """Cumulative regret over the horizon against always sending the truly best arm: the
    expected conversions given up, for the bandit and for a uniform split of the same traffic."""

    best_arm: str
    true_rates: dict[str, float]
    bandit_regret: float
    uniform_regret: float
    daily: pd.DataFrame  # day, units, bandit_regret, uniform_regret (cumulative), weight_<arm>


def bandit_regret(bandit, true_rates: dict[str, float], units_per_day, *, seed: int,
                  feedback_delay_days: int = 1, reward_rates: dict[str, float] | None = None) -> BanditRegret:
    """Run `bandit` (ml.experiments.bandit.ThompsonBandit) over the days of `units_per_day`
    (the bandit's traffic each day) in a world whose arms convert at `true_rates` (the
    primary metric, which the regret is counted in) and earn the bandit's reward at
    `reward_rates` (the metric it learns from, e.g. a click within a day; None: the primary
    metric itself).

    Each day the bandit allocates from the reward counts observed so far (outcomes of a day's
    sends are seen `feedback_delay_days` later), the day's units are split by its weights
    (multinomial) and earn rewards binomially (numpy, seeded by `seed`). The regret of a day
    is its units times (best primary rate - the allocation's expected primary rate); the
    uniform split's is the same with equal weights. Both are expectations given the weights,
    so only the bandit's learning is random. The bandit reads only the simulated reward
    counts, never the rates."""
    arms = list(bandit.arms)
    reward_rates = dict(true_rates) if reward_rates is None else dict(reward_rates)
    if set(true_rates) != set(arms) or set(reward_rates) != set(arms):
        raise ValueError(f"true_rates and reward_rates must name exactly the bandit's arms {arms}")
    if feedback_delay_days < 1:
        raise ValueError("outcomes cannot be seen before the day they happen: feedback_delay_days >= 1")
    p = np.array([true_rates[a] for a in arms], dtype=float)
    q = np.array([reward_rates[a] for a in arms], dtype=float)
    if not ((0 <= q) & (q <= 1)).all():
        raise ValueError("reward rates must be probabilities")
    best = float(p.max())
    rng = np.random.default_rng(seed)
    observed: list[tuple[np.ndarray, np.ndarray]] = []  # per day: units, rewards per arm
    rows, bandit_total, uniform_total = [], 0.0, 0.0
    for day, units in enumerate(int(u) for u in units_per_day):
        seen = observed[: max(0, day - feedback_delay_days + 1)]
        n = np.sum([o[0] for o in seen], axis=0) if seen else np.zeros(len(arms), dtype=np.int64)
        s = np.sum([o[1] for o in seen], axis=0) if seen else np.zeros(len(arms), dtype=np.int64)
        allocation = bandit.allocate(pd.DataFrame({"arm": arms, "successes": s, "n": n}), day)
        weights = allocation["weight"].to_numpy()
        sent = rng.multinomial(units, weights)
        observed.append((sent, rng.binomial(sent, q)))
        bandit_total += units * (best - float(weights @ p))
        uniform_total += units * (best - float(p.mean()))
        rows.append({"day": day, "units": units, "bandit_regret": bandit_total, "uniform_regret": uniform_total,
                     **{f"weight_{a}": w for a, w in zip(arms, weights)}})
    return BanditRegret(best_arm=arms[int(p.argmax())], true_rates=dict(true_rates), bandit_regret=bandit_total,
                        uniform_regret=uniform_total, daily=pd.DataFrame(rows))


# A bandit's reward metric (ml.experiments.bandit_readout.REWARD_METRICS) -> the send truth's
# column of its true chance (world.py's send truth; a purchase's is over the attribution window).
TRUTH_COLUMN_OF_REWARD = {"purchase": "p_purchase_if_sent", "click": "p_click", "open": "p_open"}


@dataclass(frozen=True)
class CampaignRegret:
    """A campaign's sends judged by the oracle: each arm's true purchase rate as sent, the regret
    of the campaign's own allocation against sending every one the truly best arm, a uniform
    split's regret on the same sends, and a Thompson-sampling bandit's on the same daily traffic."""

    true_rates: dict[str, float]
    best_arm: str
    sends: int
    campaign_regret: float
    uniform_regret: float
    bandit_regrets: tuple[float, ...]  # one per seed

    @property
    def bandit_regret(self) -> float:
        return float(np.mean(self.bandit_regrets))


def campaign_regret(sends: pd.DataFrame, bandit, *, seeds=range(20), reward_column: str = "p_purchase_if_sent") -> CampaignRegret:
    """`sends`: one row per send of the campaign's arms (day, arm, p_purchase_if_sent, the
    oracle's true chance that the recipient buys within the attribution window if sent it).
    An arm's true rate is the mean of p_purchase_if_sent over its sends; the campaign's regret
    is the sum over its sends of (best arm's rate - its arm's rate); a uniform split's is the
    sends times (best rate - the arms' mean rate); `bandit` (ml.experiments.bandit.ThompsonBandit
    over the same arms) is simulated on the same sends per day (`bandit_regret`, one run per
    seed), learning from rewards at each arm's mean of `reward_column` (the send truth's
    p_click for a bandit rewarded by clicks; the primary p_purchase_if_sent by default).
    Evaluation only: the pipeline never reads the oracle."""
    for column in ("day", "arm", "p_purchase_if_sent", reward_column):
        if column not in sends.columns:
            raise ValueError(f"sends lack column {column!r}")
    rates = sends.groupby("arm")["p_purchase_if_sent"].mean()
    if set(rates.index) != set(bandit.arms):
        raise ValueError(f"sends must cover exactly the bandit's arms {list(bandit.arms)}, got {sorted(rates.index)}")
    true_rates = {arm: float(rates[arm]) for arm in bandit.arms}
    reward = sends.groupby("arm")[reward_column].mean()
    reward_rates = {arm: float(reward[arm]) for arm in bandit.arms}
    best = max(true_rates, key=true_rates.get)
    per_arm = sends["arm"].value_counts()
    volumes = sends.groupby("day").size().sort_index().tolist()
    return CampaignRegret(
        true_rates=true_rates, best_arm=best, sends=len(sends),
        campaign_regret=float(sum(n * (true_rates[best] - true_rates[arm]) for arm, n in per_arm.items())),
        uniform_regret=float(len(sends) * (true_rates[best] - np.mean(list(true_rates.values())))),
        bandit_regrets=tuple(bandit_regret(bandit, true_rates, volumes, seed=seed, reward_rates=reward_rates).bandit_regret
                             for seed in seeds),
    )


# How long each reward of `arm_true_rates` takes to be seen: a click, an open or a purchase
# within a day of the send is known the next day; the primary purchase after its whole window.
REWARD_DELAY_DAYS = {"click": 1, "open": 1, "purchase_reward": 1, "purchase": None}  # None: window_days


def regret_by_reward(bandit, rates: pd.DataFrame, *, units_per_day: int, horizons=(7, 14, 21), seeds=range(10),
                     window_days: int = 14) -> pd.DataFrame:
    """The bandit's regret on the primary metric (`rates`' purchase, over everyone: TRUE_RATE_COLUMNS
    rows of segment "all") when it learns from each reward of REWARD_DELAY_DAYS, beside a
    uniform split's, over each horizon and seed (`bandit_regret`). One row per reward and
    horizon: mean, standard deviation, min and max of the bandit's regret over the seeds, the
    uniform split's, and the mean ratio."""
    overall = rates[rates["segment"] == "all"].set_index("arm")
    primary = overall["purchase"].to_dict()
    rows = []
    for reward, delay in REWARD_DELAY_DAYS.items():
        for days in horizons:
            runs = [bandit_regret(bandit, primary, [units_per_day] * days, seed=seed,
                                  reward_rates=overall[reward].to_dict(), feedback_delay_days=delay or window_days)
                    for seed in seeds]
            regret = np.array([run.bandit_regret for run in runs])
            rows.append({"reward": reward, "days": days, "bandit_mean": regret.mean(), "bandit_sd": regret.std(),
                         "bandit_min": regret.min(), "bandit_max": regret.max(), "uniform": runs[0].uniform_regret,
                         "ratio": float(np.mean(regret / runs[0].uniform_regret))})
    return pd.DataFrame(rows)


def world_arm_rates(copy_dir, design, *, n_people: int, seed: int, window_days: int = 14) -> pd.DataFrame:
    """`arm_true_rates` on a simulated world of `n_people` (seed `seed`) sent the approved copy of
    `copy_dir` (data/copy) by the arms of `design`, lifecycle stages spread evenly."""
    from pathlib import Path

    from ml.copy.blocks import load_approved_blocks
    from ml.copy.email_blocks import load_email_blocks
    from ml.copy.variants import compose_variants
    from ml.simulator.config import AudienceConfig
    from ml.simulator.population import draw_people

    config = AudienceConfig(n_people=n_people, seed=seed)
    people = draw_people(config, np.arange(config.n_people))
    copy_dir = Path(copy_dir)
    stages = np.array(["new", "active", "at_risk", "lapsed", "never_engaged"])[people.person_id % 5]
    subscribers = pd.DataFrame({"subscriber_key": people.person_id.astype(str), "top_category": people.top_category,
                                "lifecycle_stage": stages})
    variants = compose_variants(load_approved_blocks(copy_dir / "approved_subject_lines.v1.json"), subscribers,
                                email_blocks=load_email_blocks(copy_dir / "approved_email_blocks.v1.json"))
    lines, categories = arm_copy(subscribers, variants.assign(approval_state="approved"), design)
    return arm_true_rates(people, lines, categories, window_days=window_days)


def main(argv=None) -> None:
    """python -m ml.simulator.evaluation: the declared bandit's regret by reward on simulated worlds
    (docs/experiments.md, "Regret against the simulator's truth")."""
    import argparse
    from pathlib import Path

    from ml.experiments.bandit import ThompsonBandit
    from ml.experiments.design import BANDIT_EXPERIMENT_ID, declared_design

    parser = argparse.ArgumentParser(prog="python -m ml.simulator.evaluation", description=main.__doc__)
    parser.add_argument("--worlds", type=int, nargs="+", default=[42, 7, 23])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--units-per-day", type=int, default=6_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--draws", type=int, default=4_000)
    parser.add_argument("--copy-dir", default=str(Path(__file__).resolve().parents[2] / "data" / "copy"))
    args = parser.parse_args(argv)
    design = declared_design(BANDIT_EXPERIMENT_ID)
    bandit = ThompsonBandit(**{**vars(ThompsonBandit.declared(design)), "draws": args.draws})
    for world in args.worlds:
        rates = world_arm_rates(args.copy_dir, design, n_people=args.people, seed=world)
        table = regret_by_reward(bandit, rates, units_per_day=args.units_per_day, seeds=range(args.seeds))
        print(f"world {world}: {args.people:,} people, {args.units_per_day:,} bandit sends a day, {args.seeds} seeds")
        print(table.round(3).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
