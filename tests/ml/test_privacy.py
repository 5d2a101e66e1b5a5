import hashlib
import hmac

import pytest

from ml.privacy import normalise_email, subscriber_key


def test_normalisation_makes_one_person_out_of_case_and_whitespace_variants():
    assert normalise_email("  Ada.Lovelace@Example.COM \t") == "ada.lovelace@example.com"
    assert normalise_email("   ") is None
    assert normalise_email(None) is None


def test_subscriber_key_is_hmac_sha256_of_the_normalised_email():
    expected = hmac.new(b"s3cret", b"ada@example.com", hashlib.sha256).hexdigest()
    assert subscriber_key(" ADA@example.com", "s3cret") == expected
    assert subscriber_key("ada@example.com", "s3cret") == subscriber_key("Ada@Example.com ", "s3cret")


def test_subscriber_key_depends_on_the_secret_and_is_not_a_plain_hash():
    key = subscriber_key("ada@example.com", "one")
    assert key != subscriber_key("ada@example.com", "two")
    assert key != hashlib.sha256(b"ada@example.com").hexdigest()
    assert subscriber_key(None, "one") is None


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        subscriber_key("ada@example.com", "")
