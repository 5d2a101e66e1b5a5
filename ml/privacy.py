"""Pseudonymous subscriber keys.

The only identifier that leaves the PII vault is ``subscriber_key``: an HMAC-SHA256 of the
normalised email under a secret. Without the secret the key cannot be linked back to an
email by hashing guesses, unlike a plain hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# Used only when no secret is configured; callers must warn loudly when they fall back to it.
DEVELOPMENT_ONLY_SECRET = "DEVELOPMENT-ONLY-not-a-secret-set-SUBSCRIBER_KEY_SECRET"


# Characters stripped from both ends of an email: Python's Unicode whitespace plus the
# zero-width spaces and the byte-order mark. The SQL twin is the dbt macro
# surrounding_space_class; a test compares the two over every character.
SURROUNDING_SPACE = "[\\s\u200b-\u200d\u2060\ufeff]"
_SURROUNDING = re.compile(f"^{SURROUNDING_SPACE}+|{SURROUNDING_SPACE}+$")


def normalise_email(email: str | None) -> str | None:
    """Strip surrounding space of every kind and lower-case an email, so one person's
    addresses from several systems match."""
    if email is None:
        return None
    normalised = _SURROUNDING.sub("", email).lower()
    return normalised or None


def crm_record_key(crm_id: str, secret: str) -> str:
    """The subscriber key of a CRM record without an email (contract v2): the HMAC of
    "crm-id:" and the id's UTF-8 bytes in hex. It can never equal an email's key (an email
    has an @), and ids that differ only in case stay different people. The SQL twin is in
    dbt_project/models/intermediate/int_subscriber_records_keyed.sql."""
    key = subscriber_key(f"crm-id:{crm_id.encode('utf-8').hex()}", secret)
    assert key is not None
    return key


def subscriber_key(email: str | None, secret: str) -> str | None:
    """HMAC-SHA256 (hex) of the normalised email; ``None`` for a missing email."""
    if not secret:
        raise ValueError("subscriber key secret must not be empty")
    normalised = normalise_email(email)
    if normalised is None:
        return None
    return hmac.new(secret.encode("utf-8"), normalised.encode("utf-8"), hashlib.sha256).hexdigest()
