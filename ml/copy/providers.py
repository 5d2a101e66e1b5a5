"""Copy providers: where the day's email copy candidates come from.

`CopyProvider` is the interface: given segment briefs, return candidate rows
(ml.copy.variants.VARIANT_COLUMNS). Two implementations:

- `ApprovedBlocksProvider` (`approved_blocks`, the default and offline): the deterministic
  composer of human-approved blocks (ml.copy.variants.compose_variants).
- `OpenAICompatibleProvider` (`openai_compatible`): any OpenAI-compatible chat-completions
  endpoint (Ollama, vLLM, a hosted API) through an explicit `openai.OpenAI` client. It sends
  only a `SegmentBrief` (segment-level attributes, no person) with the registered prompt,
  asks for JSON against `GeneratedCopy`'s schema, and turns every failure into a recorded
  reason code instead of an exception: timeout, provider error, invalid JSON, schema
  violation, unknown block id.

Every candidate then goes through `check_variants`: the subject-line and whole-email
guardrails on the rendered email. A rejected candidate keeps its reason and is never planned;
the segment's approved default (the approved_blocks composition) is sent instead.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol, Sequence

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.copy.approval import APPROVED_BLOCKS_PROVIDER
from ml.copy.blocks import UNKNOWN_STAGE, ApprovedBlocks
from ml.copy.email_blocks import SEGMENT_CATEGORIES, EmailBlocks
from ml.copy.guardrails import MAX_PREHEADER_LENGTH, MAX_SUBJECT_LENGTH
from ml.copy.prompts import RegisteredPrompt, format_messages
from ml.copy.tracing import GenerationTracer
from ml.copy.variants import GENERATION_METHOD_GENERATED, VARIANT_COLUMNS, check_variants, compose_variants, segment_keys
from ml.vocabulary import LIFECYCLE_STAGES

APPROVED_BLOCKS = APPROVED_BLOCKS_PROVIDER
OPENAI_COMPATIBLE = "openai_compatible"
PROVIDERS = (APPROVED_BLOCKS, OPENAI_COMPATIBLE)

SEASONS = ("winter", "spring", "summer", "autumn")
# The most body blocks one email may use.
MAX_BODY_BLOCKS = 3


def season_of(day: date) -> str:
    """The (northern-hemisphere, meteorological) season of a day."""
    return SEASONS[(day.month % 12) // 3]


class SegmentBrief(BaseModel):
    """Everything a prompt may say about its audience: segment-level attributes, each from a
    closed list. It cannot hold a name, an email address or a subscriber key (no free text,
    no extra fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    lifecycle_stage: Literal[(*LIFECYCLE_STAGES, UNKNOWN_STAGE)]
    top_category: Literal[SEGMENT_CATEGORIES]
    recommendation_category: Literal[SEGMENT_CATEGORIES]
    season: Literal[SEASONS]


def segment_briefs(segments: pd.DataFrame, *, season: str) -> list[SegmentBrief]:
    """One brief per (top_category, lifecycle_stage) of `segments`; its `recommendation_category`
    column (optional; missing or unknown: the segment's category) is the category most of the
    segment's recommended products are in. Other columns are ignored, never passed on."""
    keys = segment_keys(segments)
    if "recommendation_category" in segments.columns:
        recommended = segments["recommendation_category"].astype("object").to_numpy()
    else:
        recommended = keys["top_category"].to_numpy()
    keys = keys.assign(recommendation_category=[
        r if r in SEGMENT_CATEGORIES else c for r, c in zip(recommended, keys["top_category"])
    ]).drop_duplicates(["top_category", "lifecycle_stage"]).sort_values(["top_category", "lifecycle_stage"])
    return [SegmentBrief(top_category=c, lifecycle_stage=s, recommendation_category=r, season=season)
            for c, s, r in keys[["top_category", "lifecycle_stage", "recommendation_category"]].itertuples(
                index=False, name=None)]


class GeneratedCopy(BaseModel):
    """The JSON a model must answer with: bounded slot values and approved block ids. (The
    bounds are loose on purpose: the guardrails give the precise reason, e.g. `too_long`.)"""

    model_config = ConfigDict(extra="forbid", strict=True)

    subject: str = Field(min_length=1, max_length=300)
    preheader: str = Field(min_length=1, max_length=400)
    body_block_ids: list[str] = Field(min_length=1, max_length=MAX_BODY_BLOCKS)


class CopyProvider(Protocol):
    name: str

    def variants(self, briefs: Sequence[SegmentBrief]) -> pd.DataFrame:
        """Candidate rows (VARIANT_COLUMNS) for the briefs' segments, before `check_variants`."""


class ApprovedBlocksProvider:
    """Today's deterministic composer: approved patterns filled with approved blocks."""

    name = APPROVED_BLOCKS

    def __init__(self, blocks: ApprovedBlocks, email_blocks: EmailBlocks, *, variants_per_segment: int = 3) -> None:
        self.blocks = blocks
        self.email_blocks = email_blocks
        self.variants_per_segment = variants_per_segment

    def variants(self, briefs: Sequence[SegmentBrief]) -> pd.DataFrame:
        segments = pd.DataFrame([(b.top_category, b.lifecycle_stage) for b in briefs],
                                columns=["top_category", "lifecycle_stage"])
        return compose_variants(self.blocks, segments, email_blocks=self.email_blocks,
                                variants_per_segment=self.variants_per_segment)


@dataclass(frozen=True)
class GenerationParameters:
    model: str
    temperature: float = 0.7
    max_tokens: int = 400

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}


