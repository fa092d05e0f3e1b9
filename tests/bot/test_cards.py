"""Approval cards, modals and replies, judged the way a reviewer (and Slack) would judge them.

Pure functions only: requests are built directly with `hitl.models.Request`, nothing
touches Redis or Slack. Every payload is also re-validated with slack_sdk's models and,
when it is importable, with the Web API stand-in's Block Kit checker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.slack.blocks import cards, views
from bot.slack.blocks.text import (
    ZWJ,
    escape,
    format_value,
    truncate,
    units,
)
from hitl.masking import MASK, mask_params, mask_text
from hitl.models import CardPlacement, Placed, Request
from hitl.status import Mode, Status

NOW = 1_800_000_000.0

EVIL = "<!channel> <@U123> <#C999> <!subteam^S1> <https://evil.example|click here> <!date^1^{date}|x> @here"
# Raw control sequences that must never reach Slack unescaped from agent text.
CONTROL = ("<!channel>", "<@U123>", "<#C999>", "<!subteam^S1>", "<https://evil", "<!date^1^", "<!here>")


def make(**overrides: Any) -> Request:
    """A gate request waiting for approval, with every field a card can show."""
    fields: dict[str, Any] = {
        "id": "req-1",
        "action": "send_email",
        "summary": "Send the overdue-invoice reminder to 200 customers",
        "params": {"template": "overdue", "recipients": 200},
        "context": "Task: chase unpaid invoices.\nThey are 30+ days late.",
        "agent": "billing-agent",
        "run_id": "run-42",
        "risk": "high",
        "reversible": True,
        "confidence": 0.92,
        "mode": "gate",
        "channel": "C0123ABCD",
        "approvers": ["U0ALICE", "S0FINANCE"],
        "requested_by": "U0CAROL",
        "created_at": NOW,
        "deadline": NOW + 3600,
        "status": "pending",
        "version": 3,
    }
    fields.update(overrides)
    return Request(**fields)


# --------------------------------------------------------------------------- helpers


def texts(node: Any) -> Iterator[str]:
    """Every text a person can read in a payload: text objects, fields, confirms, labels."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "confirm", "deny", "label", "hint", "placeholder") and isinstance(
                value, str
            ):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def all_blocks_of(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        if "type" in node and ("block_id" in node or node.get("type") in {"section", "context", "header"}):
            yield node
        for value in node.values():
            yield from all_blocks_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_blocks_of(item)


def buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def by_action(blocks: list[dict]) -> dict[str, dict]:
    return {cards.base_action(b["action_id"]): b for b in buttons(blocks)}


def status_text(blocks: list[dict]) -> str:
    last = blocks[-1]
    assert last["type"] == "context", "the status line must be the last block"
    return " ".join(e["text"] for e in last["elements"])


def assert_inert(*payloads: Any) -> None:
    """No control sequence from agent text survives, and no bare broadcast word either."""
    for payload in payloads:
        for text in [payload] if isinstance(payload, str) else texts(payload):
            for seq in CONTROL:
                assert seq not in text, f"{seq!r} reached Slack in {text[:200]!r}"
            assert not re.search(r"@(here|channel|everyone)\b", text, re.I), text[:200]


def assert_message_ok(blocks: list[dict]) -> None:
    """Within Slack's limits for a message, counted as Slack's servers count (UTF-16)."""
    assert 1 <= len(blocks) <= 50
    for raw in blocks:
        Block.parse(raw).to_dict()  # slack_sdk's validators
    _check_limits(blocks)
    checker = pytest.importorskip("hitl_sandbox.blockcheck")
    assert checker.check_message_blocks(blocks) == []


def assert_view_ok(view: dict, kind: str) -> None:
    assert 1 <= len(view["blocks"]) <= 100
    View(**view).to_dict()
    _check_limits(view["blocks"])
    assert len(json.dumps(view).encode()) < 250_000
    if "private_metadata" in view:
        assert len(view["private_metadata"]) <= 3000
    for block in view["blocks"]:
        element = block.get("element", {})
        if "initial_value" in element:
            assert units(element["initial_value"]) <= element.get("max_length", 3000) <= 3000
    checker = pytest.importorskip("hitl_sandbox.blockcheck")
    assert checker.check_view(view, expected_type=kind) == []


def _check_limits(blocks: list[dict]) -> None:
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique"
    action_ids = [e["action_id"] for e in buttons(blocks)]
    assert len(action_ids) == len(set(action_ids)), "action ids must be unique on a surface"
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert units(block["text"]["text"]) <= 150
        elif kind == "section":
            if "text" in block:
                assert 1 <= units(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            for field in block.get("fields", []):
                assert units(field["text"]) <= 2000
        elif kind == "context":
            assert len(block["elements"]) <= 10
            for element in block["elements"]:
                assert units(element["text"]) <= 3000
        elif kind == "actions":
            assert len(block["elements"]) <= 25
            for element in block["elements"]:
                assert units(element["text"]["text"]) <= 75
                assert len(element["value"]) <= 2000
                if "confirm" in element:
                    assert units(element["confirm"]["title"]["text"]) <= 100
                    assert units(element["confirm"]["text"]["text"]) <= 300
        for text_obj in _text_objects(block):
            if text_obj["type"] == "mrkdwn":
                assert text_obj.get("verbatim") is True, "mrkdwn must not be auto-parsed"


def _text_objects(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            yield node
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://evil|click>", "&lt;https://evil|click&gt;"),
        ("Q&A <b>", "Q&amp;A &lt;b&gt;"),
        ("ping @here and @Channel", f"ping @{ZWJ}here and @{ZWJ}Channel"),
        ("mail bob@everyone.com", f"mail bob@{ZWJ}everyone.com"),
        ("abc\u202edcba", "abcdcba"),  # bidi override removed
    ],
)
def test_escape_makes_control_sequences_inert(raw: str, expected: str) -> None:
    assert escape(raw) == expected


def test_truncate_never_exceeds_limit_nor_splits_emoji_or_entities() -> None:
    family = "👨‍👩‍👧"
    for limit in range(1, 30):
        out = truncate("ab" + family * 5, limit)
        assert units(out) <= limit
        assert not out.rstrip("…").endswith("\u200d"), "a cut must not leave half an emoji"
    assert truncate("short", 10) == "short"
    assert truncate("x" * 20, 10) == "x" * 9 + "…"
    # Escaped text is cut before an entity, never inside one.
    blocks = cards.build_card(make(summary="&" * 5000))[1]
    summary = blocks[1]["text"]["text"]
    assert re.search(r"&(?!amp;)", summary) is None


def test_format_value_is_compact_and_bounded() -> None:
    assert format_value({"a": [1, 2]}, 120) == '{"a": [1, 2]}'
    assert format_value(None, 10) == "null"
    assert format_value(True, 10) == "true"
    assert format_value("", 10) == '""'
    assert format_value("line1\nline2", 50) == "line1 ↵ line2"
    out = format_value("x" * 10_000, 120)
    assert len(out) == 120 and out.endswith("…")


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_passwd",
        "client_secret",
        "access_token",
        "api_key",
        "X-Api-Key",
        "apiKey",
        "Authorization",
        "auth",
        "credentials",
        "private_key",
        "Cookie",
        "session_id",
        "signature",
        "aws_access_key",
    ],
)
def test_secret_keys_are_masked_and_keys_kept(key: str) -> None:
    assert mask_params({key: "hunter2", "to": "bob@example.com"}) == {key: MASK, "to": "bob@example.com"}


