"""Guardrails every email must pass before it can be sent.

The subject line (and the preheader): length, control characters (header injection),
unresolved placeholders, spam terms, shouting, and no contact details (email, URL, phone
number: the PII patterns). The whole email (`check_email`): the brand's banned claims and
tone, a subject that is not deceptive relative to the body blocks (CAN-SPAM), and a rendered
email that carries the footer, the unsubscribe link and the postal address.

`REJECTION_REASONS` is the one list of codes a candidate can be rejected with.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_SUBJECT_LENGTH = 60
MAX_PREHEADER_LENGTH = 100
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

# Why a generation attempt produced no candidate, or a candidate that could not be read.
GENERATION_FAILURE_CODES = (
    "provider_error",  # the endpoint failed (HTTP error, refused connection) after its retries
    "timeout",  # the endpoint did not answer within the timeout, after its retries
    "invalid_json",  # the answer is not a JSON object
    "schema_violation",  # JSON, but not the requested shape (pydantic)
    "unknown_block_id",  # a body block id that is not approved for the segment
)
# The checks of a whole email, after the subject-line ones (GUARDRAIL_CODES, which also run
# on the preheader).
EMAIL_GUARDRAIL_CODES = (
    "preheader_too_long",
    "banned_claim",
    "off_brand_tone",
    "deceptive_subject",
    "missing_footer",
    "missing_unsubscribe",
    "missing_postal_address",
)
# Every reason a candidate can be rejected with, in the order they are checked.
REJECTION_REASONS = (*GENERATION_FAILURE_CODES, *GUARDRAIL_CODES, *EMAIL_GUARDRAIL_CODES)

@lru_cache(maxsize=None)
def _term_pattern(term: str) -> re.Pattern:
    """A case-insensitive whole-word match of `term` (word boundaries only at word characters)."""
    return re.compile(
        (r"\b" if term[0].isalnum() else "") + re.escape(term) + (r"\b" if term[-1].isalnum() else ""),
        re.IGNORECASE,
    )


_SPAM_PATTERNS = tuple(_term_pattern(term) for term in SPAM_TERMS)
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


def mentions(text: str, terms) -> list[str]:
    """The terms `text` mentions, as whole words, case-insensitively."""
    return [term for term in terms if _term_pattern(term).search(text)]


def check_email(
    subject: str | None,
    preheader: str | None,
    body_block_ids,
    email_blocks,
    rendered_html: str | None = None,
) -> list[str]:
    """The rejection codes of a whole email (empty: it passes), in REJECTION_REASONS order.

    `email_blocks` (ml.copy.email_blocks.EmailBlocks) holds the brand rules and the approved
    body blocks; `rendered_html` (ml.copy.render) is checked for the footer, the unsubscribe
    link and the postal address when given.
    """
    from ml.copy.render import footer_problems

    failures = set(check_guardrails(subject))
    failures |= {code for code in check_guardrails(preheader) if code != "too_long"}
    if preheader is not None and len(preheader) > MAX_PREHEADER_LENGTH:
        failures.add("preheader_too_long")
    lines = " \n ".join(text for text in (subject, preheader) if text)
    if mentions(lines, email_blocks.banned_claims):
        failures.add("banned_claim")
    if mentions(lines, email_blocks.off_brand_phrases):
        failures.add("off_brand_tone")
    if subject and deceptive_subject(subject, body_block_ids, email_blocks):
        failures.add("deceptive_subject")
    if rendered_html is not None:
        failures |= set(footer_problems(rendered_html, email_blocks))
    return [code for code in REJECTION_REASONS if code in failures]


def deceptive_subject(subject: str, body_block_ids, email_blocks) -> bool:
    """Whether the subject misleads about the email's content (CAN-SPAM): it poses as a reply,
    forward or transactional message, promises an offer no body block makes, or names a
    product category none of the body blocks is about."""
    lowered = subject.strip().lower()
    if any(lowered.startswith(prefix) for prefix in email_blocks.deceptive_prefixes):
        return True
    body_texts = [email_blocks.body_block(block_id).text for block_id in body_block_ids
                  if email_blocks.body_block(block_id) is not None]
    body = " ".join(body_texts)
    if any(not mentions(body, [term]) for term in mentions(subject, email_blocks.offer_terms)):
        return True
    body_categories = {email_blocks.category_of_body_block(block_id) for block_id in body_block_ids
                       if email_blocks.body_block(block_id) is not None}
    named = {category for category, terms in email_blocks.category_terms.items() if mentions(subject, terms)}
    return bool(named - body_categories)
