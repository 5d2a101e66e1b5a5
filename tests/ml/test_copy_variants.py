import copy
from datetime import datetime
import json
from pathlib import Path
import re

import pandas as pd
import pytest

from ml.copy.approval import AutoApproval, approved_block_ids, new_variant_records, with_approval_states
from ml.copy.blocks import LIFECYCLE_STAGES, ApprovedBlocksError, load_approved_blocks, parse_approved_blocks
from ml.copy.email_blocks import load_email_blocks
from ml.copy.guardrails import MAX_SUBJECT_LENGTH, check_guardrails
from ml.copy.variants import (
    CHOICE_COLUMNS,
    compose_variants,
    GENERATION_METHOD_COMPOSED,
    GENERATION_METHOD_FALLBACK,
    VARIANT_COLUMNS,
    choose_variant_per_subscriber,
    compose_variants,
)
from ml.vocabulary import SIMULATOR_CATEGORIES

FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Emma", "Finn", "Grace", "Hannah", "Isla", "James", "Jack", "Laura",
    "Liam", "Lucas", "Maria", "Mia", "Noah", "Olivia", "Oliver", "Sophie", "Thomas", "Zoe",
)

ALL_SEGMENTS = pd.DataFrame(
    [(c, s) for c in (*SIMULATOR_CATEGORIES, None, "garden") for s in (*LIFECYCLE_STAGES, None)],
    columns=["top_category", "lifecycle_stage"],
)


def _blocks(prefix, texts):
    return [{"id": f"{prefix}_{i}", "text": t} for i, t in enumerate(texts)]


def minimal_document():
    """A small valid document: one opener, two hooks per category, two closers per stage."""
    categories = ("general", *SIMULATOR_CATEGORIES)
    return {
        "version": "test1",
        "approved_by": "test review",
        "approved_at": "2025-01-31",
        "category_labels": {c: f"{c} things" for c in categories},
        "patterns": [{"id": "pt_a", "text": "{opener} {hook}"}, {"id": "pt_b", "text": "{hook} - {closer}"}],
        "openers": _blocks("op", ["Just in:"]),
        "category_hooks": {c: _blocks(f"hk_{c}", [f"ideas for {c}", "new {category_label}"]) for c in categories},
        "lifecycle_closers": {s: _blocks(f"cl_{s}", [f"hello {s}", "have a look"]) for s in LIFECYCLE_STAGES},
        "fallback": {"id": "fb_general", "text": "This week in our shop"},
        "category_fallbacks": {"toys": {"id": "fb_toys", "text": "Fresh {category_label} this week"}},
    }


EMAIL_BLOCKS = load_email_blocks(Path(__file__).resolve().parents[2] / "data" / "copy" / "approved_email_blocks.v1.json")


def compose(blocks, segments, **kwargs):
    """The variants as the pipeline has them: composed with the approved email blocks, and
    approved by the approved_blocks auto-approval (when their blocks are all approved)."""
    variants = compose_variants(blocks, segments, email_blocks=EMAIL_BLOCKS, **kwargs)
    log = new_variant_records(variants, pd.Series(dtype="object"), auto=AutoApproval(approved_blocks=True),
                              at=datetime(2025, 6, 1), approved_block_ids=approved_block_ids(blocks, EMAIL_BLOCKS))
    return with_approval_states(variants, log)


@pytest.fixture(scope="module")
def real_blocks():
    return load_approved_blocks(APPROVED_SUBJECT_LINES)


APPROVED_SUBJECT_LINES = Path(__file__).resolve().parents[2] / "data" / "copy" / "approved_subject_lines.v1.json"


@pytest.fixture(scope="module")
def real_variants(real_blocks):
    return compose(real_blocks, ALL_SEGMENTS)