@pytest.mark.parametrize(
    "secret",
    [
        "xoxb-1234567890-abcdefghij",
        "sk-ant-api03-abcdefghijklmnopqrstu",
        "sk-proj-abcdefghijklmnopqrstu",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
    ],
)
def test_secret_shaped_values_are_masked_whatever_the_key(secret: str) -> None:
    masked = mask_params({"note": f"use {secret} please", "nested": {"list": [secret]}})
    assert secret not in json.dumps(masked)
    assert masked["note"] == f"use {MASK} please"
    assert masked["nested"]["list"] == [MASK]


@pytest.mark.parametrize(
    "key",
    ["db_pass", "passphrase", "ssh_key", "signing_key", "pin", "otp", "dbPass", "SSH-Key", "mfa.otp",
     "newPassword", "secretsManagerArn", "apikey", "session", "pin_code", "OTPCode"],
)
def test_secret_key_names_are_matched_by_token(key: str) -> None:
    assert mask_params({key: "123456"}) == {key: MASK}


@pytest.mark.parametrize(
    "key", ["author", "keyboard_layout", "spinach", "recipients", "monkey", "passenger", "sort_key", "public_key"]
)
def test_ordinary_names_containing_secret_words_are_not_masked(key: str) -> None:
    assert mask_params({key: "visible"}) == {key: "visible"}


def test_value_shapes_pem_blocks_and_random_strings_are_masked() -> None:
    pem = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0xyz\n-----END PGP PRIVATE KEY BLOCK-----"
    random_key = "q8Zr3TtX0pLw9Vb2Nc7Ms4Kd1Hf6Gy5J"  # 32 chars of generated base64
    masked = mask_params({"note": f"key {random_key} and {pem}"})
    assert random_key not in masked["note"] and "lQOYBF0xyz" not in masked["note"]
    assert masked["note"] == f"key {MASK} and {MASK}"


@pytest.mark.parametrize(
    "text",
    [
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",  # a SHA-256: kept for review
        "deploy 9fceb02d0ae598e95dc970b74767f19372d61af8",  # a commit id
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID
        "ThisIsAVeryLongCamelCaseIdentifierName2024",
        "build-2024-11-30-release-candidate-number-3",
        "very_long_snake_case_identifier_for_settings",
    ],
)
def test_identifiers_digests_and_uuids_are_not_taken_for_secrets(text: str) -> None:
    assert mask_text(text) == text