@dataclass
class _Attempt:
    brief: SegmentBrief
    copy: GeneratedCopy | None = None
    reasons: list[str] = field(default_factory=list)
    detail: str = ""
    trace_id: str | None = None


class OpenAICompatibleProvider:
    """One chat completion per segment through `client` (an `openai.OpenAI`, which carries the
    base URL, API key, timeout and retries with backoff); the answer is validated with
    `GeneratedCopy` and the segment's allowed body block ids."""

    name = OPENAI_COMPATIBLE

    def __init__(self, client, *, prompt: RegisteredPrompt, email_blocks: EmailBlocks,
                 parameters: GenerationParameters, tracer: GenerationTracer | None = None,
                 max_consecutive_failures: int = 3) -> None:
        self.client = client
        self.max_consecutive_failures = max_consecutive_failures
        self.prompt = prompt
        self.email_blocks = email_blocks
        self.parameters = parameters
        self.tracer = tracer

    def messages(self, brief: SegmentBrief) -> list[dict[str, str]]:
        """The chat messages for a brief: the registered template filled with the brief and
        approved copy only."""
        allowed = self.email_blocks.allowed_body_block_ids(brief.top_category)
        by_id = self.email_blocks.body_blocks_by_id
        return format_messages(self.prompt.template, {
            **brief.model_dump(),
            "sender_name": self.email_blocks.sender_name,
            "allowed_body_blocks": "\n".join(f"- {block_id}: {by_id[block_id].text}" for block_id in allowed),
            "max_subject_length": MAX_SUBJECT_LENGTH,
            "max_preheader_length": MAX_PREHEADER_LENGTH,
        })

    def variants(self, briefs: Sequence[SegmentBrief]) -> pd.DataFrame:
        """One generated candidate (or failed attempt) per brief with a known stage. After
        `max_consecutive_failures` timeouts or provider errors in a row the endpoint is not
        called again in this run: the remaining segments are recorded as `provider_error`
        (a hanging endpoint would otherwise cost every segment its timeouts and retries)."""
        rows, failures_in_a_row = [], 0
        for brief in briefs:
            if brief.lifecycle_stage == UNKNOWN_STAGE:
                continue
            if failures_in_a_row >= self.max_consecutive_failures:
                attempt = _Attempt(brief, reasons=["provider_error"],
                                   detail=f"not called: the endpoint failed {failures_in_a_row} times in a row")
            else:
                attempt = self.generate(brief)
                unreachable = attempt.reasons and attempt.reasons[0] in ("timeout", "provider_error")
                failures_in_a_row = failures_in_a_row + 1 if unreachable else 0
            rows.append(self._row(attempt))
        return pd.DataFrame(rows, columns=list(VARIANT_COLUMNS)).astype({"is_fallback": bool, "guardrail_passed": bool})

    def generate(self, brief: SegmentBrief) -> _Attempt:
        import openai

        attempt = _Attempt(brief)
        messages = self.messages(brief)
        schema = _response_schema(self.email_blocks.allowed_body_block_ids(brief.top_category))
        trace_id = self.tracer.start(
            "copy_generation",
            inputs={"segment": brief.model_dump(), "prompt": self.prompt.uri},
            attributes={"provider": self.name, **self.parameters.as_dict()},
        ) if self.tracer else None
        started = time.perf_counter()
        usage: dict[str, Any] = {}
        try:
            response = self.client.chat.completions.create(
                model=self.parameters.model, messages=messages, temperature=self.parameters.temperature,
                max_tokens=self.parameters.max_tokens,
                response_format={"type": "json_schema", "json_schema": {"name": "email_copy", "schema": schema}},
            )
            if response.usage is not None:
                usage = {"prompt_tokens": response.usage.prompt_tokens,
                         "completion_tokens": response.usage.completion_tokens}
            content = response.choices[0].message.content if response.choices else None
            _read_answer(content, attempt, self.email_blocks)
        except openai.APITimeoutError as exc:
            attempt.reasons, attempt.detail = ["timeout"], type(exc).__name__
        except openai.APIError as exc:
            attempt.reasons, attempt.detail = ["provider_error"], f"{type(exc).__name__}: {str(exc)[:200]}"
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if self.tracer:
            self.tracer.end(trace_id, outputs={
                "copy": attempt.copy.model_dump() if attempt.copy else None, "rejection_reasons": attempt.reasons,
            }, attributes={"latency_ms": latency_ms, **usage}, ok=not attempt.reasons)
        attempt.trace_id = trace_id
        return attempt

    def _row(self, attempt: _Attempt) -> dict[str, Any]:
        brief, copy = attempt.brief, attempt.copy
        body = list(copy.body_block_ids) if copy else []
        content = json.dumps(copy.model_dump() if copy else {"failed": attempt.reasons, "segment": brief.model_dump()},
                             sort_keys=True)
        return {
            "top_category": brief.top_category,
            "lifecycle_stage": brief.lifecycle_stage,
            "variant_id": "g_" + hashlib.sha256(
                f"{self.name}|{self.parameters.model}|{self.prompt.uri}|{brief.top_category}|{content}".encode()
            ).hexdigest()[:16],
            "subject_line": copy.subject if copy else None,
            "preheader": copy.preheader if copy else None,
            "body_block_ids": json.dumps(body),
            "variant_category": brief.top_category,
            "is_fallback": False,
            "composition_recipe": json.dumps({"body": body, "prompt": self.prompt.uri, "brief": brief.model_dump(),
                                              **({"detail": attempt.detail} if attempt.detail else {})},
                                             sort_keys=True),
            "generation_method": GENERATION_METHOD_GENERATED,
            "blocks_version": self.email_blocks.blocks_version,
            "provider": self.name,
            "model": self.parameters.model,
            "prompt_name": self.prompt.name,
            "prompt_version": self.prompt.version,
            "generation_params": json.dumps(self.parameters.as_dict(), sort_keys=True),
            "trace_id": attempt.trace_id,
            "guardrail_passed": not attempt.reasons,
            "guardrail_failures": json.dumps(attempt.reasons),
            "rejection_reason": attempt.reasons[0] if attempt.reasons else None,
        }


