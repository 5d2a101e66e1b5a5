"""Guardrails every subject line must pass before it can be sent: length, control
characters (header injection), unresolved placeholders, spam terms, shouting, and no
contact details (email, URL, phone number)."""

from __future__ import annotations

import re

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