def test_masking_keeps_context_and_harmless_values() -> None:
    masked = mask_params(
        {
            "headers": {"Authorization": "Bearer abc.def.123456", "Accept": "json"},
            "cmd": "curl -H 'Authorization: Bearer zzz123456789' https://api",
            "dsn": "postgres://app:s3cretpw@db:5432/x",
            "url": "https://x.io/cb?token=abcdef123&page=2",
            "author": "Jane Doe",
            "use_auth": True,
            "max_tokens": 512,
            "items": [{"api_key": "k1"}, {"name": "ok"}],
        }
    )
    assert masked["headers"] == {"Authorization": MASK, "Accept": "json"}
    assert masked["cmd"] == f"curl -H 'Authorization: Bearer {MASK}' https://api"
    assert masked["dsn"] == f"postgres://app:{MASK}@db:5432/x"
    assert masked["url"] == f"https://x.io/cb?token={MASK}&page=2"
    assert masked["author"] == "Jane Doe"  # "author" is not "auth"
    assert masked["use_auth"] is True  # a boolean reveals nothing
    assert masked["max_tokens"] == MASK
    assert masked["items"] == [{"api_key": MASK}, {"name": "ok"}]
    assert mask_text("Basic authentication is off") == "Basic authentication is off"


def test_card_and_details_never_show_secrets() -> None:
    secret = "xoxb-999999999-topsecretvalue"
    req = make(
        params={"api_key": "plain-secret-1", "headers": {"Cookie": "sid=plain-secret-2"}, "note": secret},
        summary=f"Rotate {secret}",
        context=f"found {secret} in logs",
    )
    text, blocks = cards.build_card(req)
    details = views.details_modal(req)
    edit = views.edit_modal(req, channel="C1", ts="1.0")
    dumped = json.dumps([text, blocks, details, edit])
    for leaked in ("plain-secret-1", "plain-secret-2", secret):
        assert leaked not in dumped
    assert MASK in blocks[3]["text"]["text"] or MASK in json.dumps(blocks)


# --------------------------------------------------------------------------- injection


def test_agent_text_is_inert_everywhere_including_fallback() -> None:
    req = make(
        summary=f"Hi {EVIL}",
        context=f"{EVIL}\nmore {EVIL}",
        params={EVIL: EVIL, "nested": {"k": [EVIL]}},
        agent=EVIL,
        run_id=EVIL,
        requested_by=EVIL,
        approvers=["U0ALICE", EVIL],
        urgent=True,
        via=EVIL,
    )
    text, blocks = cards.build_card(req)
    assert_inert(text, blocks)
    assert_inert(*cards.build_plan(req, [make()]))
    assert "<@U0ALICE>" in text  # the urgent fallback still pings the real approver
    for status, extra in [
        ("rejected", {"by": ["U0BOB"], "comment": EVIL}),
        ("approved", {"by": ["U0BOB"], "comment": EVIL, "decided_params": {"x": EVIL}}),
    ]:
        final = make(**{**req.model_dump(), "status": status, "decided_at": NOW, **extra})
        assert_inert(*cards.build_card(final))
    assert_inert(
        views.details_modal(req),
        views.reject_modal(req, channel="C1", ts="1.0"),
        views.veto_modal(make(mode="override", status="open", summary=EVIL), channel="C1", ts="1.0"),
        views.home_view("U0ALICE", [Placed(req, CardPlacement())]),
        views.list_blocks([req], EVIL),
        views.show_blocks(req, [{"type": "decided", "by": EVIL, "comment": EVIL}]),
        cards.build_digest([req, req]),
    )


def test_on_behalf_of_mentions_only_real_user_ids() -> None:
    fields = cards.build_card(make(requested_by="U0CAROL"))[1][2]["fields"]
    assert any(f["text"] == "*On behalf of*\n<@U0CAROL>" for f in fields)
    fields = cards.build_card(make(requested_by="carol <@U1>"))[1][2]["fields"]
    assert any(f["text"] == "*On behalf of*\ncarol &lt;@U1&gt;" for f in fields)


def test_the_card_says_which_agent_key_filed_it_and_the_status_stays_last() -> None:
    _, blocks = cards.build_card(make(via="billing-agent"))
    contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert "filed by agent key `billing-agent`" in contexts
    assert blocks[-2]["type"] == "actions" and blocks[-1]["type"] == "context"
    _, plan = cards.build_plan(make(via="billing-agent", action="plan"), [make()])
    assert "filed by agent key `billing-agent`" in [e["text"] for b in plan if b["type"] == "context"
                                                      for e in b["elements"]]
    _, untagged = cards.build_card(make())  # the trusted Python client's requests carry no key
    assert not any("filed by agent key" in t for t in texts(untagged))


def test_fake_status_line_in_summary_stays_quoted_and_out_of_the_status_block() -> None:
    fake = "✅ Approved by <@U0BOSS> · all good\n❌ Rejected by nobody"
    req = make(summary=fake, context=fake)
    blocks = cards.build_card(req)[1]
    status = status_text(blocks)
    assert status.startswith("⏳ Waiting for approval")
    assert "Approved" not in status and "Rejected" not in status
    summary = next(b for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("*Summary*"))
    lines = summary["text"]["text"].split("\n")[1:]
    assert lines == [">✅ Approved by &lt;@U0BOSS&gt; · all good", ">❌ Rejected by nobody"]
    # Only the app's own context line is a context block.
    assert [b["type"] for b in blocks].count("context") == 1