def subscribers_frame(n=600):
    categories = [*SIMULATOR_CATEGORIES, None]
    return pd.DataFrame(
        {
            "subscriber_key": [f"{i:064x}" for i in range(n)],
            "top_category": [categories[i % len(categories)] for i in range(n)],
            "lifecycle_stage": [LIFECYCLE_STAGES[(i // 7) % len(LIFECYCLE_STAGES)] for i in range(n)],
        }
    )


# ----------------------------------------------------------------------------- guardrails


def test_clean_subject_line_passes():
    assert check_guardrails("Picked for you: easy layers for changing weather") == []
    assert check_guardrails("NEW in: 20% off 3 styles!") == []  # 3-letter caps, one "!", short numbers


@pytest.mark.parametrize(
    "text, code",
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "empty"),
        ("x" * (MAX_SUBJECT_LENGTH + 1), "too_long"),
        ("Hello\r\nBcc: victim", "control_character"),
        ("Hello {first_name}", "unresolved_placeholder"),
        ("New picks} for you", "unresolved_placeholder"),
        ("Guaranteed savings on tech", "spam_term"),
        ("Act now for new shoes", "spam_term"),
        ("100% cotton tees", "spam_term"),
        ("Make $$$ this week", "spam_term"),
        ("Click here for new kit", "spam_term"),
        ("Wow! New stuff!", "too_many_exclamation_marks"),
        ("Huge SALE on boots", "all_caps_word"),
        ("Write to hello@shop.example", "contains_email"),
        ("Tell a friend @ the shop", "contains_email"),
        ("Visit www.example for more", "contains_url"),
        ("See https://x.test/a", "contains_url"),
        ("Deals at bestshop.com today", "contains_url"),
        ("Call +44 20 7946 0958 today", "contains_phone_number"),
        ("Call 555-123-4567", "contains_phone_number"),
    ],
)
def test_guardrail_failure_codes(text, code):
    assert code in check_guardrails(text)


def test_guardrail_boundaries():
    assert check_guardrails("x" * MAX_SUBJECT_LENGTH) == []
    assert check_guardrails("One exclamation is fine!") == []
    assert check_guardrails("Save 20% on 3 items in 2025") == []  # not a phone number
    assert check_guardrails("Not urgently needed") == []  # spam terms match whole words only
    assert set(check_guardrails("FREE!!!")) == {"spam_term", "too_many_exclamation_marks", "all_caps_word"}


# ----------------------------------------------------------------------------- loading


def test_real_blocks_file_loads(real_blocks):
    assert real_blocks.version == "v1"
    assert real_blocks.approved_by and real_blocks.approved_at
    assert re.fullmatch(r"v1-[0-9a-f]{12}", real_blocks.blocks_version)
    assert real_blocks.blocks_version == f"v1-{real_blocks.content_hash[:12]}"
    assert set(real_blocks.category_hooks) == {"general", *SIMULATOR_CATEGORIES}
    assert set(real_blocks.lifecycle_closers) == set(LIFECYCLE_STAGES)
    assert check_guardrails(real_blocks.fallback.text) == []


def test_content_hash_ignores_formatting_but_tracks_content(tmp_path):
    document = minimal_document()
    compact, pretty = tmp_path / "compact.json", tmp_path / "pretty.json"
    compact.write_text(json.dumps(document))
    pretty.write_text(json.dumps(document, indent=4, sort_keys=True))
    assert load_approved_blocks(compact).content_hash == load_approved_blocks(pretty).content_hash

    changed = copy.deepcopy(document)
    changed["openers"][0]["text"] = "Just landed:"
    assert parse_approved_blocks(changed).content_hash != parse_approved_blocks(document).content_hash


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda d: d["category_hooks"]["toys"].append({"id": "hk_bad", "text": "for {season}"}), "unknown_placeholder"),
        (lambda d: d["openers"].append({"id": "op_bad", "text": "Hi {first_name},"}), "personal_data_placeholder"),
        (lambda d: d["openers"].append({"id": "op_bad", "text": "Hi {customer_email}"}), "personal_data_placeholder"),
        (lambda d: d["openers"].append({"id": "op_bad", "text": "Hi {category_label.upper}"}), "unknown_placeholder"),
        (lambda d: d["openers"].append({"id": "op_bad", "text": "Hi {category_label!r}"}), "malformed_placeholder"),
        (lambda d: d["openers"].append({"id": "op_bad", "text": "Hi {category_label"}), "malformed_placeholder"),
        (lambda d: d.update(fallback={"id": "fb_general", "text": "Our {category_label}"}), "unknown_placeholder"),
        (lambda d: d.update(fallback={"id": "fb_general", "text": "ACT NOW!!!"}), "fallback_fails_guardrails"),
        (
            lambda d: d["category_fallbacks"].update(toys={"id": "fb_toys", "text": "Guaranteed {category_label}"}),
            "fallback_fails_guardrails",
        ),
        (lambda d: d["patterns"].append({"id": "pt_bad", "text": "{opener} {closer}"}), "schema"),
        (lambda d: d["patterns"].append({"id": "pt_bad", "text": "{hook} {category_label}"}), "unknown_placeholder"),
        (lambda d: d["category_hooks"].pop("beauty"), "schema"),
        (lambda d: d["lifecycle_closers"].pop("lapsed"), "schema"),
        (lambda d: d.pop("approved_by"), "schema"),
        (lambda d: d.update(approved_at="last tuesday"), "schema"),
        (lambda d: d.update(surprise="extra"), "schema"),
        (lambda d: d["openers"].append({"id": "hk_toys_0", "text": "Again:"}), "duplicate_block_id"),
        (lambda d: d["openers"].append({"id": "Bad Id", "text": "Hi"}), "schema"),
        (lambda d: d["openers"].clear(), "schema"),
        (lambda d: d["category_hooks"].update(garden=[{"id": "hk_garden", "text": "for the garden"}]), "schema"),
        (lambda d: d["category_fallbacks"].update(garden={"id": "fb_garden", "text": "Garden news"}), "schema"),
        (lambda d: d.update(version=7), "schema"),
    ],
)
def test_invalid_documents_are_rejected_with_a_code(mutate, code):
    document = minimal_document()
    mutate(document)
    with pytest.raises(ApprovedBlocksError) as error:
        parse_approved_blocks(document)
    assert error.value.code == code


