"""The send plan: one row per email to send, with everything it was decided from.

Who gets an email is decided by joining the experiment assignment, the propensity score,
the profile segment and the consent verdict; the consent verdict is the gate. Every row
carries its trace (arm, model version and score, feature cutoff, subject-line variant and
its block recipe, consent proof), so "why did this person get this email" has an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from datetime import date, datetime

import pandas as pd

from ml.copy.variants import CHOICE_COLUMNS, choose_variant_per_subscriber
from ml.decisioning.policy import NOT_SELECTED, TargetingPolicy, target
from ml.experiments.design import HOLDOUT_ARM

ASSIGNMENT_INPUT = ("subscriber_key", "experiment_id", "arm")
SCORE_INPUT = ("subscriber_key", "propensity_score", "model_name", "model_version", "cutoff_at")
PROFILE_INPUT = ("subscriber_key", "top_category", "lifecycle_stage")
ELIGIBILITY_INPUT = (
    "subscriber_key", "is_eligible", "consent_status", "consent_valid_from", "consent_source", "consent_proof",
)
# The only consent status a send may rest on.
SENDABLE_CONSENT_STATUS = "subscribed"

ESP_CONTACT_INPUT = ("subscriber_key", "esp_id")

PLANNED_SEND_COLUMNS = (
    "send_plan_id",
    "planned_for",
    "campaign_id",
    "subscriber_key",
    "esp_id",
    "experiment_id",
    "arm",
    "propensity_score",
    "model_name",
    "model_version",
    "features_cutoff_at",
    "top_category",
    "lifecycle_stage",
    "targeting_group",
    "selected_by",
    "consent_status",
    "consent_valid_from",
    "consent_source",
    "consent_proof",
    *(column for column in CHOICE_COLUMNS if column != "subscriber_key"),
    "feature_list_sha256",
    "planned_at",
)


@dataclass(frozen=True)
class SendPlan:
    """The planned sends, and how many assigned members were left out and why."""

    sends: pd.DataFrame  # PLANNED_SEND_COLUMNS
    held_out: int  # members of the holdout arm: never emailed
    not_sendable: int  # not eligible in the consent mart, or not scored: never emailed
    not_selected: int  # sendable, but below the policy's propensity cut
    no_esp_contact: int = 0  # sendable, but the ESP has no contact for them to send to


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
) -> SendPlan:
    """Plan one email per assigned, scored, eligible member outside the holdout.

    Consent fails closed: a member without an eligibility row, or whose row is not eligible
    or not `subscribed`, gets no send, whatever the other inputs say. Of the sendable, the
    targeting `policy` picks who is emailed (ml/decisioning/policy.py; default: the top 50%
    by propensity plus a 10% random control). Each sent arm draws its subject line from
    `variants`: treatment personalised, other arms the generic one. The ESP sends by its own
    contact id (`esp_contacts`); a sendable member it has no contact for is counted, not sent.

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

    members = assignments[list(ASSIGNMENT_INPUT)]
    held_out = int((members["arm"] == HOLDOUT_ARM).sum())
    members = members[members["arm"] != HOLDOUT_ARM]
    candidates = (
        members.merge(scores[list(SCORE_INPUT)], on="subscriber_key", how="inner")
        .rename(columns={"cutoff_at": "features_cutoff_at"})
        .merge(profiles[list(PROFILE_INPUT)], on="subscriber_key", how="inner")
        .merge(eligibility[list(ELIGIBILITY_INPUT)], on="subscriber_key", how="inner")
    )
    # Consent is absolute: the eligibility mart is the gate.
    sendable = candidates["is_eligible"].eq(True) & candidates["consent_status"].eq(SENDABLE_CONSENT_STATUS)
    candidates = candidates[sendable].drop(columns=["is_eligible"])
    not_sendable = len(members) - len(candidates)
    addressed = candidates.merge(esp_contacts[list(ESP_CONTACT_INPUT)], on="subscriber_key", how="inner")
    no_esp_contact = len(candidates) - len(addressed)
    candidates = addressed
    if candidates.empty:
        return SendPlan(empty_plan(), held_out, not_sendable, not_selected=0, no_esp_contact=no_esp_contact)
    targeted = target(candidates, policy)
    not_selected = int((targeted["selected_by"] == NOT_SELECTED).sum())
    candidates = targeted[targeted["selected_by"] != NOT_SELECTED]
    if candidates.empty:
        return SendPlan(empty_plan(), held_out, not_sendable, not_selected, no_esp_contact)
    chosen = [
        choose_variant_per_subscriber(
            candidates.loc[candidates["arm"] == arm, ["subscriber_key", "top_category", "lifecycle_stage"]],
            variants,
            personalised=(arm == "treatment"),
        )
        for arm in sorted(candidates["arm"].unique())
    ]
    sends = candidates.merge(
        pd.concat(chosen, ignore_index=True),
        on="subscriber_key",
        how="left",
        validate="one_to_one",
    )
    if sends["subject_line"].isna().any():
        raise ValueError(f"{int(sends['subject_line'].isna().sum())} members got no subject line")
    sends["planned_for"] = pd.Timestamp(planned_for)
    sends["campaign_id"] = campaign_id(sends["experiment_id"], planned_for)
    sends["send_plan_id"] = [
        send_plan_id(experiment, planned_for, key) for experiment, key in zip(sends["experiment_id"], sends["subscriber_key"])
    ]
    sends["feature_list_sha256"] = feature_list_sha256
    sends["planned_at"] = pd.Timestamp(planned_at)
    return SendPlan(
        sends=sends[list(PLANNED_SEND_COLUMNS)].sort_values("send_plan_id").reset_index(drop=True),
        held_out=held_out,
        not_sendable=not_sendable,
        not_selected=not_selected,
        no_esp_contact=no_esp_contact,
    )


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