def test_reviewer_reason_is_quoted_on_one_line() -> None:
    req = make(status="rejected", by=["U0BOB"], comment="nope\n✅ Approved by <@U1>”", decided_at=NOW)
    status = status_text(cards.build_card(req)[1])
    assert "\n" not in status
    assert status.endswith('“nope ✅ Approved by &lt;@U1&gt;"”')


# --------------------------------------------------------------------------- buttons


def test_gate_card_has_approve_reject_edit_details_with_id_values_and_versioned_block() -> None:
    req = make()
    blocks = cards.build_card(req)[1]
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    assert actions[0]["block_id"] == "hitl_actions:3"
    assert cards.parse_actions_block_id(actions[0]["block_id"]) == 3
    found = by_action(blocks)
    assert list(found) == [cards.ACTION_APPROVE, cards.ACTION_REJECT, cards.ACTION_EDIT, cards.ACTION_DETAILS]
    assert found[cards.ACTION_APPROVE]["style"] == "primary"
    assert found[cards.ACTION_REJECT]["style"] == "danger"
    assert "confirm" not in found[cards.ACTION_APPROVE]  # reversible: one click
    assert all(b["value"] == "req-1" for b in buttons(blocks))
    assert_message_ok(blocks)


@pytest.mark.parametrize(
    ("block_id", "version"),
    [
        ("hitl_actions:7", 7),
        ("hitl_actions:12:3:req-9", 12),
        ("hitl_actions:x", None),
        ("other:3", None),
        ("hitl_actions", None),
        (None, None),
    ],
)
def test_parse_actions_block_id(block_id: Any, version: int | None) -> None:
    assert cards.parse_actions_block_id(block_id) == version


def test_irreversible_approve_asks_for_confirmation_with_the_summary() -> None:
    blocks = cards.build_card(make(reversible=False, summary="Delete 4,000 <b>rows</b>"))[1]
    confirm = by_action(blocks)[cards.ACTION_APPROVE]["confirm"]
    assert "send_email" in confirm["title"]["text"]
    assert "cannot be undone" in confirm["text"]["text"]
    assert "Delete 4,000 &lt;b&gt;rows&lt;/b&gt;" in confirm["text"]["text"]
    fields = " ".join(f["text"] for f in blocks[2]["fields"])
    assert "*Reversible*\n⚠️ *No*" in fields
    assert_message_ok(blocks)


def test_override_card_offers_veto_with_confirm_and_looks_good() -> None:
    req = make(mode="override", status="open", deadline=NOW + 600)
    blocks = cards.build_card(req, now=NOW)[1]
    found = by_action(blocks)
    assert list(found) == [cards.ACTION_VETO, cards.ACTION_CONFIRM, cards.ACTION_DETAILS]
    assert found[cards.ACTION_VETO]["style"] == "danger"
    assert "confirm" in found[cards.ACTION_VETO]
    assert status_text(blocks).startswith("⏱️ Executed · veto window closes <!date^1800000600^")


def test_shadow_card_asks_what_you_would_do() -> None:
    blocks = cards.build_card(make(mode="shadow"))[1]
    found = by_action(blocks)
    assert list(found) == [cards.ACTION_WOULD_APPROVE, cards.ACTION_WOULD_REJECT, cards.ACTION_DETAILS]
    assert found[cards.ACTION_WOULD_APPROVE]["style"] == "primary"
    assert "would you approve" in blocks[0]["text"]["text"].lower()


@pytest.mark.parametrize("mode", ["notify", "auto"])
def test_notify_and_auto_cards_have_no_decision_buttons(mode: str) -> None:
    req = make(mode=mode, status="approved", decided_at=NOW)
    blocks = cards.build_card(req)[1]
    assert list(by_action(blocks)) == [cards.ACTION_DETAILS]
    assert "automatically" in status_text(blocks)


FINAL_CASES = [
    ("approved", {"by": ["U0ALICE", "U0BOB"]}, ["✅ Approved by <@U0ALICE>, <@U0BOB>"]),
    ("rejected", {"by": ["U0BOB"], "comment": "wrong list"}, ["❌ Rejected by <@U0BOB>", "“wrong list”"]),
    ("expired", {}, ["⌛ Expired with no decision"]),
    ("cancelled", {}, ["🚫 Cancelled by the agent"]),
]
FINAL_OVERRIDE_CASES = [
    ("vetoed", {"by": ["U0BOB"], "comment": "undo it"}, ["🛑 Vetoed by <@U0BOB>", "“undo it”"]),
    ("finalized", {}, ["✅ Window closed without a veto"]),
    ("finalized", {"by": ["U0ALICE"]}, ["✅ Confirmed by <@U0ALICE>"]),
]


