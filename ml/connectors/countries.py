"""Country names as exports write them, to the ISO 3166-1 alpha-2 codes the contract wants."""

from __future__ import annotations

import re

import pytz

# Names the ISO list (pytz.country_names) spells otherwise, as order exports write them
# (the UCI Online Retail export among them). A name mapped to "" is a region, not a
# country: it is written blank (the person's zone then falls back to the default) rather
# than guessed.
COUNTRY_ALIASES: dict[str, str] = {
    "united kingdom": "GB",
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "eire": "IE",
    "ireland": "IE",
    "republic of ireland": "IE",
    "usa": "US",
    "united states of america": "US",
    "rsa": "ZA",
    "korea": "KR",
    "south korea": "KR",
    "czechia": "CZ",
    # The UCI export's "Channel Islands" are Jersey and Guernsey; Jersey's zone and
    # currency are the same as Guernsey's, so one code loses nothing the pipeline reads.
    "channel islands": "JE",
    "european community": "",
    "unspecified": "",
    "west indies": "",
}


def _normalised(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().lower()


def _country_codes() -> dict[str, str]:
    """Every spelling this module knows, normalised, to its code ('' for a region)."""
    codes = {_normalised(name): code for code, name in pytz.country_names.items()}
    # An export may already hold codes: 'gb', 'DE'.
    codes.update({code.lower(): code for code in pytz.country_names})
    codes.update(COUNTRY_ALIASES)
    return codes


_CODES = _country_codes()


def country_code(name: str) -> str | None:
    """The ISO code of a country name (any case, spacing ignored); '' for a blank name or a
    known region that is not one country (e.g. 'European Community'); None when unknown."""
    normalised = _normalised(name)
    if not normalised:
        return ""
    return _CODES.get(normalised)