def _response_schema(allowed_ids: Sequence[str]) -> dict[str, Any]:
    schema = GeneratedCopy.model_json_schema()
    schema["properties"]["body_block_ids"]["items"] = {"type": "string", "enum": list(allowed_ids)}
    return schema


def _read_answer(content: str | None, attempt: _Attempt, email_blocks: EmailBlocks) -> None:
    """Parse and validate a model's answer into `attempt` (its copy, or its reason)."""
    try:
        answer = json.loads(content or "")
    except json.JSONDecodeError as exc:
        attempt.reasons, attempt.detail = ["invalid_json"], str(exc)[:200]
        return
    if not isinstance(answer, dict):
        attempt.reasons, attempt.detail = ["invalid_json"], f"a JSON {type(answer).__name__}, not an object"
        return
    try:
        copy = GeneratedCopy.model_validate(answer)
    except ValidationError as exc:
        attempt.reasons = ["schema_violation"]
        attempt.detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:300]
        return
    allowed = set(email_blocks.allowed_body_block_ids(attempt.brief.top_category))
    unknown = [block_id for block_id in copy.body_block_ids if block_id not in allowed]
    if unknown:
        attempt.reasons, attempt.detail = ["unknown_block_id"], f"not approved for this segment: {unknown[:3]}"
        return
    attempt.copy = copy


def day_variants(briefs: Sequence[SegmentBrief], email_blocks: EmailBlocks, default: ApprovedBlocksProvider,
                 generator: CopyProvider | None = None, carried: pd.DataFrame | None = None) -> pd.DataFrame:
    """The day's candidates: the approved default's for every segment, the generator's (if
    any) for each segment without a `carried` variant (generated earlier, still proposed or
    approved: carried_generated_variants), and the carried rows. Every new candidate is
    checked (check_variants). Unique on (segment, variant_id)."""
    carried = carried if carried is not None else pd.DataFrame(columns=list(VARIANT_COLUMNS))
    has_copy = set(zip(carried["top_category"], carried["lifecycle_stage"]))
    frames = [default.variants(briefs)]
    if generator is not None and generator.name != APPROVED_BLOCKS:
        frames.append(generator.variants([b for b in briefs if (b.top_category, b.lifecycle_stage) not in has_copy]))
    frames = [frame for frame in frames if not frame.empty]
    new = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(VARIANT_COLUMNS))
    checked = check_variants(new, email_blocks)[list(VARIANT_COLUMNS)]
    segments = {(b.top_category, b.lifecycle_stage) for b in briefs}
    carried = carried[[key in segments for key in zip(carried["top_category"], carried["lifecycle_stage"])]]
    if carried.empty:
        return checked.reset_index(drop=True)
    return pd.concat([checked, carried[list(VARIANT_COLUMNS)]], ignore_index=True).astype(
        {"is_fallback": bool, "guardrail_passed": bool})