@pytest.mark.parametrize(
    ("mode", "status", "extra", "expected"),
    [("gate", *case) for case in FINAL_CASES]
    + [("override", *case) for case in FINAL_OVERRIDE_CASES]
    + [("shadow", "judged", {"by": ["U0DAN"], "verdict": "reject"}, ["🕶️ Shadow: <@U0DAN> would reject"])],
)
def test_final_cards_drop_decision_buttons_and_say_who_when_why(
    mode: str, status: str, extra: dict, expected: list[str]
) -> None:
    req = make(mode=mode, status=status, decided_at=NOW + 60, **extra)
    assert req.final
    text, blocks = cards.build_card(req)
    assert list(by_action(blocks)) == [cards.ACTION_DETAILS]
    line = status_text(blocks)
    for piece in expected:
        assert piece in line
    assert "<!date^" in line  # when
    assert blocks[0]["text"]["text"] != cards.build_card(make(mode=mode))[1][0]["text"]["text"]
    assert text.startswith(blocks[0]["text"]["text"])
    assert_message_ok(blocks)


def test_approved_with_edits_says_so_and_marks_edited_values() -> None:
    req = make(
        status="approved",
        by=["U0ALICE"],
        decided_at=NOW,
        params={"template": "overdue", "recipients": 200, "cc": "boss@x.io", "password": "old"},
        decided_params={"template": "friendly", "recipients": 200, "password": "new", "bcc": "me@x.io"},
    )
    blocks = cards.build_card(req)[1]
    assert "with edited parameters" in status_text(blocks)
    params = next(b["text"]["text"] for b in blocks if b.get("text", {}).get("text", "").startswith("*Param"))
    assert "edited by a reviewer" in params
    assert "• `template`: `friendly` ✏️ _edited_ (was `overdue`)" in params
    assert "• `password`: `••••••` ✏️ _edited_" in params and "old" not in params and "new" not in params
    assert "• `bcc`: `me@x.io` ✏️ _added_" in params
    assert "• ~`cc`~ ✏️ _removed_" in params


def test_quorum_progress_shows_who_approved_so_far() -> None:
    req = make(quorum=2, votes=["U0ALICE"])
    blocks = cards.build_card(req, now=NOW)[1]
    assert "1 of 2 approvals: <@U0ALICE>" in status_text(blocks)
    fields = " ".join(f["text"] for f in blocks[2]["fields"])
    assert "*Approvals needed*\n2" in fields
    assert cards.ACTION_APPROVE in by_action(blocks)


def test_urgent_card_says_urgent_and_pings_approvers_at_once() -> None:
    req = make(urgent=True, confidence=0.41)
    text, blocks = cards.build_card(req)
    assert "URGENT" in blocks[0]["text"]["text"] and "<@U0ALICE>" in text
    assert blocks[1]["text"]["text"].startswith("🚨 *Urgent*: <@U0ALICE> <!subteam^S0FINANCE>")
    fields = " ".join(f["text"] for f in blocks[3]["fields"])
    assert "⚠️ *41%* (very low)" in fields
    # Once decided, nobody is pinged any more.
    done = make(urgent=True, status="approved", by=["U0ALICE"], decided_at=NOW)
    assert "Urgent" not in json.dumps(cards.build_card(done)[1])


def test_escalation_and_deadline_render_as_local_dates() -> None:
    req = make(escalated=2)
    line = status_text(cards.build_card(req, now=NOW)[1])
    assert line.startswith("⏳ Waiting for approval")
    assert "📣 Escalated (step 2)" in line
    assert "expires <!date^1800003600^{date_short_pretty} at {time}|2027-01-15 09:00 UTC>" in line
    fields = cards.build_card(req)[1][2]["fields"]
    assert "*Deadline*\n<!date^1800003600^{date_short_pretty} at {time}|2027-01-15 09:00 UTC>" in [
        f["text"] for f in fields
    ]


def test_card_reads_in_ten_seconds() -> None:
    """The essentials in order: what, the agent's words, the facts, then the buttons, then status."""
    blocks = cards.build_card(make())[1]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🔒 Approval needed: send_email", "emoji": True},
    }
    assert blocks[1]["text"]["text"] == "*Summary*\n>Send the overdue-invoice reminder to 200 customers"
    labels = [f["text"].split("\n")[0] for f in blocks[2]["fields"]]
    assert labels == [
        "*Agent*",
        "*Run*",
        "*On behalf of*",
        "*Risk*",
        "*Reversible*",
        "*Confidence*",
        "*Mode*",
        "*Deadline*",
        "*Approvers*",
    ]
    assert blocks[3]["text"]["text"] == "*Parameters*\n• `template`: `overdue`\n• `recipients`: `200`"
    assert blocks[4]["text"]["text"].startswith("*Agent's reasoning*\n>Task: chase unpaid invoices.")
    assert [b["type"] for b in blocks[-2:]] == ["actions", "context"]


# --------------------------------------------------------------------------- limits


def enormous(**overrides: Any) -> Request:
    value = ("‏مرحبا <!here> 👨‍👩‍👧 & " * 500)[:10_000]
    return make(
        summary=("🙂 Summary line with <@U1> & émoji\n" * 3000)[:100_000],
        context="ctx " * 30_000,
        params={f"key_{i}_{'k' * 60}": value for i in range(500)},
        agent="a" * 5000,
        run_id="r" * 5000,
        approvers=[f"U{i:09d}" for i in range(400)],
        requested_by="x" * 5000,
        quorum=10,
        votes=[f"U{i:09d}" for i in range(9)],
        urgent=True,
        reversible=False,
        comment="c" * 50_000,
        escalated=3,
        **overrides,
    )


