"""Whole-email guardrails, the rendered email's structure, approval moves and the prompt."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ml.copy.approval import (
    APPROVAL_STATES, NOT_APPROVED_REASONS, STATE_ORDER, TRANSITIONS, ApprovalError, AutoApproval, approved_block_ids,
    auto_approvable, current_states, decision_row, new_variant_records,
)
from ml.copy.blocks import ApprovedBlocksError, load_approved_blocks
from ml.copy.email_blocks import load_email_blocks, parse_email_blocks
from ml.copy.guardrails import EMAIL_GUARDRAIL_CODES, GENERATION_FAILURE_CODES, GUARDRAIL_CODES, REJECTION_REASONS, check_email
from ml.copy.prompts import PROMPT_TEMPLATE, PROMPT_VARIABLES, format_messages
from ml.copy.render import footer_problems, parse_email, render_email

DATA = Path(__file__).resolve().parents[2] / "data" / "copy"
BLOCKS = load_approved_blocks(DATA / "approved_subject_lines.v1.json")
EMAIL = load_email_blocks(DATA / "approved_email_blocks.v1.json")
HOME_BODY = ["bd_home_cosy"]
OK_PREHEADER = "New home ideas for cosy rooms."


def codes(subject, preheader=OK_PREHEADER, body=HOME_BODY, html=None):
    return check_email(subject, preheader, body, EMAIL, html)


def test_the_reason_codes_are_one_list_without_repeats():
    assert REJECTION_REASONS == (*GENERATION_FAILURE_CODES, *GUARDRAIL_CODES, *EMAIL_GUARDRAIL_CODES)
    assert len(set(REJECTION_REASONS)) == len(REJECTION_REASONS)
    assert not set(NOT_APPROVED_REASONS.values()) & set(REJECTION_REASONS)


@pytest.mark.parametrize(("subject", "preheader", "expected"), [
    ("Cosy touches for every room", OK_PREHEADER, []),
    ("x" * 61, OK_PREHEADER, ["too_long"]),
    ("x" * 60, "y" * 101, ["preheader_too_long"]),
    ("Cosy rooms", "Reply to help@shop.example for more", ["contains_email"]),
    ("Cosy rooms", "Call 0117 496 0000 today", ["contains_phone_number"]),
    ("Clinically proven cosy rooms", OK_PREHEADER, ["banned_claim"]),
    ("Cosy rooms", "The lowest price on throws", ["banned_claim"]),
    ("Hurry: cosy rooms", OK_PREHEADER, ["off_brand_tone"]),
    ("Cosy rooms!!", OK_PREHEADER, ["too_many_exclamation_marks"]),
    ("Re: your cosy rooms", OK_PREHEADER, ["deceptive_subject"]),
    ("20% off cosy rooms", OK_PREHEADER, ["deceptive_subject"]),  # an offer no body block makes
    ("New tech for every room", OK_PREHEADER, ["deceptive_subject"]),  # a category the body is not about
])
def test_each_email_rule_gives_its_code(subject, preheader, expected):
    assert codes(subject, preheader) == expected


def test_a_subject_naming_the_body_s_own_category_is_not_deceptive():
    assert codes("New tech for your setup", body=["bd_electronics_everyday", "bd_general_intro"]) == []
    assert codes("New tech for your setup", body=["bd_general_intro"]) == ["deceptive_subject"]


def test_the_rendered_email_has_its_parts_and_escapes_text():
    html = render_email(variant_id="v_1", subject="Cosy <b>rooms</b>", preheader=OK_PREHEADER, body_block_ids=HOME_BODY,
                        email_blocks=EMAIL)
    found = parse_email(html)
    assert found.title == "Cosy <b>rooms</b>" and "<b>" not in html.split("<title>")[1].split("</title>")[0]
    assert found.body_block_ids == HOME_BODY and found.preheader == OK_PREHEADER
    assert footer_problems(html, EMAIL) == []
    with pytest.raises(ValueError, match="bd_nope"):
        render_email(variant_id="v", subject="s", preheader="p", body_block_ids=["bd_nope"], email_blocks=EMAIL)


@pytest.mark.parametrize(("cut", "expected"), [
    (lambda html: html.replace('id="ft_standard"', 'id="other"'), ["missing_footer"]),
    (lambda html: html.split('<p><a id="unsubscribe"')[0] + html.split("</a></p>")[1], ["missing_unsubscribe"]),
    (lambda html: html.replace(EMAIL.postal_address, ""), ["missing_postal_address"]),
    (lambda html: html.replace("<footer", "<div").replace("</footer>", "</div>"),
     ["missing_footer", "missing_unsubscribe", "missing_postal_address"]),
])
def test_an_email_missing_its_footer_unsubscribe_or_address_is_rejected(cut, expected):
    html = render_email(variant_id="v", subject="Cosy rooms", preheader=OK_PREHEADER, body_block_ids=HOME_BODY,
                        email_blocks=EMAIL)
    broken = cut(html)
    assert broken != html
    assert codes("Cosy rooms", html=broken) == expected


def test_a_bad_email_blocks_file_names_the_field():
    document = json.loads((DATA / "approved_email_blocks.v1.json").read_text())
    del document["body_blocks"]["toys"]
    with pytest.raises(ApprovedBlocksError, match="body_blocks.*toys"):
        parse_email_blocks(document)


def test_states_and_moves():
    assert set(TRANSITIONS) == set(APPROVAL_STATES) == set(STATE_ORDER)
    at = datetime(2026, 7, 1)
    assert decision_row("v", "proposed", "approved", reviewer="Ana", reason="ok", at=at)["to_state"] == "approved"
    for current, decision in (("proposed", "retired"), ("rejected", "approved"), ("retired", "approved")):
        with pytest.raises(ApprovalError, match=f"is {current}"):
            decision_row("v", current, decision, reviewer="Ana", reason="ok", at=at)
    with pytest.raises(ApprovalError, match="never proposed"):
        decision_row("v", None, "approved", reviewer="Ana", reason="ok", at=at)
    with pytest.raises(ApprovalError, match="reviewer"):
        decision_row("v", "proposed", "approved", reviewer=" ", reason="ok", at=at)


def test_the_state_is_the_furthest_move_whatever_the_row_order_or_clock():
    log = pd.DataFrame({"variant_id": ["a", "a", "a", "b"], "to_state": ["retired", "proposed", "approved", "proposed"],
                        "decided_at": pd.to_datetime(["2026-01-01"] * 4)})
    assert current_states(log).to_dict() == {"a": "retired", "b": "proposed"}


def _variant(provider="approved_blocks", recipe=None, body=("bd_home_cosy",), passed=True):
    recipe = recipe or {"pattern": "pt_opener_hook", "blocks": {"opener": "op_new_this_week", "hook": "hk_home_cosy"},
                        "preheader": "ph_home"}
    return SimpleNamespace(variant_id="v", provider=provider, guardrail_passed=passed,
                           composition_recipe=json.dumps(recipe), body_block_ids=json.dumps(list(body)))


def test_auto_approval_only_for_approved_blocks_compositions_of_approved_blocks():
    ids = approved_block_ids(BLOCKS, EMAIL)
    assert auto_approvable(_variant(), ids)
    assert not auto_approvable(_variant(provider="openai_compatible"), ids)
    assert not auto_approvable(_variant(body=("bd_home_cosy", "bd_unreviewed")), ids)
    assert not auto_approvable(_variant(recipe={"pattern": "pt_opener_hook", "blocks": {"hook": "hk_unreviewed"}}), ids)
    assert not auto_approvable(_variant(passed=False), ids)


def test_auto_approval_is_off_unless_the_config_says_so():
    variants = pd.DataFrame([{**vars(_variant()), "variant_id": "v_1"}])
    on = new_variant_records(variants, pd.Series(dtype="object"), auto=AutoApproval(True), at=datetime(2026, 7, 1),
                             approved_block_ids=approved_block_ids(BLOCKS, EMAIL))
    off = new_variant_records(variants, pd.Series(dtype="object"), auto=AutoApproval(False), at=datetime(2026, 7, 1),
                              approved_block_ids=approved_block_ids(BLOCKS, EMAIL))
    assert on["to_state"].tolist() == ["proposed", "approved"] and off["to_state"].tolist() == ["proposed"]
    again = new_variant_records(variants, current_states(on), auto=AutoApproval(True), at=datetime(2026, 7, 2),
                                approved_block_ids=approved_block_ids(BLOCKS, EMAIL))
    assert again.empty  # recorded once, not once a day


def test_the_prompt_template_takes_only_its_declared_variables():
    values = {name: f"<{name}>" for name in PROMPT_VARIABLES}
    text = " ".join(m["content"] for m in format_messages(PROMPT_TEMPLATE, values))
    assert all(f"<{name}>" in text for name in PROMPT_VARIABLES) and "{{" not in text
    with pytest.raises(ValueError, match="first_name"):
        format_messages([{"role": "user", "content": "Hi {{ first_name }}"}], {**values, "first_name": "x"})