def test_invalid_json_file_is_rejected(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ApprovedBlocksError) as error:
        load_approved_blocks(path)
    assert error.value.code == "invalid_json"


# ----------------------------------------------------------------------------- composition


def test_composition_shape_and_provenance(real_blocks, real_variants):
    assert list(real_variants.columns) == [*VARIANT_COLUMNS, "approval_state"]
    assert not real_variants.duplicated(["top_category", "lifecycle_stage", "variant_id"]).any()
    both_versions = f"{real_blocks.blocks_version}+{EMAIL_BLOCKS.blocks_version}"
    assert (real_variants["blocks_version"] == both_versions).all()
    assert (real_variants["provider"] == "approved_blocks").all() and real_variants["prompt_name"].isna().all()
    composed = real_variants[~real_variants["is_fallback"]]
    assert (composed["generation_method"] == GENERATION_METHOD_COMPOSED).all()
    assert (real_variants.loc[real_variants["is_fallback"], "generation_method"] == GENERATION_METHOD_FALLBACK).all()
    # Unknown or missing categories become the general segment; missing stages get fallbacks only.
    assert set(real_variants["top_category"]) == {"general", *SIMULATOR_CATEGORIES}
    unknown_stage = real_variants[real_variants["lifecycle_stage"] == "unknown"]
    assert len(unknown_stage) and unknown_stage["is_fallback"].all()


def test_every_real_segment_has_several_passing_personalised_lines(real_variants):
    known = real_variants[real_variants["lifecycle_stage"].isin(LIFECYCLE_STAGES)]
    composed_passing = known[~known["is_fallback"] & known["guardrail_passed"]]
    per_segment = composed_passing.groupby(["top_category", "lifecycle_stage"]).size()
    assert len(per_segment) == (len(SIMULATOR_CATEGORIES) + 1) * len(LIFECYCLE_STAGES)
    assert per_segment.min() >= 2


