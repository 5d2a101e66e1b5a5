"""Uplift training examples: the weekly feature rows of people whose email was decided at random.

An uplift model may only learn from rows where being emailed was independent of who the
person is. This module keeps exactly those rows of the weekly training examples
(`marts.training_examples`: features at a cutoff, purchase in the 14 days after it) and adds
the treatment:

- before the loop started (the shop's own history): every person on the shop's sending list
  at the cutoff (sent something in the `LIST_DAYS` before it, and no unsubscribe, complaint
  or bounce before it), treated when the shop's first campaign after the cutoff reached them.
  That is a randomised contrast only if the shop sent each campaign to a random share of its
  list; `assignment_balance` measures whether the features predict who got it, and the caller
  refuses these rows when they do. Later campaigns of the window reach both groups alike, so
  the contrast is the effect of one campaign (diluted, not biased);
- from the loop's first send day on, only the loop's randomised units: the persistent holdout
  (never emailed, the controls) and the random control (emailed whatever their score; treated
  when emailed in the `TREATMENT_DAYS` after the cutoff). Everyone else was chosen by the
  policy, on their score, and would teach the model the policy, not the email.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.propensity.features import FEATURE_COLUMNS, PURCHASE_LABEL, prepare_features

# A person is on the shop's sending list at a cutoff when it sent them something in these days.
LIST_DAYS = 14
# The treatment window after a cutoff: emailed at least once in these days.
TREATMENT_DAYS = 7

SHOP_HISTORY = "shop_history"
LOOP_HOLDOUT = "loop_holdout"
LOOP_RANDOM_CONTROL = "loop_random_control"
SOURCES = (SHOP_HISTORY, LOOP_HOLDOUT, LOOP_RANDOM_CONTROL)

# Per (subscriber_key, cutoff_at): what the warehouse knows about sends around the cutoff.
EXPOSURE_COLUMNS = (
    "subscriber_key", "cutoff_at", "sends_before", "sends_in_window", "got_first_campaign", "opted_out_before",
)
# Per subscriber_key: the loop's randomised unit (LOOP_HOLDOUT or LOOP_RANDOM_CONTROL).
UNIT_COLUMNS = ("subscriber_key", "unit")

# A classifier that tells the emailed from the others better than this (ROC AUC, on held-out
# folds) says the shop's sends were targeted, not random: its history teaches no uplift.
BALANCED_AUC = 0.55


def exposure_sql(training_examples: str, sends: str, email_events: str) -> str:
    """The EXPOSURE_COLUMNS query over the warehouse: sends in the LIST_DAYS before each
    cutoff and the TREATMENT_DAYS after it, whether the first campaign sent in that window
    reached the person, and whether an opt-out event came before the cutoff."""
    return f"""
    with cutoffs as (select distinct subscriber_key, cutoff_at from {training_examples}),
    first_campaigns as (
        select c.cutoff_at, arg_min(s.campaign_id, s.sent_at) as campaign_id
        from (select distinct cutoff_at from cutoffs) c
        join {sends} s on s.sent_at >= c.cutoff_at and s.sent_at < c.cutoff_at + to_days({TREATMENT_DAYS})
        group by all
    ),
    opted_out as (
        select subscriber_key, min(occurred_at) as opted_out_at from {email_events}
        where event_type in ('unsubscribe', 'complaint', 'bounce') group by all
    )
    select c.subscriber_key, c.cutoff_at,
           count(s.send_id) filter (where s.sent_at < c.cutoff_at) as sends_before,
           count(s.send_id) filter (where s.sent_at >= c.cutoff_at) as sends_in_window,
           count(s.send_id) filter (where s.sent_at >= c.cutoff_at and s.campaign_id = f.campaign_id) > 0
               as got_first_campaign,
           coalesce(o.opted_out_at < c.cutoff_at, false) as opted_out_before
    from cutoffs c
    left join {sends} s
      on s.subscriber_key = c.subscriber_key
     and s.sent_at >= c.cutoff_at - to_days({LIST_DAYS})
     and s.sent_at < c.cutoff_at + to_days({TREATMENT_DAYS})
    left join first_campaigns f on f.cutoff_at = c.cutoff_at
    left join opted_out o on o.subscriber_key = c.subscriber_key
    group by c.subscriber_key, c.cutoff_at, o.opted_out_at
    """


@dataclass(frozen=True)
class UpliftExamples:
    """The randomised rows, and how many of each source were kept."""

    rows: pd.DataFrame  # training examples + `treated` (0/1) + `source`
    counts: dict[str, dict[str, int]]  # source -> {"rows", "treated", "converted"}


def randomised_examples(
    examples: pd.DataFrame,
    exposure: pd.DataFrame,
    *,
    loop_started_at: pd.Timestamp | None,
    loop_units: pd.DataFrame | None = None,
) -> UpliftExamples:
    """The rows of `examples` (training_examples with PURCHASE_LABEL) whose treatment was random.

    exposure: EXPOSURE_COLUMNS per example row (see `exposure_sql`).
    loop_started_at: the loop's first send day; rows at or after it keep only `loop_units`.
        None: the loop has not sent yet, every row is the shop's history.
    loop_units: UNIT_COLUMNS, the holdout and random-control members.
    """
    for frame, columns, name in (
        (examples, ("subscriber_key", "cutoff_at", PURCHASE_LABEL, *FEATURE_COLUMNS), "examples"),
        (exposure, EXPOSURE_COLUMNS, "exposure"),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{name} lack columns {missing}")
    units = loop_units if loop_units is not None else pd.DataFrame(columns=list(UNIT_COLUMNS))
    if set(units["unit"].dropna()) - {LOOP_HOLDOUT, LOOP_RANDOM_CONTROL}:
        raise ValueError(f"loop units must be {LOOP_HOLDOUT!r} or {LOOP_RANDOM_CONTROL!r}")
    # In one fixed order, whatever order the warehouse returned (a table built in parallel
    # keeps none): the uplift learners' fits follow row order, as the propensity models' do.
    examples = examples.assign(_cutoff=pd.to_datetime(examples["cutoff_at"])).sort_values(
        ["_cutoff", "subscriber_key"], kind="stable"
    ).drop(columns="_cutoff")
    rows = examples.merge(
        exposure[list(EXPOSURE_COLUMNS)], on=["subscriber_key", "cutoff_at"], how="inner", validate="one_to_one"
    )
    rows = rows[rows[PURCHASE_LABEL].notna()]
    cutoff = pd.to_datetime(rows["cutoff_at"])
    in_loop = pd.Series(False, index=rows.index) if loop_started_at is None else cutoff >= pd.Timestamp(loop_started_at)
    on_list = (rows["sends_before"] > 0) & ~rows["opted_out_before"].astype(bool)
    history = rows[~in_loop & on_list].assign(source=SHOP_HISTORY, treated=lambda f: f["got_first_campaign"].astype(int))
    loop = (
        rows[in_loop & ~rows["opted_out_before"].astype(bool)]
        .assign(treated=lambda f: (f["sends_in_window"] > 0).astype(int))
        .merge(units[list(UNIT_COLUMNS)], on="subscriber_key", how="inner")
        .rename(columns={"unit": "source"})
    )
    # A holdout member emailed anyway, or a random-control member not emailed that week
    # (capped, opted out), is not what the unit promised; the unit's rows keep their promise.
    loop = loop[(loop["source"] == LOOP_HOLDOUT) & (loop["treated"] == 0) | (loop["source"] == LOOP_RANDOM_CONTROL)]
    kept = pd.concat([history, loop], ignore_index=True)
    kept[PURCHASE_LABEL] = kept[PURCHASE_LABEL].astype(int)
    counts = {
        source: {
            "rows": int((kept["source"] == source).sum()),
            "treated": int(kept.loc[kept["source"] == source, "treated"].sum()),
            "converted": int(kept.loc[kept["source"] == source, PURCHASE_LABEL].sum()),
        }
        for source in SOURCES
    }
    return UpliftExamples(rows=kept.drop(columns=list(EXPOSURE_COLUMNS[2:])), counts=counts)


def assignment_balance(rows: pd.DataFrame, *, seed: int = 0, folds: int = 3) -> float:
    """How well the features tell the emailed from the others: the out-of-fold ROC AUC of a
    small LightGBM predicting `treated`. About 0.5 when emailing was random; above
    BALANCED_AUC the rows are not a randomised sample."""
    import lightgbm
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    treated = rows["treated"].to_numpy(dtype=int)
    if treated.min() == treated.max():
        raise ValueError("need both emailed and not-emailed rows to measure balance")
    features = prepare_features(rows)
    predicted = np.zeros(len(rows))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, treated):
        model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=15, min_child_samples=50, n_jobs=1,
                                        random_state=seed, verbose=-1)
        model.fit(features.iloc[train], treated[train])
        predicted[test] = model.predict_proba(features.iloc[test])[:, 1]
    return float(roc_auc_score(treated, predicted))
