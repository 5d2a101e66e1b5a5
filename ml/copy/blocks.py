"""The approved-blocks file: human-reviewed copy that subject lines are composed from.

Its shape is a pydantic model; the rules that need several fields (placeholders, unique
ids, fallbacks that pass the guardrails) are checked after it. Blocks may use only
whitelisted placeholders (`{category_label}`); personal data such as a first name can
never be merged into a subject line. The content hash is the template version.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from ml.copy.guardrails import check_guardrails
from ml.vocabulary import SIMULATOR_CATEGORIES
from ml.vocabulary import LIFECYCLE_STAGES

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

class ApprovedBlocksError(ValueError):
    """The approved-blocks file is invalid; `code` says which rule it broke."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Block(BaseModel):
    """One approved piece of copy, identified by a stable id."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
    text: str

    @field_validator("text")
    @classmethod
    def _trimmed_and_non_empty(cls, text: str) -> str:
        if not text.strip() or text != text.strip():
            raise ValueError("text must be non-empty without outer spaces")
        return text


NonEmptyText = Annotated[str, StringConstraints(strict=True, min_length=1, pattern=r"\S")]
BlockList = Annotated[list[Block], Field(min_length=1)]


class ApprovedBlocksDocument(BaseModel):
    """The shape of an approved-blocks file; the placeholder and guardrail rules, which
    need the other fields, are checked in `parse_approved_blocks`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: NonEmptyText
    approved_by: NonEmptyText
    approved_at: NonEmptyText
    description: str | None = None
    category_labels: dict[str, NonEmptyText]
    patterns: BlockList
    openers: BlockList
    category_hooks: dict[str, BlockList]
    lifecycle_closers: dict[str, BlockList]
    fallback: Block
    category_fallbacks: dict[str, Block] = Field(default_factory=dict)

    @field_validator("approved_at")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        date.fromisoformat(value.strip()[:10])  # ValueError names the bad value
        return value

    @field_validator("category_labels")
    @classmethod
    def _a_label_per_segment_category(cls, mapping: dict) -> dict:
        return exactly_or_at_least(mapping, (GENERAL_CATEGORY, *SIMULATOR_CATEGORIES), exact=False)

    @field_validator("category_hooks")
    @classmethod
    def _hooks_per_segment_category(cls, mapping: dict) -> dict:
        return exactly_or_at_least(mapping, (GENERAL_CATEGORY, *SIMULATOR_CATEGORIES), exact=True)

    @field_validator("lifecycle_closers")
    @classmethod
    def _every_stage(cls, mapping: dict) -> dict:
        return exactly_or_at_least(mapping, LIFECYCLE_STAGES, exact=True)

    @field_validator("category_fallbacks")
    @classmethod
    def _known_categories(cls, mapping: dict) -> dict:
        unknown = sorted(set(mapping) - set(SIMULATOR_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}")
        return mapping


def exactly_or_at_least(mapping: dict, required: tuple[str, ...], *, exact: bool) -> dict:
    missing = [key for key in required if key not in mapping]
    if missing:
        raise ValueError(f"lacks {missing}")
    unknown = sorted(set(mapping) - set(required))
    if exact and unknown:
        raise ValueError(f"has unknown keys {unknown}")
    return mapping


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


def load_approved_blocks(path: str | Path) -> ApprovedBlocks:
    """Read and validate an approved-blocks JSON file; raise `ApprovedBlocksError` if invalid."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ApprovedBlocksError("invalid_json", f"{path}: {exc}") from exc
    return parse_approved_blocks(document)


def parse_approved_blocks(document: Mapping[str, Any]) -> ApprovedBlocks:
    """Validate an already-parsed approved-blocks document (see `load_approved_blocks`)."""
    try:
        parsed = ApprovedBlocksDocument.model_validate(document)
    except ValidationError as exc:
        raise schema_error(exc) from exc

    category_labels = parsed.category_labels
    for category, label in category_labels.items():
        _check_placeholders(label, f"category_labels.{category}", allowed=frozenset())

    patterns = tuple(parsed.patterns)
    for block in patterns:
        slots = _check_placeholders(block.text, f"patterns.{block.id}", allowed=PATTERN_SLOTS)
        if "hook" not in slots:
            raise ApprovedBlocksError("schema", f"pattern {block.id} must use the {{hook}} slot")
    openers = tuple(parsed.openers)
    segment_categories = (GENERAL_CATEGORY, *SIMULATOR_CATEGORIES)
    hooks = {category: tuple(parsed.category_hooks[category]) for category in segment_categories}
    closers = {stage: tuple(parsed.lifecycle_closers[stage]) for stage in LIFECYCLE_STAGES}
    fallback = parsed.fallback
    category_fallbacks = dict(parsed.category_fallbacks)

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
        (block.id, fill_category_label(block.text, category_labels[category])) for category, block in category_fallbacks.items()
    ]
    for block_id, text in fallback_texts:
        failures = check_guardrails(text)
        if failures:
            raise ApprovedBlocksError("fallback_fails_guardrails", f"fallback {block_id} {text!r} fails {failures}")

    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return ApprovedBlocks(
        version=parsed.version.strip(),
        approved_by=parsed.approved_by.strip(),
        approved_at=parsed.approved_at.strip(),
        content_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        category_labels=category_labels,
        patterns=patterns,
        openers=openers,
        category_hooks=hooks,
        lifecycle_closers=closers,
        fallback=fallback,
        category_fallbacks=category_fallbacks,
    )


def schema_error(exc: ValidationError) -> ApprovedBlocksError:
    """A blocks file's pydantic errors as one `schema` error naming each field and problem."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']}" for error in exc.errors()
    )
    return ApprovedBlocksError("schema", problems)


def fill_category_label(text: str, category_label: str) -> str:
    # Plain replacement, never str.format: block text must not be able to reach attributes.
    return text.replace("{category_label}", category_label)


def placeholder_names(text: str) -> set[str]:
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