def test_recipe_reproduces_the_subject_line_from_approved_blocks(real_blocks, real_variants):
    by_id = {b.id: b.text for b in real_blocks.openers}
    for hooks in real_blocks.category_hooks.values():
        by_id.update({b.id: b.text for b in hooks})
    for closers in real_blocks.lifecycle_closers.values():
        by_id.update({b.id: b.text for b in closers})
    by_id.update({b.id: b.text for b in real_blocks.category_fallbacks.values()})
    by_id[real_blocks.fallback.id] = real_blocks.fallback.text
    patterns = {p.id: p.text for p in real_blocks.patterns}
    for row in real_variants.itertuples():
        recipe = json.loads(row.composition_recipe)
        if row.is_fallback:
            text = by_id[recipe["fallback"]]
        else:
            text = patterns[recipe["pattern"]]
            for slot, block_id in recipe["blocks"].items():
                text = text.replace("{" + slot + "}", by_id[block_id])
        for name, value in recipe["placeholders"].items():
            text = text.replace("{" + name + "}", value)
        if not row.is_fallback:
            text = text[:1].upper() + text[1:]
        assert text == row.subject_line


def test_no_output_contains_personal_data(real_blocks, real_variants):
    chosen = choose_variant_per_subscriber(subscribers_frame(), real_variants, personalised=True)
    texts = pd.concat([real_variants["subject_line"], real_variants["composition_recipe"], chosen["subject_line"]])
    name_pattern = re.compile(r"\b(" + "|".join(FIRST_NAMES) + r")\b", re.IGNORECASE)
    for text in texts:
        assert "@" not in text
        assert not name_pattern.search(text), text


def test_bad_blocks_are_kept_flagged_and_never_chosen():
    document = minimal_document()
    # Every composed apparel line either carries a spam term or is too long.
    document["category_hooks"]["apparel"] = _blocks("hk_apparel", ["guaranteed bargains", "x" * 80])
    blocks = parse_approved_blocks(document)
    segments = pd.DataFrame({"top_category": ["apparel"], "lifecycle_stage": ["new"]})
    variants = compose(blocks, segments, variants_per_segment=10)
    composed = variants[~variants["is_fallback"]]
    assert len(composed) == 6 and not composed["guardrail_passed"].any()  # 2 hooks x (1 opener + 2 closers)
    failures = set().union(*(json.loads(f) for f in composed["guardrail_failures"]))
    assert {"spam_term", "too_long"} <= failures
    assert (variants.loc[variants["guardrail_passed"], "guardrail_failures"] == "[]").all()

    subscribers = pd.DataFrame({"subscriber_key": ["a", "b", "c"], "top_category": "apparel", "lifecycle_stage": "new"})
    chosen = choose_variant_per_subscriber(subscribers, variants, personalised=True)
    assert chosen["is_fallback"].all()
    assert set(chosen["subject_line"]) == {"This week in our shop"}  # apparel has no category fallback here


def test_category_fallback_is_preferred_over_generic_when_nothing_composed_passes():
    document = minimal_document()
    document["category_hooks"]["toys"] = _blocks("hk_toys", ["guaranteed fun"])
    segments = pd.DataFrame({"top_category": ["toys"], "lifecycle_stage": ["active"]})
    variants = compose(parse_approved_blocks(document), segments)
    chosen = choose_variant_per_subscriber(
        pd.DataFrame({"subscriber_key": ["k1", "k2"], "top_category": "toys", "lifecycle_stage": "active"}),
        variants,
        personalised=True,
    )
    assert chosen["subject_line"].tolist() == ["Fresh toys things this week"] * 2
    assert chosen["variant_category"].tolist() == ["toys", "toys"]
    assert chosen["is_fallback"].all()


