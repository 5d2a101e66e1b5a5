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
import re
import string
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ml.propensity.features import PRODUCT_CATEGORIES

APPROVED_BLOCKS_PATH = Path(__file__).resolve().parents[1] / "data" / "copy" / "approved_subject_lines.v1.json"

LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed", "never_engaged")
# Segment category for subscribers without a known top category (and the category of
# generic copy).
GENERAL_CATEGORY = "general"
# Segment stage for subscribers without a lifecycle stage; such segments get fallbacks only.
UNKNOWN_STAGE = "unknown"

ALLOWED_PLACEHOLDERS = frozenset({"category_label"})
PATTERN_SLOTS = frozenset({"opener", "hook", "closer"})
# Named explicitly so the error says why, not just "unknown".
PERSONAL_DATA_PLACEHOLDERS = frozenset(
    {"first_name", "last_name", "full_name", "name", "email", "email_address", "phone", "address", "birthday", "city"}
)

GENERATION_METHOD_COMPOSED = "approved_block_composition"
GENERATION_METHOD_FALLBACK = "approved_fallback"

MAX_SUBJECT_LENGTH = 70
MAX_EXCLAMATION_MARKS = 1
SPAM_TERMS = (
    "free!!!",
    "guaranteed",
    "act now",
    "100%",
    "$$$",
    "risk-free",
    "risk free",
    "click here",
    "buy now",
    "limited time only",
    "urgent",
    "winner",
    "you have been selected",
    "no obligation",
    "cash bonus",
    "earn money",
    "double your",
    "miracle",
    "once in a lifetime",
)

# Guardrail failure codes, in the order they are checked.
GUARDRAIL_CODES = (
    "empty",
    "too_long",
    "control_character",
    "unresolved_placeholder",
    "spam_term",
    "too_many_exclamation_marks",
    "all_caps_word",
    "contains_email",
    "contains_url",
    "contains_phone_number",
)

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

_SPAM_PATTERNS = tuple(
    re.compile(
        (r"\b" if term[0].isalnum() else "") + re.escape(term) + (r"\b" if term[-1].isalnum() else ""),
        re.IGNORECASE,
    )
    for term in SPAM_TERMS
)
_URL_PATTERN = re.compile(
    r"(https?://|www\.)|\b[a-z0-9-]+\.(com|net|org|io|co|uk|de|fr|shop|store|info|biz|ly)\b", re.IGNORECASE
)
# Seven or more digits, optionally separated by spaces, dots, dashes or brackets.
_PHONE_PATTERN = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")
_WORD_PATTERN = re.compile(r"[A-Za-z]+")
_BLOCK_ID_PATTERN = re.compile(r"^[a-z0-9_]+$")

_REQUIRED_KEYS = (
    "version",
    "approved_by",
    "approved_at",
    "category_labels",
    "patterns",
    "openers",
    "category_hooks",
    "lifecycle_closers",
    "fallback",
)
_OPTIONAL_KEYS = ("description", "category_fallbacks")


class ApprovedBlocksError(ValueError):
    """The approved-blocks file is invalid; `code` says which rule it broke."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Block:
    """One approved piece of copy, identified by a stable id."""

    id: str
    text: str


@dataclass(frozen=True)
class ApprovedBlocks:
    """The validated contents of an approved-blocks file."""

    version: str
    approved_by: str
    approved_at: str
    content_hash: str
    category_labels: Mapping[str, str]
    patterns: tuple[Block, ...]
    openers: tuple[Block, ...]
    category_hooks: Mapping[str, tuple[Block, ...]]
    lifecycle_closers: Mapping[str, tuple[Block, ...]]
    fallback: Block
    category_fallbacks: Mapping[str, Block]

    @property
    def blocks_version(self) -> str:
        """Template version id: the declared version plus the content hash prefix."""
        return f"{self.version}-{self.content_hash[:12]}"


def check_guardrails(text: str | None) -> list[str]:
    """Return the guardrail failure codes of a subject line (empty list: it passes)."""
    if text is None or not text.strip():
        return ["empty"]
    failures: list[str] = []
    if len(text) > MAX_SUBJECT_LENGTH:
        failures.append("too_long")
    # A newline in a subject is an email header injection.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        failures.append("control_character")
    if "{" in text or "}" in text:
        failures.append("unresolved_placeholder")
    if any(pattern.search(text) for pattern in _SPAM_PATTERNS):
        failures.append("spam_term")
    if text.count("!") > MAX_EXCLAMATION_MARKS:
        failures.append("too_many_exclamation_marks")
    if any(len(word) > 3 and word.isupper() for word in _WORD_PATTERN.findall(text)):
        failures.append("all_caps_word")
    if "@" in text:
        failures.append("contains_email")
    if _URL_PATTERN.search(text):
        failures.append("contains_url")
    if _PHONE_PATTERN.search(text):
        failures.append("contains_phone_number")
    return failures


def load_approved_blocks(path: str | Path = APPROVED_BLOCKS_PATH) -> ApprovedBlocks:
    """Read and validate an approved-blocks JSON file; raise `ApprovedBlocksError` if invalid."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ApprovedBlocksError("invalid_json", f"{path}: {exc}") from exc
    return parse_approved_blocks(document)


