"""The send plan: one row per email to send, with everything it was decided from, and the
decision record: one row per person per send day, emailed or not, saying why.

Who gets an email is decided by joining the experiment assignment, the propensity score,
the profile segment, the consent verdict and the contact policy's verdict for the day; the
consent verdict is the gate, the contact policy the second one. Every send carries its trace
(arm, model version, its MLflow training run and the score, feature cutoff, subject-line variant and its block recipe,
consent proof, contact policy version), so "why did this person get this email" has an answer;
the decision record answers "why not" for everyone else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import hashlib
from datetime import date, datetime
from typing import Mapping

import numpy as np
import pandas as pd

from ml.copy.variants import CHOICE_COLUMNS, choose_variant_per_subscriber
from ml.decisioning.uplift.send_cost import OptOutRates, send_costs
from ml.decisioning.policy import NOT_SELECTED_REASONS, SELECTED_BY_SCORE, SELECTED_BY_UPLIFT, TargetingPolicy, target
from ml.experiments.design import DEFAULT_PERSONALISED_ARMS, HOLDOUT_ARM

ASSIGNMENT_INPUT = ("subscriber_key", "experiment_id", "arm")
SCORE_INPUT = ("subscriber_key", "propensity_score", "model_name", "model_version", "model_run_id", "cutoff_at")
PROFILE_INPUT = ("subscriber_key", "top_category", "lifecycle_stage")
CONSENT_INPUT = (
    "subscriber_key", "is_eligible", "consent_status", "consent_valid_from", "consent_source", "consent_proof",
)
# The contact policy's verdict for the send day (marts.subscriber_contact_policy).
CONTACT_POLICY_INPUT = ("is_contactable", "exclusion_reasons", "contact_policy_version")
ELIGIBILITY_INPUT = (*CONSENT_INPUT, *CONTACT_POLICY_INPUT)
# The only consent status a send may rest on.
SENDABLE_CONSENT_STATUS = "subscribed"

ESP_CONTACT_INPUT = ("subscriber_key", "esp_id")

# The day's product recommendations (ml.product_recommendations, one row per person and rank).
RECOMMENDATION_INPUT = ("subscriber_key", "rank", "product_id", "source", "mlflow_run_id")
# What a send or a decision records of them: the products in rank order, their source
# (collaborative or popularity) and the MLflow run of the day's fit.
RECOMMENDATION_COLUMN_TYPES = {
    "recommended_product_ids": "varchar[]",
    "recommendation_source": "varchar",
    "recommendation_run_id": "varchar",
}

# The day's uplift estimates (ml.uplift_estimates): the predicted increase in the chance of a
# purchase if emailed, and the MLflow run of the fit that made it.
UPLIFT_INPUT = ("subscriber_key", "uplift_estimate", "uplift_run_id")

# The experiment arm and the scores a send or decision rests on; `model_run_id` is the MLflow
# run that trained the scoring version (ml.propensity.scoring.SCORE_COLUMN_TYPES).
ASSIGNMENT_AND_SCORE_TYPES = {
    "experiment_id": "varchar",
    "arm": "varchar",
    "propensity_score": "double",
    "model_name": "varchar",
    "model_version": "varchar",
    "model_run_id": "varchar",
    "features_cutoff_at": "timestamp",
    "uplift_estimate": "double",
    "uplift_run_id": "varchar",
}

# When each send leaves and why (ml.decisioning.send_time.SEND_TIME_COLUMNS but the key).
SEND_TIME_COLUMN_TYPES = {
    "scheduled_send_at": "timestamp",
    "send_local_hour": "integer",
    "send_time_source": "varchar",
    "send_time_confidence": "double",
    "send_time_arm": "varchar",
    "send_time_policy": "varchar",
}

# Column -> SQL type. Tables are created with these: a first day whose column is all null
# (say, no consent proof) must not type it NULL and refuse every later day.
PLANNED_SEND_COLUMN_TYPES = {
    "send_plan_id": "varchar",
    "planned_for": "timestamp",
    "campaign_id": "varchar",
    "subscriber_key": "varchar",
    "esp_id": "varchar",
    **ASSIGNMENT_AND_SCORE_TYPES,
    "top_category": "varchar",
    "lifecycle_stage": "varchar",
    "targeting_group": "varchar",
    "selected_by": "varchar",
    "consent_status": "varchar",
    "consent_valid_from": "timestamp",
    "consent_source": "varchar",
    "consent_proof": "varchar",
    "contact_policy_version": "varchar",
    # The subject line chosen (ml.copy.variants.CHOICE_COLUMNS but the key).
    "variant_id": "varchar",
    "subject_line": "varchar",
    "variant_category": "varchar",
    "is_fallback": "boolean",
    "composition_recipe": "varchar",
    "blocks_version": "varchar",
    "copy_provider": "varchar",
    "copy_fallback_reason": "varchar",  # why generated copy was not sent (ml.copy.variants.CHOICE_COLUMNS)
    **RECOMMENDATION_COLUMN_TYPES,
    **SEND_TIME_COLUMN_TYPES,
    "feature_list_sha256": "varchar",
    "planned_at": "timestamp",
}
PLANNED_SEND_COLUMNS = tuple(PLANNED_SEND_COLUMN_TYPES)


# The decision record (one row per person and send day). `decision` is the first gate of
# plan_sends that stopped the person, in the order plan_sends applies them, or `planned`.
NOT_CONSENTED = "not_consented"  # consent fails (in the day's experiment or not)
NOT_ASSIGNED = "not_assigned"  # consented but not in the day's experiment (not scored that day)
HELD_OUT = "held_out"  # the persistent holdout: never emailed
NOT_SCORED = "not_scored"  # assigned, but no score or profile for the day
NOT_CONTACTABLE = "not_contactable"  # the contact policy excludes them for the send day
NO_ESP_CONTACT = "no_esp_contact"  # the ESP has no contact id to send to
NOT_SELECTED_BY_POLICY = "not_selected"  # below the targeting policy's cut
PLANNED = "planned"
DECISIONS = (NOT_CONSENTED, NOT_ASSIGNED, HELD_OUT, NOT_SCORED, NOT_CONTACTABLE, NO_ESP_CONTACT,
             NOT_SELECTED_BY_POLICY, PLANNED)
# Reasons recorded when a verdict row is missing altogether (both fail closed).
NO_ELIGIBILITY_VERDICT = "no_eligibility_verdict"
NO_CONTACT_POLICY_VERDICT = "no_contact_policy_verdict"

# Column -> SQL type: the table is created with these (a first day of nulls must not type it).
DECISION_COLUMN_TYPES = {
    "decided_for": "date",
    "subscriber_key": "varchar",
    "decision": "varchar",
    "exclusion_reasons": "varchar[]",
    "consent_status": "varchar",
    "consent_proof": "varchar",
    "contact_policy_version": "varchar",
    **ASSIGNMENT_AND_SCORE_TYPES,
    "targeting_policy": "varchar",
    "targeting_group": "varchar",
    "selected_by": "varchar",
    "propensity_cut": "double",
    # What a send to this person costs: the send and their priced opt-out risk (null when not priced).
    "send_cost": "double",
    # The smallest uplift estimate the uplift policy emailed (null when propensity decided).
    "uplift_cut": "double",
    "send_plan_id": "varchar",
    "variant_id": "varchar",
    **RECOMMENDATION_COLUMN_TYPES,
    **SEND_TIME_COLUMN_TYPES,
    "feature_list_sha256": "varchar",
    "decided_at": "timestamp",
}
DECISION_COLUMNS = tuple(DECISION_COLUMN_TYPES)


@dataclass(frozen=True)
class SendPlan:
    """The planned sends, and how many assigned members were left out and why."""

    sends: pd.DataFrame  # PLANNED_SEND_COLUMNS
    held_out: int  # members of the holdout arm: never emailed
    not_sendable: int  # not eligible in the consent mart, or not scored: never emailed
    not_selected: int  # sendable, but below the policy's propensity cut
    no_esp_contact: int = 0  # sendable, but the ESP has no contact for them to send to
    not_contactable: int = 0  # consented, but the contact policy excludes them for the day
    # Consented members the contact policy excludes, per reason (one member may count twice).
    contact_exclusions: dict[str, int] = field(default_factory=dict)
    # DECISION_COLUMNS: every person of the eligibility verdicts or the assignments, once.
    decisions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(DECISION_COLUMNS)))

    def status(self, *, top: int = 3) -> str:
        """One line for the run's record: how many sends, and when there are none, why (the
        ``top`` most frequent decisions with their counts; codes and counts, no keys)."""
        if len(self.sends):
            return f"{len(self.sends):,} sends planned"
        counts = self.decisions["decision"].value_counts()
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        why = ", ".join(f"{decision} {int(n):,}" for decision, n in counts.head(top).items())
        if len(counts) > top:
            why += f", {len(counts) - top} other decisions {int(counts.iloc[top:].sum()):,}"
        return f"0 sends planned: {why or 'nobody to decide about'}"


def plan_sends(
    assignments: pd.DataFrame,
    scores: pd.DataFrame,
    profiles: pd.DataFrame,
    eligibility: pd.DataFrame,
    variants: pd.DataFrame,
    esp_contacts: pd.DataFrame,
    *,
    planned_for: date,
    feature_list_sha256: str,
    planned_at: datetime,
    policy: TargetingPolicy | None = None,
    recommendations: pd.DataFrame | None = None,
    send_times: pd.DataFrame | None = None,
    uplift: pd.DataFrame | None = None,
    opt_out: OptOutRates | None = None,
    stopped_arms: frozenset[str] = frozenset(),
    personalised_arms: Mapping[str, int | None] | None = None,
) -> SendPlan:
    """Plan one email per assigned, scored, eligible member outside the holdout.

    Consent fails closed: a member without an eligibility row, or whose row is not eligible
    or not `subscribed`, gets no send, whatever the other inputs say. Nor does a member the
    contact policy excludes for the day (`is_contactable` not true: frequency cap, minimum
    gap, fatigue); they are counted per reason. Of the sendable, the
    targeting `policy` picks who is emailed (ml/decisioning/policy.py; default: the top 50%
    by propensity plus a 10% random control). Each sent arm draws its subject line from
    `variants`: the `personalised_arms` (arm -> copy slot; the design's, default
    `treatment` spread by a hash) their segment's personalised copy, other arms the generic one. The ESP sends by its own
    contact id (`esp_contacts`); a sendable member it has no contact for is counted, not sent.
    Each send and decision carries the person's `recommendations` of the day
    (RECOMMENDATION_INPUT; none given: empty lists), for the copy step and the audit, and
    the time it is scheduled for with its reason (`send_times`, SEND_TIME_COLUMN_TYPES; none
    given: null, and the ESP sends with its campaign). Each also carries the person's
    uplift estimate (`uplift`, UPLIFT_INPUT; none given: null), which the policy ranks by
    when it says so. With `opt_out` (measured opt-out rates), each sendable member's
    `send_cost` prices their risk by their `sends_in_last_7_days` (an eligibility column then).
    An arm in `stopped_arms` (its experiment verdict was `stop`, e.g. a breached guardrail)
    is sent the generic approved subject line, as control is, instead of its own.

    Each send is for the day `planned_for`, in that day's campaign
    (`<experiment_id>:<planned_for>`), with an id that is unique per experiment, day and
    subscriber and the same when the day is planned again.
    """
    policy = policy or TargetingPolicy()
    for frame, columns, name in (
        (assignments, ASSIGNMENT_INPUT, "assignments"),
        (scores, SCORE_INPUT, "scores"),
        (profiles, PROFILE_INPUT, "profiles"),
        (eligibility, ELIGIBILITY_INPUT, "eligibility"),
        (esp_contacts, ESP_CONTACT_INPUT, "esp_contacts"),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{name} lack columns {missing}")
        if frame["subscriber_key"].duplicated().any():
            raise ValueError(f"{name} have more than one row per subscriber_key")

    products = recommended_products(recommendations)
    timing = _send_time_rows(send_times)
    uplift = _uplift_rows(uplift)
    members = assignments[list(ASSIGNMENT_INPUT)]
    held_out = int((members["arm"] == HOLDOUT_ARM).sum())
    members = members[members["arm"] != HOLDOUT_ARM]
    candidates = (
        members.merge(scores[list(SCORE_INPUT)], on="subscriber_key", how="inner")
        .merge(uplift, on="subscriber_key", how="left")
        .rename(columns={"cutoff_at": "features_cutoff_at"})
        .merge(profiles[list(PROFILE_INPUT)], on="subscriber_key", how="inner")
        .merge(eligibility[list(ELIGIBILITY_INPUT)], on="subscriber_key", how="inner")
    )
    # Consent is absolute: the eligibility mart is the gate.
    sendable = candidates["is_eligible"].eq(True) & candidates["consent_status"].eq(SENDABLE_CONSENT_STATUS)
    candidates = candidates[sendable].drop(columns=["is_eligible"])
    not_sendable = len(members) - len(candidates)
    # Then the contact policy (frequency cap, minimum gap, fatigue); a missing verdict excludes.
    contactable = candidates["is_contactable"].eq(True)
    contact_exclusions = dict(sorted(Counter(
        str(reason) for reasons in candidates.loc[~contactable, "exclusion_reasons"] if reasons is not None for reason in reasons
    ).items()))
    not_contactable = int((~contactable).sum())
    candidates = candidates[contactable].drop(columns=["is_contactable", "exclusion_reasons"])
    if opt_out is not None:
        if "sends_in_last_7_days" not in eligibility.columns:
            raise ValueError("pricing the opt-out risk needs eligibility's sends_in_last_7_days")
        recent = eligibility.set_index("subscriber_key")["sends_in_last_7_days"]
        candidates = candidates.assign(send_cost=send_costs(
            candidates["subscriber_key"].map(recent), opt_out, cost_per_send=policy.cost_per_send,
            subscriber_value=policy.subscriber_value).to_numpy())
    addressed = candidates.merge(esp_contacts[list(ESP_CONTACT_INPUT)], on="subscriber_key", how="inner")
    no_esp_contact = len(candidates) - len(addressed)
    targeted = target(addressed, policy) if not addressed.empty else addressed.assign(targeting_group=None, selected_by=None)
    passed_over = targeted["selected_by"].isin(NOT_SELECTED_REASONS)
    not_selected = int(passed_over.sum())
    sends = _sends(
        targeted[~passed_over], variants, products, timing, planned_for, feature_list_sha256,
        planned_at, stopped_arms, DEFAULT_PERSONALISED_ARMS if personalised_arms is None else personalised_arms,
    )
    decisions = _decision_record(
        assignments, scores, uplift, profiles, eligibility, esp_contacts, targeted, sends, products,
        decided_for=planned_for, decided_at=planned_at, policy=policy, feature_list_sha256=feature_list_sha256,
    )
    return SendPlan(
        sends=sends,
        held_out=held_out,
        not_sendable=not_sendable,
        not_selected=not_selected,
        no_esp_contact=no_esp_contact,
        not_contactable=not_contactable,
        contact_exclusions=contact_exclusions,
        decisions=decisions,
    )


def recommended_products(recommendations: pd.DataFrame | None) -> pd.DataFrame:
    """One row per person: RECOMMENDATION_COLUMN_TYPES' columns, products in rank order."""
    if recommendations is None or recommendations.empty:
        return pd.DataFrame(columns=["subscriber_key", *RECOMMENDATION_COLUMN_TYPES])
    missing = [column for column in RECOMMENDATION_INPUT if column not in recommendations.columns]
    if missing:
        raise ValueError(f"recommendations lack columns {missing}")
    ranked = recommendations.sort_values(["subscriber_key", "rank"])
    return ranked.groupby("subscriber_key", sort=True).agg(
        recommended_product_ids=("product_id", lambda ids: [str(i) for i in ids]),
        recommendation_source=("source", "first"),
        recommendation_run_id=("mlflow_run_id", "first"),
    ).reset_index()