def test_composition_is_deterministic(real_blocks):
    first = compose(real_blocks, ALL_SEGMENTS)
    second = compose(real_blocks, ALL_SEGMENTS.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(first, second)


def test_variant_ids_change_with_the_blocks_version():
    document = minimal_document()
    segments = pd.DataFrame({"top_category": ["home"], "lifecycle_stage": ["active"]})
    before = compose(parse_approved_blocks(document), segments, variants_per_segment=10)
    document["version"] = "test2"
    after = compose(parse_approved_blocks(document), segments, variants_per_segment=10)
    assert sorted(before["subject_line"]) == sorted(after["subject_line"])
    assert not set(before["variant_id"]) & set(after["variant_id"])


def test_variants_per_segment_limits_composed_lines_and_alternates_patterns():
    blocks = parse_approved_blocks(minimal_document())
    segments = pd.DataFrame({"top_category": ["home"], "lifecycle_stage": ["new"]})
    variants = compose(blocks, segments, variants_per_segment=2)
    composed = variants[~variants["is_fallback"]]
    assert len(composed) == 2
    assert {json.loads(r)["pattern"] for r in composed["composition_recipe"]} == {"pt_a", "pt_b"}
    assert len(compose(blocks, segments, variants_per_segment=0).query("not is_fallback")) == 0


# ----------------------------------------------------------------------------- choice


def test_every_subscriber_gets_a_passing_choice_of_its_segment(real_variants):
    subscribers = subscribers_frame()
    chosen = choose_variant_per_subscriber(subscribers, real_variants, personalised=True)
    assert list(chosen.columns) == list(CHOICE_COLUMNS)
    assert chosen["subscriber_key"].tolist() == subscribers["subscriber_key"].tolist()
    assert chosen["subject_line"].map(check_guardrails).map(len).eq(0).all()
    # Subscribers in known segments get personalised, category-matched copy.
    known = subscribers["top_category"].isin(SIMULATOR_CATEGORIES).to_numpy()
    assert not chosen.loc[known, "is_fallback"].any()
    assert (chosen.loc[known, "variant_category"].to_numpy() == subscribers.loc[known, "top_category"].to_numpy()).all()
    assert (chosen.loc[~known, "variant_category"] == "general").all()
    # The chosen variant is one of the passing variants composed for that subscriber's segment.
    segment_of = subscribers.assign(top_category=subscribers["top_category"].fillna("general"))
    merged = segment_of.merge(chosen, on="subscriber_key").merge(
        real_variants[real_variants["guardrail_passed"]],
        on=["top_category", "lifecycle_stage", "variant_id"],
        how="left",
        indicator=True,
    )
    assert (merged["_merge"] == "both").all()


def test_choice_is_deterministic_and_order_independent(real_variants):
    subscribers = subscribers_frame()
    first = choose_variant_per_subscriber(subscribers, real_variants, personalised=True)
    again = choose_variant_per_subscriber(subscribers, real_variants, personalised=True)
    shuffled_input = subscribers.sample(frac=1, random_state=7)
    shuffled = choose_variant_per_subscriber(shuffled_input, real_variants, personalised=True)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(
        first.set_index("subscriber_key").sort_index(), shuffled.set_index("subscriber_key").sort_index()
    )


def test_choice_spreads_subscribers_across_candidates(real_variants):
    n = 3000
    subscribers = pd.DataFrame(
        {"subscriber_key": [f"key-{i}" for i in range(n)], "top_category": "outdoor", "lifecycle_stage": "lapsed"}
    )
    chosen = choose_variant_per_subscriber(subscribers, real_variants, personalised=True)
    shares = chosen["variant_id"].value_counts(normalize=True)
    assert len(shares) == 3
    assert shares.between(0.28, 0.39).all()


def test_not_personalised_gives_everyone_the_generic_fallback(real_blocks, real_variants):
    chosen = choose_variant_per_subscriber(subscribers_frame(50), real_variants, personalised=False)
    assert (chosen["subject_line"] == real_blocks.fallback.text).all()
    assert chosen["is_fallback"].all()
    assert (chosen["variant_category"] == "general").all()
    assert chosen["variant_id"].nunique() == 1
    assert json.loads(chosen["composition_recipe"].iloc[0])["fallback"] == real_blocks.fallback.id


def test_choice_refuses_segments_that_were_not_composed():
    blocks = parse_approved_blocks(minimal_document())
    variants = compose(blocks, pd.DataFrame({"top_category": ["home"], "lifecycle_stage": ["new"]}))
    subscribers = pd.DataFrame({"subscriber_key": ["k"], "top_category": ["toys"], "lifecycle_stage": ["new"]})
    with pytest.raises(ValueError, match="no variants were composed"):
        choose_variant_per_subscriber(subscribers, variants, personalised=True)


def test_choice_handles_no_subscribers(real_variants):
    empty = pd.DataFrame({"subscriber_key": [], "top_category": [], "lifecycle_stage": []})
    assert choose_variant_per_subscriber(empty, real_variants, personalised=True).empty
