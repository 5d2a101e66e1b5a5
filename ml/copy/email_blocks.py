"""The approved email blocks: preheaders, body blocks, the footer with its unsubscribe link
and postal address, and the brand rules (banned claims, tone, offer and category terms) that
every email is checked against. Human-reviewed like the subject-line blocks; generated copy
may only pick body blocks from here, by id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from ml.copy.blocks import GENERAL_CATEGORY, ApprovedBlocksError, Block, exactly_or_at_least, schema_error
from ml.vocabulary import SIMULATOR_CATEGORIES

SEGMENT_CATEGORIES = (GENERAL_CATEGORY, *SIMULATOR_CATEGORIES)
Term = Annotated[str, StringConstraints(strict=True, min_length=1, pattern=r"\S")]


class Tone(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # (Exclamation marks and shouting are ml.copy.guardrails' rules, for every line.)
    off_brand_phrases: list[Term]


class EmailBlocksDocument(BaseModel):
    """The shape of an approved-email-blocks file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: Term
    approved_by: Term
    approved_at: Term
    description: str | None = None
    sender_name: Term
    postal_address: Term
    footer: Block
    unsubscribe: Block
    preheaders: dict[str, Block]
    body_blocks: dict[str, Annotated[list[Block], Field(min_length=1)]]
    banned_claims: list[Term]
    tone: Tone
    offer_terms: list[Term]
    deceptive_prefixes: list[Term]
    category_terms: dict[str, Annotated[list[Term], Field(min_length=1)]]

    @field_validator("preheaders", "body_blocks")
    @classmethod
    def _every_segment_category(cls, mapping: dict) -> dict:
        return exactly_or_at_least(mapping, SEGMENT_CATEGORIES, exact=True)

    @field_validator("category_terms")
    @classmethod
    def _product_categories(cls, mapping: dict) -> dict:
        return exactly_or_at_least(mapping, SIMULATOR_CATEGORIES, exact=True)


@dataclass(frozen=True)
class EmailBlocks:
    """The validated contents of an approved-email-blocks file."""

    version: str
    content_hash: str
    sender_name: str
    postal_address: str
    footer: Block
    unsubscribe: Block
    preheaders: Mapping[str, Block]
    body_blocks: Mapping[str, tuple[Block, ...]]
    banned_claims: tuple[str, ...]
    off_brand_phrases: tuple[str, ...]
    offer_terms: tuple[str, ...]
    deceptive_prefixes: tuple[str, ...]
    category_terms: Mapping[str, tuple[str, ...]]

    @property
    def blocks_version(self) -> str:
        return f"{self.version}-{self.content_hash[:12]}"

    def body_block(self, block_id: str) -> Block | None:
        return self.body_blocks_by_id.get(block_id)

    @property
    def body_blocks_by_id(self) -> dict[str, Block]:
        return {block.id: block for blocks in self.body_blocks.values() for block in blocks}

    def category_of_body_block(self, block_id: str) -> str:
        return next(c for c, blocks in self.body_blocks.items() if any(b.id == block_id for b in blocks))

    def allowed_body_block_ids(self, category: str) -> tuple[str, ...]:
        """The body blocks an email for a segment of `category` may use: its own and the general ones."""
        categories = (category, GENERAL_CATEGORY) if category != GENERAL_CATEGORY else (GENERAL_CATEGORY,)
        return tuple(block.id for c in categories for block in self.body_blocks[c])


def load_email_blocks(path: str | Path) -> EmailBlocks:
    """Read and validate an approved-email-blocks JSON file; raise `ApprovedBlocksError` naming
    the file and the problem."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ApprovedBlocksError("invalid_json", f"{path}: {exc}. Fix: make the file valid JSON.") from exc
    try:
        return parse_email_blocks(document)
    except ApprovedBlocksError as exc:
        raise ApprovedBlocksError(exc.code, f"{path}: {str(exc).removeprefix(exc.code + ': ')}") from exc


def parse_email_blocks(document: Mapping[str, Any]) -> EmailBlocks:
    try:
        parsed = EmailBlocksDocument.model_validate(document)
    except ValidationError as exc:
        raise schema_error(exc) from exc
    ids = [parsed.footer.id, parsed.unsubscribe.id, *(b.id for b in parsed.preheaders.values()),
           *(b.id for blocks in parsed.body_blocks.values() for b in blocks)]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ApprovedBlocksError("duplicate_block_id", f"block ids used more than once: {duplicated}")
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return EmailBlocks(
        version=parsed.version.strip(),
        content_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        sender_name=parsed.sender_name,
        postal_address=parsed.postal_address,
        footer=parsed.footer,
        unsubscribe=parsed.unsubscribe,
        preheaders=dict(parsed.preheaders),
        body_blocks={c: tuple(blocks) for c, blocks in parsed.body_blocks.items()},
        banned_claims=tuple(t.lower() for t in parsed.banned_claims),
        off_brand_phrases=tuple(t.lower() for t in parsed.tone.off_brand_phrases),
        offer_terms=tuple(t.lower() for t in parsed.offer_terms),
        deceptive_prefixes=tuple(t.lower() for t in parsed.deceptive_prefixes),
        category_terms={c: tuple(t.lower() for t in terms) for c, terms in parsed.category_terms.items()},
    )