def test_enormous_input_stays_within_block_kit_limits_everywhere() -> None:
    req = enormous()
    text, blocks = cards.build_card(req, now=NOW)
    assert units(text) <= 3000
    assert_message_ok(blocks)
    assert len(blocks) <= 10
    params = next(b["text"]["text"] for b in blocks if b.get("text", {}).get("text", "").startswith("*Param"))
    assert "more, see Details" in params
    assert "Full summary in Details" in json.dumps(blocks)
    assert_inert(text, blocks)

    details = views.details_modal(req)
    assert_view_ok(details, "modal")
    assert "Truncated" in json.dumps(details, ensure_ascii=False)
    assert_view_ok(views.edit_modal(req, channel="C1", ts="1.0"), "modal")
    assert_view_ok(views.reject_modal(req, channel="C1", ts="1.0"), "modal")
    assert_view_ok(views.veto_modal(req, channel="C1", ts="1.0"), "modal")
    assert_view_ok(views.home_view("U0ALICE", [Placed(req, CardPlacement())] * 60), "home")
    assert_message_ok(cards.build_digest([req] * 80)[1])
    assert_message_ok(views.show_blocks(req, [{"type": "voted", "by": "U1", "comment": "c" * 9000}] * 500))
    assert_message_ok(views.list_blocks([req] * 300, "t" * 5000))

    edited = enormous(decided_params={"only": "x" * 300_000}, status="approved", by=["U0ALICE"])
    assert_message_ok(cards.build_card(edited)[1])
    assert_view_ok(views.details_modal(edited), "modal")


@pytest.mark.parametrize("mode", [m.value for m in Mode])
@pytest.mark.parametrize("status", [s.value for s in Status])
def test_every_mode_and_status_renders_valid_cards(mode: str, status: str) -> None:
    req = make(mode=mode, status=status, decided_at=NOW, by=["U0ALICE"] if status != "expired" else [])
    text, blocks = cards.build_card(req, now=NOW)
    assert text
    assert_message_ok(blocks)
    if req.final:
        assert set(by_action(blocks)) == {cards.ACTION_DETAILS}


# --------------------------------------------------------------------------- digest and home


def test_digest_lists_requests_one_line_each_with_their_own_menu_within_50_blocks() -> None:
    reqs = [make(id=f"req-{i}", reversible=(i % 2 == 0)) for i in range(60)]
    text, blocks = cards.build_digest(reqs)
    assert_message_ok(blocks)
    assert len(blocks) <= 50
    assert "60 requests waiting" in text
    assert status_text(blocks).startswith("+12 more") and "/hitl list" in status_text(blocks)
    lines = [b for b in blocks if b["type"] == "section"]
    assert len(lines) == cards.DIGEST_CAPACITY == 48
    first = lines[0]
    assert cards.parse_actions_block_id(first["block_id"]) == 3
    menu = first["accessory"]
    assert menu["type"] == "overflow" and cards.action_matcher(cards.ACTION_ITEM).match(menu["action_id"])
    assert [cards.parse_item_value(o["value"]) for o in menu["options"]] == [
        ("approve", "req-0"), ("reject", "req-0"), ("details", "req-0"),
    ]
    # An irreversible request keeps its confirmation in the digest too.
    assert "confirm" in lines[1]["accessory"] and "confirm" not in first["accessory"]
    # Menus are numbered so that no two elements of the message share an action_id.
    assert len({b["accessory"]["action_id"] for b in lines}) == len(lines)


def test_small_digest_shows_everything_and_decided_lines_keep_only_details() -> None:
    text, blocks = cards.build_digest(
        [make(id="a"), make(id="b", mode="override", status="open"), make(id="c", status="approved", by=["U0BOB"])]
    )
    assert text.startswith("⏳ 2 requests waiting")
    assert "more, see" not in json.dumps(blocks)
    menus = [b["accessory"] for b in blocks if b.get("accessory", {}).get("type") == "overflow"]
    assert [cards.parse_item_value(o["value"])[0] for o in menus[1]["options"]] == ["veto", "confirm", "details"]
    decided = blocks[-1]
    assert decided["accessory"]["type"] == "button" and cards.base_action(decided["accessory"]["action_id"]) == cards.ACTION_DETAILS
    assert "Approved by <@U0BOB>" in decided["text"]["text"]
    assert_message_ok(blocks)


def test_home_view_lists_waiting_requests_and_has_an_empty_state() -> None:
    empty = views.home_view("U0ALICE", [])
    assert_view_ok(empty, "home")
    assert "Nothing is waiting for you" in json.dumps(empty, ensure_ascii=False)
    listed = [make(id="a"), make(id="b", summary="Second thing")]
    home = views.home_view("U0ALICE", [Placed(r, CardPlacement()) for r in listed])
    assert_view_ok(home, "home")
    dumped = json.dumps(home, ensure_ascii=False)
    assert "Waiting for you" in dumped and "Second thing" in dumped and "<!date^" in dumped
    assert {e["value"] for e in buttons(home["blocks"])} == {"a", "b"}


