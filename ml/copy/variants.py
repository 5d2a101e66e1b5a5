"""Subject-line variants composed from human-approved blocks, with guardrails.

No text is generated freely: every subject line is one of the approved `patterns` filled
with approved blocks (an opener, a hook for the subscriber's top category, a closer for the
lifecycle stage), or the approved fallback. The blocks file is versioned and reviewed; its
content hash is the template version recorded with every variant, and each variant carries
its `composition_recipe` (the block ids used), so any subject line sent can be traced back to
the approved text it came from. Guardrails run on every composed line; failures are kept
for audit but never chosen.

Blocks may use only whitelisted placeholders (`{category_label}`); personal data such as a
first name can never be merged into a subject line.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ml.copy.blocks import GENERAL_CATEGORY, UNKNOWN_STAGE, ApprovedBlocks, Block, fill_category_label, placeholder_names
from ml.copy.guardrails import check_guardrails
from ml.propensity.features import PRODUCT_CATEGORIES

GENERATION_METHOD_COMPOSED = "approved_block_composition"
GENERATION_METHOD_FALLBACK = "approved_fallback"

VARIANT_COLUMNS = (
    "top_category",
    "lifecycle_stage",
    "variant_id",
    "subject_line",
    "variant_category",
    "is_fallback",
    "composition_recipe",
    "generation_method",
    "blocks_version",
    "guardrail_passed",
    "guardrail_failures",
)

CHOICE_COLUMNS = (
    "subscriber_key",
    "variant_id",
    "subject_line",
    "variant_category",
    "is_fallback",
    "composition_recipe",
    "blocks_version",
)

def compose_variants(
    blocks: ApprovedBlocks, segments: pd.DataFrame, *, variants_per_segment: int = 3
) -> pd.DataFrame:
    """Compose candidate subject lines for every (top_category, lifecycle_stage) segment.

    Per segment: up to `variants_per_segment` composed lines (patterns taken in turn, block
    combinations in a fixed hash order), the generic fallback, and the category fallback
    when one is approved. Guardrails run on every row; failing rows stay with
    `guardrail_passed=False`. Unknown or missing categories become "general"; segments with
    an unknown lifecycle stage get fallbacks only. Returns `VARIANT_COLUMNS`, unique on
    (top_category, lifecycle_stage, variant_id).
    """
    if variants_per_segment < 0:
        raise ValueError("variants_per_segment must not be negative")
    _require_columns(segments, ("top_category", "lifecycle_stage"), "segments")
    segment_keys = _segment_keys(segments).drop_duplicates().sort_values(["top_category", "lifecycle_stage"])
    rows: list[dict[str, Any]] = []
    for category, stage in segment_keys.itertuples(index=False, name=None):
        composed = _compose_segment(blocks, category, stage)[:variants_per_segment]
        for text, recipe in composed:
            rows.append(_variant_row(blocks, category, stage, text, recipe, category, GENERATION_METHOD_COMPOSED))
        if category in blocks.category_fallbacks:
            block = blocks.category_fallbacks[category]
            text = fill_category_label(block.text, blocks.category_labels[category])
            recipe = {"fallback": block.id, "placeholders": _used_placeholders(block.text, blocks, category)}
            rows.append(_variant_row(blocks, category, stage, text, recipe, category, GENERATION_METHOD_FALLBACK))
        recipe = {"fallback": blocks.fallback.id, "placeholders": {}}
        rows.append(
            _variant_row(
                blocks, category, stage, blocks.fallback.text, recipe, GENERAL_CATEGORY, GENERATION_METHOD_FALLBACK
            )
        )
    variants = pd.DataFrame(rows, columns=list(VARIANT_COLUMNS))
    return variants.astype({"is_fallback": bool, "guardrail_passed": bool})


def choose_variant_per_subscriber(
    subscribers: pd.DataFrame, variants: pd.DataFrame, *, personalised: bool
) -> pd.DataFrame:
    """Pick one passing subject line per subscriber, deterministically.

    Personalised: one of the segment's passing composed variants, spread across them by a
    hash of subscriber_key and the segment's variant set (falling back to the category
    fallback, then the generic fallback, if none passes). Not personalised: the generic
    fallback for everyone. Returns `CHOICE_COLUMNS` in the subscribers' order.
    """
    _require_columns(subscribers, ("subscriber_key", "top_category", "lifecycle_stage"), "subscribers")
    _require_columns(variants, VARIANT_COLUMNS, "variants")
    if subscribers["subscriber_key"].isna().any():
        raise ValueError("subscribers have a missing subscriber_key")
    passing = variants[variants["guardrail_passed"]]
    generic = passing[passing["is_fallback"] & (passing["variant_category"] == GENERAL_CATEGORY)]
    generic = generic.drop_duplicates("variant_id")
    if len(generic) != 1:
        raise ValueError(f"variants must hold exactly one passing generic fallback, found {len(generic)}")
    output_columns = [c for c in CHOICE_COLUMNS if c != "subscriber_key"]

    if not personalised:
        chosen = pd.DataFrame({"subscriber_key": subscribers["subscriber_key"].to_numpy()})
        for column in output_columns:
            chosen[column] = generic.iloc[0][column]
        return chosen.astype({"is_fallback": bool})

    keys = _segment_keys(subscribers)
    known_segments = variants[["top_category", "lifecycle_stage"]].drop_duplicates()
    unknown = keys.drop_duplicates().merge(known_segments, how="left", indicator=True)
    unknown = unknown[unknown["_merge"] == "left_only"]
    if len(unknown):
        raise ValueError(f"no variants were composed for segments {unknown.iloc[:, :2].values.tolist()}")

    candidates = _candidates_per_segment(passing)
    members = keys.assign(subscriber_key=subscribers["subscriber_key"].to_numpy(), _order=np.arange(len(keys)))
    per_segment = candidates.groupby(["top_category", "lifecycle_stage"], as_index=False).agg(
        _candidates=("_rank", "size"), _set_id=("_set_id", "first")
    )
    members = members.merge(per_segment, on=["top_category", "lifecycle_stage"], how="left")
    hashes = _hash_to_uint64(
        [f"{set_id}:{key}" for set_id, key in zip(members["_set_id"], members["subscriber_key"])]
    )
    members["_rank"] = (hashes % members["_candidates"].to_numpy().astype(np.uint64)).astype(np.int64)
    chosen = members.merge(candidates, on=["top_category", "lifecycle_stage", "_rank"], how="left")
    chosen = chosen.sort_values("_order")
    return chosen[list(CHOICE_COLUMNS)].reset_index(drop=True).astype({"is_fallback": bool})


# ----------------------------------------------------------------------------- helpers


def _candidates_per_segment(passing: pd.DataFrame) -> pd.DataFrame:
    """Ranked choosable rows per segment: composed lines, else category fallback, else generic."""
    tier = np.select(
        [~passing["is_fallback"], passing["variant_category"] != GENERAL_CATEGORY], [0, 1], default=2
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
    return ranked[["top_category", "lifecycle_stage", "_rank", "_set_id", *CHOICE_COLUMNS[1:]]]


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


def _variant_row(
    blocks: ApprovedBlocks,
    category: str,
    stage: str,
    text: str,
    recipe: dict[str, Any],
    variant_category: str,
    method: str,
) -> dict[str, Any]:
    failures = check_guardrails(text)
    return {
        "top_category": category,
        "lifecycle_stage": stage,
        "variant_id": variant_id(text, blocks.blocks_version),
        "subject_line": text,
        "variant_category": variant_category,
        "is_fallback": method == GENERATION_METHOD_FALLBACK,
        "composition_recipe": json.dumps(recipe, sort_keys=True),
        "generation_method": method,
        "blocks_version": blocks.blocks_version,
        "guardrail_passed": not failures,
        "guardrail_failures": json.dumps(failures),
    }


def variant_id(text: str, blocks_version: str) -> str:
    """Stable id of a subject line under one blocks version."""
    return "v_" + hashlib.sha256(f"{blocks_version}\n{text}".encode("utf-8")).hexdigest()[:16]


def _segment_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalised segment columns: unknown/missing category -> general, missing stage -> unknown."""
    category = frame["top_category"].astype("object")
    category = category.where(category.isin(PRODUCT_CATEGORIES), GENERAL_CATEGORY)
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
