"""The generation prompt, as a versioned artifact in the MLflow Prompt Registry.

The template below is the source; `ensure_registered_prompt` registers it (a new version
when no version holds this exact template) through an explicit `MlflowClient`, and sets the
alias when the alias does not exist yet. Generation then uses the version the alias points
at, so moving the alias (MLflow UI or `MlflowClient.set_prompt_alias`) is how a prompt is
released or rolled back. Every generated variant records the name and version it came from.

The template's variables are segment-level only (see ml.copy.providers.SegmentBrief) plus
approved copy and the length limits: nothing about a person can be filled in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

PROMPT_NAME = "email-copy-generation"
DEFAULT_PROMPT_ALIAS = "production"

SYSTEM_MESSAGE = (
    "You write marketing email copy for {{ sender_name }}, a shop. Tone: warm, calm, plain English; no pressure, "
    "no shouting, at most one exclamation mark, no prices, offers or claims that the body does not make. "
    "Never include personal data, email addresses, links or phone numbers. Answer with one JSON object only."
)
USER_MESSAGE = (
    "Write the subject line and preheader of an email for a customer segment.\n"
    "Segment: lifecycle stage {{ lifecycle_stage }}; top category {{ top_category }}; "
    "recommended products are mostly {{ recommendation_category }}; season {{ season }}.\n"
    "Pick 1 to 3 body blocks by id from this approved list (id: text):\n{{ allowed_body_blocks }}\n"
    "The subject must describe what the chosen body blocks say (at most {{ max_subject_length }} characters); "
    "the preheader at most {{ max_preheader_length }} characters.\n"
    'Answer as JSON: {"subject": "...", "preheader": "...", "body_block_ids": ["..."]}'
)
PROMPT_TEMPLATE: tuple[Mapping[str, str], ...] = (
    {"role": "system", "content": SYSTEM_MESSAGE},
    {"role": "user", "content": USER_MESSAGE},
)
PROMPT_VARIABLES = frozenset({
    "sender_name", "lifecycle_stage", "top_category", "recommendation_category", "season", "allowed_body_blocks",
    "max_subject_length", "max_preheader_length",
})
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class RegisteredPrompt:
    """A prompt version from the registry: what generation uses and records."""

    name: str
    version: int
    template: tuple[Mapping[str, str], ...]

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"


def format_messages(template: Sequence[Mapping[str, str]], values: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat messages with every `{{ variable }}` filled in. A template using a variable that
    is not in PROMPT_VARIABLES, or one without a value, is a ValueError naming it: a registered
    version cannot ask for anything else."""
    messages = []
    for message in template:
        names = set(_VARIABLE.findall(message["content"]))
        unknown = sorted(names - PROMPT_VARIABLES)
        if unknown:
            raise ValueError(f"prompt template uses variables {unknown}; allowed are {sorted(PROMPT_VARIABLES)}")
        missing = sorted(names - set(values))
        if missing:
            raise ValueError(f"prompt template needs values for {missing}")
        content = _VARIABLE.sub(lambda match: str(values[match.group(1)]), message["content"])
        messages.append({"role": message["role"], "content": content})
    return messages


def ensure_registered_prompt(client, *, alias: str = DEFAULT_PROMPT_ALIAS, name: str = PROMPT_NAME,
                             template: Sequence[Mapping[str, str]] = PROMPT_TEMPLATE) -> RegisteredPrompt:
    """The version `alias` points at, after registering `template` if no version holds it yet,
    and pointing `alias` at it if the alias does not exist yet (explicit `MlflowClient`)."""
    from mlflow.exceptions import MlflowException

    template = [dict(message) for message in template]
    versions = _versions(client, name)
    if not any(_same_template(version.template, template) for version in versions):
        client.register_prompt(
            name=name, template=template, commit_message="ml/copy/prompts.py PROMPT_TEMPLATE",
            tags={"source": "ml/copy/prompts.py"},
        )
        versions = _versions(client, name)
    try:
        chosen = client.get_prompt_version_by_alias(name, alias)
    except MlflowException:
        chosen = None
    if chosen is None:
        chosen = next(v for v in sorted(versions, key=lambda v: int(v.version), reverse=True)
                      if _same_template(v.template, template))
        client.set_prompt_alias(name, alias, int(chosen.version))
    return RegisteredPrompt(name=name, version=int(chosen.version), template=tuple(chosen.template))


def _versions(client, name: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_prompt_versions(name)
    except MlflowException:
        return []
    return list(found)


def _same_template(left, right) -> bool:
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)