def parse_approved_blocks(document: Mapping[str, Any]) -> ApprovedBlocks:
    """Validate an already-parsed approved-blocks document (see `load_approved_blocks`)."""
    if not isinstance(document, Mapping):
        raise ApprovedBlocksError("schema", "the document must be a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in document]
    if missing:
        raise ApprovedBlocksError("schema", f"missing keys {missing}")
    unknown = sorted(set(document) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise ApprovedBlocksError("schema", f"unknown keys {unknown}")
    for key in ("version", "approved_by", "approved_at"):
        if not isinstance(document[key], str) or not document[key].strip():
            raise ApprovedBlocksError("schema", f"{key} must be a non-empty string")
    try:
        date.fromisoformat(document["approved_at"][:10])
    except ValueError as exc:
        raise ApprovedBlocksError("schema", f"approved_at is not an ISO date: {document['approved_at']!r}") from exc

    segment_categories = (GENERAL_CATEGORY, *PRODUCT_CATEGORIES)
    category_labels = _string_map(document["category_labels"], "category_labels", required=segment_categories)
    for category, label in category_labels.items():
        _check_placeholders(label, f"category_labels.{category}", allowed=frozenset())

    patterns = _block_list(document["patterns"], "patterns")
    for block in patterns:
        slots = _check_placeholders(block.text, f"patterns.{block.id}", allowed=PATTERN_SLOTS)
        if "hook" not in slots:
            raise ApprovedBlocksError("schema", f"pattern {block.id} must use the {{hook}} slot")
    openers = _block_list(document["openers"], "openers")
    hooks = _block_lists(document["category_hooks"], "category_hooks", required=segment_categories)
    closers = _block_lists(document["lifecycle_closers"], "lifecycle_closers", required=LIFECYCLE_STAGES)
    fallback = _block(document["fallback"], "fallback")
    category_fallbacks = {
        category: _block(raw, f"category_fallbacks.{category}")
        for category, raw in _mapping(document.get("category_fallbacks", {}), "category_fallbacks").items()
    }
    unknown_categories = sorted(set(category_fallbacks) - set(PRODUCT_CATEGORIES))
    if unknown_categories:
        raise ApprovedBlocksError("schema", f"category_fallbacks has unknown categories {unknown_categories}")

    content_blocks = [
        *(("openers", b) for b in openers),
        *((f"category_hooks.{c}", b) for c, bs in hooks.items() for b in bs),
        *((f"lifecycle_closers.{s}", b) for s, bs in closers.items() for b in bs),
        *((f"category_fallbacks.{c}", b) for c, b in category_fallbacks.items()),
    ]
    for where, block in content_blocks:
        _check_placeholders(block.text, f"{where}.{block.id}", allowed=ALLOWED_PLACEHOLDERS)
    # The generic fallback has no category to fill in.
    _check_placeholders(fallback.text, f"fallback.{fallback.id}", allowed=frozenset())

    all_ids = [b.id for b in patterns] + [b.id for _, b in content_blocks] + [fallback.id]
    duplicated = sorted({i for i in all_ids if all_ids.count(i) > 1})
    if duplicated:
        raise ApprovedBlocksError("duplicate_block_id", f"block ids used more than once: {duplicated}")

    # The fallbacks are what every subscriber can always get, so they must pass as they are.
    fallback_texts = [(fallback.id, fallback.text)] + [
        (block.id, _fill(block.text, category_labels[category])) for category, block in category_fallbacks.items()
    ]
    for block_id, text in fallback_texts:
        failures = check_guardrails(text)
        if failures:
            raise ApprovedBlocksError("fallback_fails_guardrails", f"fallback {block_id} {text!r} fails {failures}")

    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return ApprovedBlocks(
        version=document["version"].strip(),
        approved_by=document["approved_by"].strip(),
        approved_at=document["approved_at"].strip(),
        content_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        category_labels=category_labels,
        patterns=patterns,
        openers=openers,
        category_hooks=hooks,
        lifecycle_closers=closers,
        fallback=fallback,
        category_fallbacks=category_fallbacks,
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
            text = _fill(block.text, blocks.category_labels[category])
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
        slots = _placeholders(pattern.text)
        openers = blocks.openers if "opener" in slots else (None,)
        closers = blocks.lifecycle_closers[stage] if "closer" in slots else (None,)
        candidates = []
        for opener in openers:
            for hook in blocks.category_hooks[category]:
                for closer in closers:
                    parts = {"opener": opener, "hook": hook, "closer": closer}
                    template = _fill_slots(pattern, parts)
                    text = _capitalise_first(_fill(template, blocks.category_labels[category]))
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


def _fill(text: str, category_label: str) -> str:
    # Plain replacement, never str.format: block text must not be able to reach attributes.
    return text.replace("{category_label}", category_label)


def _used_placeholders(template: str, blocks: ApprovedBlocks, category: str) -> dict[str, str]:
    if "{category_label}" in template:
        return {"category_label": blocks.category_labels[category]}
    return {}


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _check_placeholders(text: str, where: str, *, allowed: frozenset[str]) -> set[str]:
    """Validate the `{...}` fields of a block; return their names."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ApprovedBlocksError("malformed_placeholder", f"{where}: {text!r} ({exc})") from exc
    names: set[str] = set()
    for _, field, format_spec, conversion in fields:
        if field is None:
            continue
        if format_spec or conversion:
            raise ApprovedBlocksError("malformed_placeholder", f"{where}: {text!r} uses a format spec or conversion")
        lowered = field.lower()
        if lowered in PERSONAL_DATA_PLACEHOLDERS or "name" in lowered or "email" in lowered:
            raise ApprovedBlocksError("personal_data_placeholder", f"{where}: {{{field}}} would merge personal data")
        if field not in allowed:
            raise ApprovedBlocksError("unknown_placeholder", f"{where}: {{{field}}} is not one of {sorted(allowed)}")
        names.add(field)
    return names


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ApprovedBlocksError("schema", f"{where} must be an object")
    return raw


def _string_map(raw: Any, where: str, *, required: tuple[str, ...]) -> dict[str, str]:
    mapping = _mapping(raw, where)
    missing = [k for k in required if k not in mapping]
    if missing:
        raise ApprovedBlocksError("schema", f"{where} lacks {missing}")
    for key, value in mapping.items():
        if not isinstance(value, str) or not value.strip():
            raise ApprovedBlocksError("schema", f"{where}.{key} must be a non-empty string")
    return {key: mapping[key] for key in mapping}


def _block(raw: Any, where: str) -> Block:
    if not isinstance(raw, Mapping) or set(raw) != {"id", "text"}:
        raise ApprovedBlocksError("schema", f"{where} must be an object with exactly 'id' and 'text'")
    block_id, text = raw["id"], raw["text"]
    if not isinstance(block_id, str) or not _BLOCK_ID_PATTERN.match(block_id):
        raise ApprovedBlocksError("schema", f"{where} id must match [a-z0-9_]+, got {block_id!r}")
    if not isinstance(text, str) or not text.strip() or text != text.strip():
        raise ApprovedBlocksError("schema", f"{where}.{block_id} text must be non-empty without outer spaces")
    return Block(id=block_id, text=text)


def _block_list(raw: Any, where: str) -> tuple[Block, ...]:
    if not isinstance(raw, list) or not raw:
        raise ApprovedBlocksError("schema", f"{where} must be a non-empty list")
    return tuple(_block(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _block_lists(raw: Any, where: str, *, required: tuple[str, ...]) -> dict[str, tuple[Block, ...]]:
    mapping = _mapping(raw, where)
    missing = [k for k in required if k not in mapping]
    if missing:
        raise ApprovedBlocksError("schema", f"{where} lacks {missing}")
    unknown = sorted(set(mapping) - set(required))
    if unknown:
        raise ApprovedBlocksError("schema", f"{where} has unknown keys {unknown}")
    return {key: _block_list(mapping[key], f"{where}.{key}") for key in required}


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")