# --------------------------------------------------------------------------- modals


@pytest.mark.parametrize(
    ("builder", "callback"),
    [
        (views.reject_modal, views.VIEW_REJECT),
        (views.veto_modal, views.VIEW_VETO),
        (views.edit_modal, views.VIEW_EDIT),
    ],
)
def test_modal_private_metadata_round_trips(builder: Any, callback: str) -> None:
    req = make(mode="override", status="open") if callback == views.VIEW_VETO else make()
    view = builder(req, channel="C0123ABCD", ts="1700000000.000100")
    assert view["callback_id"] == callback
    assert json.loads(view["private_metadata"]) == {
        "id": "req-1",
        "v": 3,
        "c": "C0123ABCD",
        "ts": "1700000000.000100",
    }
    assert views.parse_private_metadata(view["private_metadata"]) == {
        "id": "req-1",
        "v": 3,
        "c": "C0123ABCD",
        "ts": "1700000000.000100",
    }
    assert " " not in view["private_metadata"]
    assert_view_ok(view, "modal")


def test_reject_and_veto_modals_ask_for_a_reason() -> None:
    for view in (
        views.reject_modal(make(), channel="C1", ts="1.0"),
        views.veto_modal(make(mode="override", status="open"), channel="C1", ts="1.0"),
    ):
        reason = next(b for b in view["blocks"] if b["type"] == "input")
        assert reason["block_id"] == "reason" and reason["element"]["action_id"] == "reason"
        assert reason["element"]["multiline"] is True
        assert not reason.get("optional")


@pytest.mark.parametrize("bad", ["", "{not json", "[]", "null", '"text"', '{"a": 1, "a": 2}', '{"a": NaN}'])
def test_parse_private_metadata_and_edited_params_refuse_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        views.parse_private_metadata(bad)
    with pytest.raises(ValueError) as info:
        views.parse_edited_params(bad, {"a": 1})
    message = str(info.value)
    assert message and "Traceback" not in message and len(message) < 300


def test_edited_params_errors_read_like_advice() -> None:
    with pytest.raises(ValueError, match=r"not valid JSON.*line 1"):
        views.parse_edited_params('{"a": 1,}', {})
    with pytest.raises(ValueError, match="must be a JSON object"):
        views.parse_edited_params("[1, 2]", {})
    with pytest.raises(ValueError, match='"a" appears twice'):
        views.parse_edited_params('{"a": 1, "a": 2}', {})


def test_edit_modal_never_prefills_secrets_and_restores_them_on_submit() -> None:
    original = {
        "to": "bob@example.com",
        "api_key": "sk-live-real",
        "smtp": {"password": "pw1", "host": "mail"},
        "dsn": "postgres://app:hunter22@db/x",
        "tokens": ["ghp_abcdefghijklmnopqrstuvwxyz012345"],
    }
    req = make(params=original)
    view = views.edit_modal(req, channel="C1", ts="1.0")
    box = next(b for b in view["blocks"] if b.get("block_id") == "params")
    assert box["element"]["action_id"] == "params"
    prefilled = box["element"]["initial_value"]
    for secret in ("sk-live-real", "pw1", "hunter22", "ghp_abc"):
        assert secret not in prefilled
    assert json.loads(prefilled)["to"] == "bob@example.com"
    comment = next(b for b in view["blocks"] if b.get("block_id") == "comment")
    assert comment["element"]["action_id"] == "comment" and comment["optional"] is True

    # Unchanged masks keep the stored secrets; a reviewer's edit elsewhere is applied.
    edited = json.loads(prefilled)
    edited["to"] = "alice@example.com"
    assert views.parse_edited_params(json.dumps(edited), original) == {**original, "to": "alice@example.com"}
    # Typing over a mask replaces the secret.
    edited["smtp"]["password"] = "new-pw"
    assert views.parse_edited_params(json.dumps(edited), original)["smtp"] == {
        "password": "new-pw",
        "host": "mail",
    }
    # A mask with nothing stored behind it, or a partly masked string changed around the mask: refused.
    with pytest.raises(ValueError, match="nothing is stored"):
        views.parse_edited_params(json.dumps({**edited, "new": MASK}), original)
    with pytest.raises(ValueError, match="hidden parts"):
        views.parse_edited_params(json.dumps({**edited, "dsn": f"postgres://root:{MASK}@db/x"}), original)
    with pytest.raises(ValueError, match="length changed"):
        views.parse_edited_params(json.dumps({**edited, "tokens": [MASK, MASK]}), original)
    # Removing a key removes it.
    del edited["api_key"]
    assert "api_key" not in views.parse_edited_params(json.dumps(edited), original)


def test_edit_modal_with_huge_values_keeps_them_out_of_the_box_and_unchanged() -> None:
    original = {"subject": "Hi", "body": "x" * 50_000, "list": list(range(3000))}
    view = views.edit_modal(make(params=original), channel="C1", ts="1.0")
    assert_view_ok(view, "modal")
    box = next(b for b in view["blocks"] if b.get("block_id") == "params")
    assert json.loads(box["element"]["initial_value"]) == {"subject": "Hi"}
    assert "body" in box["hint"]["text"] and "list" in box["hint"]["text"]
    result = views.parse_edited_params('{"subject": "Hello"}', original)
    assert result == {"subject": "Hello", "body": original["body"], "list": original["list"]}


