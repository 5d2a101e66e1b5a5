"""Email copy variants composed from human-approved blocks, with guardrails, and the choice
of one approved variant per subscriber.

No text is generated freely: every subject line is one of the approved `patterns` filled
with approved blocks (an opener, a hook for the subscriber's top category, a closer for the
lifecycle stage), or the approved fallback. The blocks file is versioned and reviewed; its
content hash is the template version recorded with every variant, and each variant carries
its `composition_recipe` (the block ids used), so any subject line sent can be traced back to
the approved text it came from. Guardrails run on every composed line; failures are kept
for audit but never chosen.

Blocks may use only whitelisted placeholders (`{category_label}`); personal data such as a
first name can never be merged into a subject line.

Each variant is a whole email: subject line, preheader and body block ids (from the approved
email blocks, ml/copy/email_blocks.py), with its provenance (provider, model, prompt name and
version, parameters, trace). Only variants whose approval state is `approved`
(ml/copy/approval.py) are ever chosen.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping


import numpy as np
import pandas as pd

from ml.copy.approval import APPROVED, APPROVED_BLOCKS_PROVIDER, NOT_APPROVED_REASONS
from ml.copy.blocks import GENERAL_CATEGORY, UNKNOWN_STAGE, ApprovedBlocks, Block, fill_category_label, placeholder_names
from ml.copy.email_blocks import EmailBlocks
from ml.copy.guardrails import check_email
from ml.copy.render import render_email
from ml.vocabulary import SIMULATOR_CATEGORIES

GENERATION_METHOD_COMPOSED = "approved_block_composition"
GENERATION_METHOD_FALLBACK = "approved_fallback"
GENERATION_METHOD_GENERATED = "generated"

VARIANT_COLUMNS = (
    "top_category",
    "lifecycle_stage",
    "variant_id",
    "subject_line",
    "preheader",
    "body_block_ids",  # JSON list of approved email body block ids
    "variant_category",
    "is_fallback",
    "composition_recipe",
    "generation_method",
    "blocks_version",
    # Provenance: who wrote it, with which model, prompt version and parameters, and its trace.
    "provider",
    "model",
    "prompt_name",
    "prompt_version",
    "generation_params",
    "trace_id",
    "guardrail_passed",
    "guardrail_failures",
    "rejection_reason",  # the first of guardrail_failures (ml.copy.guardrails.REJECTION_REASONS)
)
# Column -> SQL type of the variants table (a first day of nulls must not type a column NULL).
VARIANT_COLUMN_TYPES = {
    column: {"is_fallback": "boolean", "guardrail_passed": "boolean", "prompt_version": "integer"}.get(column, "varchar")
    for column in VARIANT_COLUMNS
}

CHOICE_COLUMNS = (
    "subscriber_key",
    "variant_id",
    "subject_line",
    "variant_category",
    "is_fallback",
    "composition_recipe",
    "blocks_version",
    "copy_provider",
    # Why a personalised send got the approved default instead of its segment's generated copy
    # (a rejection code, or the generated variant's approval state); null otherwise.
    "copy_fallback_reason",
)

def compose_variants(
    blocks: ApprovedBlocks, segments: pd.DataFrame, *, email_blocks: EmailBlocks, variants_per_segment: int = 3
) -> pd.DataFrame:
    """Compose candidate emails for every (top_category, lifecycle_stage) segment.

    Per segment: up to `variants_per_segment` composed subject lines (patterns taken in turn,
    block combinations in a fixed hash order), the generic fallback, and the category fallback
    when one is approved; each with the approved preheader and body blocks of its category
    (`email_blocks`; the generic fallback gets the general ones). Guardrails run on every row
    (`check_variants`); failing rows stay with `guardrail_passed=False` and their reason.
    Unknown or missing categories become "general"; segments with an unknown lifecycle stage
    get fallbacks only. Returns `VARIANT_COLUMNS`, unique on (top_category, lifecycle_stage,
    variant_id), provider `approved_blocks`.
    """
    if variants_per_segment < 0:
        raise ValueError("variants_per_segment must not be negative")
    _require_columns(segments, ("top_category", "lifecycle_stage"), "segments")
    keys = segment_keys(segments).drop_duplicates().sort_values(["top_category", "lifecycle_stage"])
    version = f"{blocks.blocks_version}+{email_blocks.blocks_version}"
    params = json.dumps({"variants_per_segment": variants_per_segment}, sort_keys=True)
    rows: list[dict[str, Any]] = []

    def row(category, stage, text, recipe, variant_category, method):
        preheader = email_blocks.preheaders[variant_category]
        body = [block.id for block in email_blocks.body_blocks[variant_category]]
        recipe = {**recipe, "preheader": preheader.id, "body": body}
        rows.append({
            "top_category": category, "lifecycle_stage": stage,
            "variant_id": variant_id(text, version, preheader=preheader.text, body_block_ids=body),
            "subject_line": text, "preheader": preheader.text, "body_block_ids": json.dumps(body),
            "variant_category": variant_category, "is_fallback": method == GENERATION_METHOD_FALLBACK,
            "composition_recipe": json.dumps(recipe, sort_keys=True), "generation_method": method,
            "blocks_version": version, "provider": APPROVED_BLOCKS_PROVIDER, "model": None, "prompt_name": None,
            "prompt_version": None, "generation_params": params, "trace_id": None,
            "guardrail_passed": True, "guardrail_failures": "[]", "rejection_reason": None,
        })

    for category, stage in keys.itertuples(index=False, name=None):
        for text, recipe in _compose_segment(blocks, category, stage)[:variants_per_segment]:
            row(category, stage, text, recipe, category, GENERATION_METHOD_COMPOSED)
        if category in blocks.category_fallbacks:
            block = blocks.category_fallbacks[category]
            text = fill_category_label(block.text, blocks.category_labels[category])
            recipe = {"fallback": block.id, "placeholders": _used_placeholders(block.text, blocks, category)}
            row(category, stage, text, recipe, category, GENERATION_METHOD_FALLBACK)
        row(category, stage, blocks.fallback.text, {"fallback": blocks.fallback.id, "placeholders": {}},
            GENERAL_CATEGORY, GENERATION_METHOD_FALLBACK)
    variants = pd.DataFrame(rows, columns=list(VARIANT_COLUMNS)).astype({"is_fallback": bool, "guardrail_passed": bool})
    return check_variants(variants, email_blocks)


def check_variants(variants: pd.DataFrame, email_blocks: EmailBlocks) -> pd.DataFrame:
    """Run every guardrail (ml.copy.guardrails.check_email, on the rendered email) on each
    candidate that has a subject line; a failing one gets `guardrail_passed` false, its codes
    in `guardrail_failures` and the first as `rejection_reason`. Candidates without copy (a
    failed generation) keep their reason."""
    checked = variants.copy()
    for index, row in checked.iterrows():
        if not isinstance(row["subject_line"], str):
            continue
        body = json.loads(row["body_block_ids"])
        unknown = [block_id for block_id in body if email_blocks.body_block(block_id) is None]
        codes = ["unknown_block_id"] if unknown else check_email(
            row["subject_line"], row["preheader"], body, email_blocks,
            render_email(variant_id=row["variant_id"], subject=row["subject_line"], preheader=row["preheader"] or "",
                         body_block_ids=body, email_blocks=email_blocks),
        )
        checked.at[index, "guardrail_passed"] = not codes
        checked.at[index, "guardrail_failures"] = json.dumps(codes)
        checked.at[index, "rejection_reason"] = codes[0] if codes else None
    return checked.astype({"guardrail_passed": bool})


def choose_variant_per_subscriber(
    subscribers: pd.DataFrame, variants: pd.DataFrame, *, personalised: bool, slot: int | None = None
) -> pd.DataFrame:
    """Pick one approved, passing variant per subscriber, deterministically.

    Only rows with `guardrail_passed` and `approval_state` "approved" can be chosen.
    Personalised: the segment's approved generated variants if it has any, else its composed
    variants, spread across them by a hash of subscriber_key and the segment's variant set
    (falling back to the category fallback, then the generic fallback). With a `slot` (an
    experiment arm's copy slot), everyone in a segment gets the same one of those variants
    instead: the one at position `slot` (modulo their number) in variant-id order. When the segment had
    generated copy that cannot be sent, `copy_fallback_reason` says why (its rejection code,
    or its approval state). Not personalised: the generic fallback for everyone. Returns
    `CHOICE_COLUMNS` in the subscribers' order.
    """
    _require_columns(subscribers, ("subscriber_key", "top_category", "lifecycle_stage"), "subscribers")
    _require_columns(variants, (*VARIANT_COLUMNS, "approval_state"), "variants")
    if subscribers["subscriber_key"].isna().any():
        raise ValueError("subscribers have a missing subscriber_key")
    variants = variants.assign(copy_provider=variants["provider"])
    passing = variants[variants["guardrail_passed"] & variants["approval_state"].eq(APPROVED)]
    generic = passing[passing["is_fallback"] & (passing["variant_category"] == GENERAL_CATEGORY)]
    generic = generic.drop_duplicates("variant_id")
    if len(generic) != 1:
        raise ValueError(
            f"variants must hold exactly one approved, passing generic fallback, found {len(generic)}. Fix: approve "
            "it (docs/copy.md), or turn on auto_approve_approved_blocks for the approved_blocks provider."
        )
    output_columns = [c for c in CHOICE_COLUMNS if c not in ("subscriber_key", "copy_fallback_reason")]

    if not personalised:
        chosen = pd.DataFrame({"subscriber_key": subscribers["subscriber_key"].to_numpy()})
        for column in output_columns:
            chosen[column] = generic.iloc[0][column]
        chosen["copy_fallback_reason"] = None
        return chosen.astype({"is_fallback": bool})

    keys = segment_keys(subscribers)
    known_segments = variants[["top_category", "lifecycle_stage"]].drop_duplicates()
    unknown = keys.drop_duplicates().merge(known_segments, how="left", indicator=True)
    unknown = unknown[unknown["_merge"] == "left_only"]
    if len(unknown):
        raise ValueError(f"no variants were composed for segments {unknown.iloc[:, :2].values.tolist()}")

    candidates = _candidates_per_segment(passing).merge(
        _fallback_reasons(variants), on=["top_category", "lifecycle_stage"], how="left")
    members = keys.assign(subscriber_key=subscribers["subscriber_key"].to_numpy(), _order=np.arange(len(keys)))
    per_segment = candidates.groupby(["top_category", "lifecycle_stage"], as_index=False).agg(
        _candidates=("_rank", "size"), _set_id=("_set_id", "first")
    )
    members = members.merge(per_segment, on=["top_category", "lifecycle_stage"], how="left")
    hashes = _hash_to_uint64(
        [f"{set_id}:{key}" for set_id, key in zip(members["_set_id"], members["subscriber_key"])]
    )
    if slot is not None:
        if not (isinstance(slot, (int, np.integer)) and slot >= 0):
            raise ValueError(f"slot must be a non-negative whole number, got {slot!r}")
        hashes = np.full(len(members), slot, dtype=np.uint64)
    members["_rank"] = (hashes % members["_candidates"].to_numpy().astype(np.uint64)).astype(np.int64)
    chosen = members.merge(candidates, on=["top_category", "lifecycle_stage", "_rank"], how="left")
    chosen = chosen.sort_values("_order")
    chosen["copy_fallback_reason"] = chosen["copy_fallback_reason"].astype("object").where(
        chosen["copy_fallback_reason"].notna(), None)
    return chosen[list(CHOICE_COLUMNS)].reset_index(drop=True).astype({"is_fallback": bool})


def _fallback_reasons(variants: pd.DataFrame) -> pd.DataFrame:
    """Per segment with generated copy but none approved and passing: why (the first failing
    generated row's rejection code, else the approval state's reason, NOT_APPROVED_REASONS)."""
    generated = variants[variants["provider"] != APPROVED_BLOCKS_PROVIDER]
    rows = []
    for (category, stage), group in generated.groupby(["top_category", "lifecycle_stage"], sort=True):
        sendable = group["guardrail_passed"] & group["approval_state"].eq(APPROVED)
        if sendable.any():
            continue
        failed = group[~group["guardrail_passed"]]
        if len(failed):
            reason = failed["rejection_reason"].iloc[0]
        else:
            reason = NOT_APPROVED_REASONS.get(group["approval_state"].iloc[0], NOT_APPROVED_REASONS[None])
        rows.append((category, stage, reason))
    return pd.DataFrame(rows, columns=["top_category", "lifecycle_stage", "copy_fallback_reason"])


# ----------------------------------------------------------------------------- helpers


def _candidates_per_segment(passing: pd.DataFrame) -> pd.DataFrame:
    """Ranked choosable rows per segment: approved generated copy, else composed lines, else
    the category fallback, else the generic one."""
    tier = np.select(
        [passing["provider"] != APPROVED_BLOCKS_PROVIDER, ~passing["is_fallback"],
         passing["variant_category"] != GENERAL_CATEGORY],
        [0, 1, 2], default=3,
    )
    ranked = passing.assign(_tier=tier)
    best_tier = ranked.groupby(["top_category", "lifecycle_stage"])["_tier"].transform("min")
    ranked = ranked[ranked["_tier"] == best_tier].sort_values(["top_category", "lifecycle_stage", "variant_id"])
    ranked["_rank"] = ranked.groupby(["top_category", "lifecycle_stage"]).cumcount()
    # The variant set id changes whenever a segment's candidates change, reshuffling fairly.
    set_ids = ranked.groupby(["top_category", "lifecycle_stage"])["variant_id"].agg(
        lambda ids: hashlib.sha256("|".join(ids).encode("utf-8")).hexdigest()[:16]
    )
    ranked = ranked.merge(set_ids.rename("_set_id").reset_index(), on=["top_category", "lifecycle_stage"])
    return ranked[["top_category", "lifecycle_stage", "_rank", "_set_id",
                   *(c for c in CHOICE_COLUMNS[1:] if c != "copy_fallback_reason")]]


def _compose_segment(blocks: ApprovedBlocks, category: str, stage: str) -> list[tuple[str, dict[str, Any]]]:
    """All distinct composed lines of a segment, patterns interleaved, each in hash order."""
    if stage not in blocks.lifecycle_closers:
        return []
    per_pattern: list[list[tuple[str, dict[str, Any]]]] = []
    seen: set[str] = set()
    for pattern in blocks.patterns:
        slots = placeholder_names(pattern.text)
        openers = blocks.openers if "opener" in slots else (None,)
        closers = blocks.lifecycle_closers[stage] if "closer" in slots else (None,)
        candidates = []
        for opener in openers:
            for hook in blocks.category_hooks[category]:
                for closer in closers:
                    parts = {"opener": opener, "hook": hook, "closer": closer}
                    template = _fill_slots(pattern, parts)
                    text = _capitalise_first(fill_category_label(template, blocks.category_labels[category]))
                    if text in seen:
                        continue
                    seen.add(text)
                    recipe = {
                        "pattern": pattern.id,
                        "blocks": {slot: block.id for slot, block in parts.items() if block is not None},
                        "placeholders": _used_placeholders(template, blocks, category),
                    }
                    candidates.append((text, recipe))
        order_key = f"{blocks.blocks_version}|{category}|{stage}|"
        candidates.sort(key=lambda item: hashlib.sha256((order_key + item[0]).encode("utf-8")).hexdigest())
        per_pattern.append(candidates)
    interleaved = []
    for position in range(max((len(c) for c in per_pattern), default=0)):
        interleaved.extend(c[position] for c in per_pattern if position < len(c))
    return interleaved


def _fill_slots(pattern: Block, parts: Mapping[str, Block | None]) -> str:
    """The pattern with its slot blocks filled in, placeholders still unresolved."""
    text = pattern.text
    for slot, block in parts.items():
        if block is not None:
            text = text.replace("{" + slot + "}", block.text)
    return text


def variant_id(text: str, blocks_version: str, *, preheader: str = "", body_block_ids=()) -> str:
    """Stable id of an email (subject, preheader, body blocks) under one blocks version."""
    content = "\n".join([blocks_version, text, preheader, *body_block_ids])
    return "v_" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def segment_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalised segment columns: unknown/missing category -> general, missing stage -> unknown."""
    category = frame["top_category"].astype("object")
    category = category.where(category.isin(SIMULATOR_CATEGORIES), GENERAL_CATEGORY)
    stage = frame["lifecycle_stage"].astype("object")
    stage = stage.where(stage.notna(), UNKNOWN_STAGE).astype(str)
    return pd.DataFrame({"top_category": category.to_numpy(), "lifecycle_stage": stage.to_numpy()})


def _hash_to_uint64(values: list[str]) -> np.ndarray:
    digests = b"".join(hashlib.sha256(v.encode("utf-8")).digest()[:8] for v in values)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def _capitalise_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _used_placeholders(template: str, blocks: ApprovedBlocks, category: str) -> dict[str, str]:
    if "{category_label}" in template:
        return {"category_label": blocks.category_labels[category]}
    return {}


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")