# The inputs of segment_inputs.
PROFILE_SEGMENT_INPUT = ("subscriber_key", "top_category", "lifecycle_stage")
RECOMMENDATION_SEGMENT_INPUT = ("subscriber_key", "rank", "product_id")
PRODUCT_CATEGORY_INPUT = ("product_id", "product_category")
# How many products a segment's preview email shows.
PREVIEW_PRODUCTS = 3


def segment_inputs(profiles: pd.DataFrame, recommendations: pd.DataFrame, product_categories: pd.DataFrame) -> pd.DataFrame:
    """Segment-level facts for prompts and previews, one row per (top_category,
    lifecycle_stage): `recommendation_category`, the category most of the segment's
    top-ranked recommendations are in (none: the segment's own), and `top_products`, the
    PREVIEW_PRODUCTS products recommended to most of its members (ties by id). Subscriber keys
    go in and only counts over segments come out."""
    for frame, columns, name in ((profiles, PROFILE_SEGMENT_INPUT, "profiles"),
                                 (recommendations, RECOMMENDATION_SEGMENT_INPUT, "recommendations"),
                                 (product_categories, PRODUCT_CATEGORY_INPUT, "product_categories")):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lack columns {missing}")
    people = segment_keys(profiles).assign(subscriber_key=profiles["subscriber_key"].to_numpy())
    segments = people[["top_category", "lifecycle_stage"]].drop_duplicates()
    recommended = recommendations[list(RECOMMENDATION_SEGMENT_INPUT)].merge(people, on="subscriber_key")
    categories = product_categories[list(PRODUCT_CATEGORY_INPUT)].drop_duplicates("product_id")
    first = recommended[recommended["rank"] == recommended.groupby("subscriber_key")["rank"].transform("min")]
    first = first.merge(categories, on="product_id", how="inner")
    counts = first.groupby(["top_category", "lifecycle_stage", "product_category"]).size().rename("n").reset_index()
    counts = counts.sort_values(["top_category", "lifecycle_stage", "n", "product_category"],
                                ascending=[True, True, False, True])
    top_category = counts.drop_duplicates(["top_category", "lifecycle_stage"]).rename(
        columns={"product_category": "recommendation_category"})[["top_category", "lifecycle_stage", "recommendation_category"]]
    products = recommended.groupby(["top_category", "lifecycle_stage", "product_id"]).size().rename("n").reset_index()
    products = products.sort_values(["top_category", "lifecycle_stage", "n", "product_id"], ascending=[True, True, False, True])
    top_products = products.groupby(["top_category", "lifecycle_stage"])["product_id"].agg(
        lambda ids: [str(i) for i in ids.head(PREVIEW_PRODUCTS)]).rename("top_products").reset_index()
    out = segments.merge(top_category, how="left").merge(top_products, how="left")
    out["recommendation_category"] = out["recommendation_category"].where(
        out["recommendation_category"].isin(SEGMENT_CATEGORIES), out["top_category"])
    out["top_products"] = [ids if isinstance(ids, list) else [] for ids in out["top_products"]]
    return out.sort_values(["top_category", "lifecycle_stage"]).reset_index(drop=True)


def carried_generated_variants(previous: pd.DataFrame, states: pd.Series) -> pd.DataFrame:
    """Generated variants of earlier days that still wait for a reviewer or are approved (the
    latest per segment): the day keeps them instead of generating the segment again."""
    from ml.copy.approval import APPROVED, PROPOSED

    if previous.empty:
        return pd.DataFrame(columns=list(VARIANT_COLUMNS))
    state = previous["variant_id"].map(states)
    live = previous[(previous["provider"] != APPROVED_BLOCKS) & previous["guardrail_passed"].astype(bool)
                    & state.isin([PROPOSED, APPROVED])]
    if "composed_on" in live.columns:
        live = live.sort_values("composed_on", ascending=False)
    return live.drop_duplicates(["top_category", "lifecycle_stage"])[list(VARIANT_COLUMNS)].reset_index(drop=True)