def _uplift_rows(uplift: pd.DataFrame | None) -> pd.DataFrame:
    if uplift is None:
        return pd.DataFrame({column: pd.Series(dtype="object" if column != "uplift_estimate" else "float64")
                             for column in UPLIFT_INPUT})
    missing = [column for column in UPLIFT_INPUT if column not in uplift.columns]
    if missing:
        raise ValueError(f"uplift lacks columns {missing}")
    if uplift["subscriber_key"].duplicated().any():
        raise ValueError("uplift has more than one row per subscriber_key")
    return uplift[list(UPLIFT_INPUT)]


def _send_time_rows(send_times: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["subscriber_key", *SEND_TIME_COLUMN_TYPES]
    if send_times is None:
        return pd.DataFrame(columns=columns)
    missing = [column for column in columns if column not in send_times.columns]
    if missing:
        raise ValueError(f"send_times lack columns {missing}")
    if send_times["subscriber_key"].duplicated().any():
        raise ValueError("send_times have more than one row per subscriber_key")
    return send_times[columns]


def _with_products(frame: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each person's products; anyone without gets an empty list."""
    out = frame.merge(products, on="subscriber_key", how="left", validate="many_to_one")
    out["recommended_product_ids"] = [ids if isinstance(ids, list) else [] for ids in out["recommended_product_ids"]]
    return out


def _sends(chosen_members: pd.DataFrame, variants: pd.DataFrame, products: pd.DataFrame, timing: pd.DataFrame,
           planned_for: date, feature_list_sha256: str, planned_at: datetime,
           stopped_arms: frozenset[str], personalised_arms: Mapping[str, int | None]) -> pd.DataFrame:
    """PLANNED_SEND_COLUMNS for the members the policy chose: their subject line and ids."""
    if chosen_members.empty:
        return empty_plan()
    chosen = [
        choose_variant_per_subscriber(
            chosen_members.loc[chosen_members["arm"] == arm, ["subscriber_key", "top_category", "lifecycle_stage"]],
            variants,
            personalised=(arm in personalised_arms and arm not in stopped_arms),
            slot=personalised_arms.get(arm),
        )
        for arm in sorted(chosen_members["arm"].unique())
    ]
    sends = chosen_members.merge(
        pd.concat(chosen, ignore_index=True),
        on="subscriber_key",
        how="left",
        validate="one_to_one",
    )
    if sends["subject_line"].isna().any():
        raise ValueError(f"{int(sends['subject_line'].isna().sum())} members got no subject line")
    sends = _with_products(sends, products).merge(timing, on="subscriber_key", how="left", validate="one_to_one")
    sends["planned_for"] = pd.Timestamp(planned_for)
    sends["campaign_id"] = campaign_id(sends["experiment_id"], planned_for)
    sends["send_plan_id"] = [
        send_plan_id(experiment, planned_for, key) for experiment, key in zip(sends["experiment_id"], sends["subscriber_key"])
    ]
    sends["feature_list_sha256"] = feature_list_sha256
    sends["planned_at"] = pd.Timestamp(planned_at)
    return sends[list(PLANNED_SEND_COLUMNS)].sort_values("send_plan_id").reset_index(drop=True)


def _decision_record(
    assignments: pd.DataFrame,
    scores: pd.DataFrame,
    uplift: pd.DataFrame,
    profiles: pd.DataFrame,
    eligibility: pd.DataFrame,
    esp_contacts: pd.DataFrame,
    targeted: pd.DataFrame,
    sends: pd.DataFrame,
    products: pd.DataFrame,
    *,
    decided_for: date,
    decided_at: datetime,
    policy: TargetingPolicy,
    feature_list_sha256: str,
) -> pd.DataFrame:
    """DECISION_COLUMNS: one row per person of the verdicts or the assignments. `decision` is
    the first gate that stopped them, in plan_sends' order; `exclusion_reasons` lists every
    consent and contact reason that applies, whatever the decision (a held-out member who
    unsubscribed shows it)."""
    people = (
        eligibility[list(ELIGIBILITY_INPUT)].assign(has_verdict=True)
        .merge(assignments[list(ASSIGNMENT_INPUT)], on="subscriber_key", how="outer")
        .merge(scores[list(SCORE_INPUT)], on="subscriber_key", how="left")
        .merge(uplift, on="subscriber_key", how="left")
        .rename(columns={"cutoff_at": "features_cutoff_at"})
        .merge(targeted[["subscriber_key", "targeting_group", "selected_by",
                         *(["send_cost"] if "send_cost" in targeted.columns else [])]], on="subscriber_key", how="left")
        # The send's own facts, for planned people only: nobody else has a send time.
        .merge(sends[["subscriber_key", "send_plan_id", "variant_id", *SEND_TIME_COLUMN_TYPES]], on="subscriber_key",
               how="left")
        .pipe(_with_products, products)
    )
    keys = people["subscriber_key"]
    consented = people["is_eligible"].eq(True) & people["consent_status"].eq(SENDABLE_CONSENT_STATUS)
    assigned = people["arm"].notna()
    scored = keys.isin(scores["subscriber_key"]) & keys.isin(profiles["subscriber_key"])
    gates = [
        (~consented & ~assigned, NOT_CONSENTED),
        (~assigned, NOT_ASSIGNED),
        (people["arm"].eq(HOLDOUT_ARM), HELD_OUT),
        (~scored, NOT_SCORED),
        (~consented, NOT_CONSENTED),
        (~people["is_contactable"].eq(True), NOT_CONTACTABLE),
        (~keys.isin(esp_contacts["subscriber_key"]), NO_ESP_CONTACT),
        (people["selected_by"].isin(NOT_SELECTED_REASONS), NOT_SELECTED_BY_POLICY),
        (people["send_plan_id"].notna(), PLANNED),
    ]
    people["decision"] = np.select([gate for gate, _ in gates], [name for _, name in gates], default="")
    if (people["decision"] == "").any():
        raise ValueError(f"{int((people['decision'] == '').sum())} people passed every gate but got no send")
    people["exclusion_reasons"] = [
        [NO_ELIGIBILITY_VERDICT] if has_verdict is not True
        else [NO_CONTACT_POLICY_VERDICT] if not isinstance(reasons, (list, tuple, np.ndarray))
        else [str(reason) for reason in reasons]
        for has_verdict, reasons in zip(people["has_verdict"], people["exclusion_reasons"])
    ]
    by_score = people.loc[people["selected_by"].eq(SELECTED_BY_SCORE), "propensity_score"]
    if "send_cost" not in people.columns:
        people["send_cost"] = np.nan
    people["propensity_cut"] = float(by_score.min()) if len(by_score) else np.nan
    by_uplift = people.loc[people["selected_by"].eq(SELECTED_BY_UPLIFT), "uplift_estimate"]
    people["uplift_cut"] = float(by_uplift.min()) if len(by_uplift) else np.nan
    people["targeting_policy"] = policy.describe()
    people["decided_for"] = pd.Timestamp(decided_for).date()
    people["decided_at"] = pd.Timestamp(decided_at)
    people["feature_list_sha256"] = feature_list_sha256
    return people[list(DECISION_COLUMNS)].sort_values("subscriber_key").reset_index(drop=True)


def campaign_id(experiment_id: pd.Series | str, planned_for: date) -> pd.Series | str:
    """The day's campaign of an experiment, as the ESP knows it."""
    return experiment_id + f":{planned_for.isoformat()}"


def send_plan_id(experiment_id: str, planned_for: date, subscriber_key: str) -> str:
    """A short, stable id per (experiment, day, subscriber): the ESP's send id, so that its
    delivery and engagement events come back keyed by it."""
    digest = hashlib.sha256(f"{experiment_id}|{planned_for.isoformat()}|{subscriber_key}".encode()).hexdigest()
    return f"ps_{digest[:24]}"


def empty_plan() -> pd.DataFrame:
    return pd.DataFrame(columns=list(PLANNED_SEND_COLUMNS))