def test_edit_modal_edits_the_effective_params() -> None:
    req = make(params={"a": 1}, decided_params={"a": 2})
    box = next(
        b for b in views.edit_modal(req, channel=None, ts=None)["blocks"] if b.get("block_id") == "params"
    )
    assert json.loads(box["element"]["initial_value"]) == {"a": 2}


def test_details_modal_shows_everything_split_across_blocks() -> None:
    context = "\n".join(f"step {i}: <checked> & fine" for i in range(400))
    params = {"body": "word " * 3000, "token": "abc", "nested": {"k": "v"}}
    req = make(context=context, params=params, comment="looks off")
    view = views.details_modal(req)
    assert view["callback_id"] == views.VIEW_DETAILS
    assert_view_ok(view, "modal")
    dumped = json.dumps(view, ensure_ascii=False)
    assert "step 399: &lt;checked&gt; &amp; fine" in dumped  # all of the reasoning, escaped
    code = "".join(b["text"]["text"] for b in view["blocks"] if "```" in b.get("text", {}).get("text", ""))
    assert code.count("word") == 3000  # the whole value, split across code blocks
    assert '"token": "••••••"' in code and "abc" not in code
    assert "Truncated" not in dumped
    assert "looks off" in dumped


# --------------------------------------------------------------------------- /hitl replies


def test_status_list_show_and_help_replies() -> None:
    oldest = make()
    status = views.status_blocks({"C0123ABCD": 5, "#agents": 2}, {"gate": 6, "override": 1}, oldest, NOW + 60)
    assert_message_ok(status)
    dumped = json.dumps(status, ensure_ascii=False)
    assert "<#C0123ABCD>: 5" in dumped and "#agents: 2" in dumped and "gate: 6" in dumped
    assert "<!date^1800000060^" in dumped

    empty = views.status_blocks({}, {}, None, None)
    assert "Nothing is waiting" in json.dumps(empty, ensure_ascii=False)

    listed = views.list_blocks([make(id=f"r{i}") for i in range(3)], "Waiting in #agents")
    assert_message_ok(listed)
    assert all(f"`r{i}`" in json.dumps(listed) for i in range(3))
    assert "Nothing here" in json.dumps(views.list_blocks([], "Mine"))

    shown = views.show_blocks(
        make(status="rejected", by=["U0BOB"], comment="no", decided_at=NOW),
        [
            {"type": "created", "at": NOW},
            {"type": "decided", "at": str(NOW + 5), "by": "U0BOB", "status": "rejected", "comment": "no"},
        ],
    )
    assert_message_ok(shown)
    history = json.dumps(shown, ensure_ascii=False)
    assert "*History*" in history and "*decided* · by <@U0BOB> · → rejected: “no”" in history

    help_text = json.dumps(views.help_blocks())
    for command in (
        "/hitl status",
        "/hitl list [#channel|mine]",
        "/hitl show <id>",
        "/hitl stats [action]",
        "/hitl grants",
        "/hitl pause [action]",
        "/hitl resume [action]",
        "/hitl policy",
        "/hitl help",
    ):
        assert command in help_text


def test_refusal_notes_escape_what_they_quote() -> None:
    from bot.slack.replies import refusal
    from hitl.errors import AlreadyDecided, TransitionRefused

    note = refusal(TransitionRefused("r1", "odd", "approver <!channel> <https://evil.example|x> said no"))
    assert "<!channel>" not in note and "<https://" not in note and "&lt;!channel&gt;" in note
    note = refusal(AlreadyDecided("r1", "approved", ["U0BOB", "<!here>"]))
    assert "<@U0BOB>" in note and "<!here>" not in note


def test_reminder_mentions_only_well_formed_ids() -> None:
    from bot.slack.blocks.cards import reminder_text

    req = make(approvers=["U0BOB"], deadline=1_800_000_000.0)
    text = reminder_text(req, 1, ["U0BOB> <!channel> <https://evil.example|login", "S0LEADS", "W0ENT", "<!here>"])
    assert "<!subteam^S0LEADS>" in text and "<@W0ENT>" in text
    for bad in ("<!channel>", "<!here>", "<https://"):
        assert bad not in text


def test_home_and_details_name_the_channel_the_card_is_in() -> None:
    """A request routed to the default channel has no `channel`; its card's channel, read
    from its placement, is what App Home and the Details modal name."""
    req = make(id="a", channel=None)
    card = CardPlacement(channel="C0CARDS", ts="1700000000.000100")
    home = json.dumps(views.home_view("U0ALICE", [Placed(req, card)]))
    assert "C0CARDS" in home
    details = views.details_modal(req, card)
    assert "C0CARDS" in json.dumps(details["blocks"])
    assert views.parse_private_metadata(details["private_metadata"])["ts"] == card.ts
    assert "C0CARDS" not in json.dumps(views.home_view("U0ALICE", [Placed(req, CardPlacement())]))
