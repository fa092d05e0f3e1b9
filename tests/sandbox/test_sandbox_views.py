"""Modals and App Home: trigger_id rules, view validation, hashes, stacks."""

from __future__ import annotations

from typing import Any

import pytest
from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def reject_modal(title: str = "Reject request", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "reject_reason",
        "private_metadata": "req-1",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
            }
        ],
        **extra,
    }


def _error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> dict[str, Any]:
    return dict(excinfo.value.response.data)


def test_trigger_id_is_single_use(stand_in: SlackStandIn, client: WebClient) -> None:
    trigger_id = stand_in.issue_trigger_id("U0ALICE")
    opened = client.views_open(trigger_id=trigger_id, view=reject_modal())
    view = opened["view"]
    assert view["id"].startswith("V")
    assert view["callback_id"] == "reject_reason"
    assert view["private_metadata"] == "req-1"
    assert view["blocks"][0]["element"]["action_id"] == "text"
    assert stand_in.workspace.top_view("U0ALICE") is not None

    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger_id, view=reject_modal())
    assert _error(excinfo)["error"] == "exchanged_trigger_id"


def test_trigger_id_expires_after_three_seconds(stand_in: SlackStandIn, client: WebClient) -> None:
    stale = stand_in.issue_trigger_id("U0ALICE", age=3.5)
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=stale, view=reject_modal())
    assert _error(excinfo)["error"] == "expired_trigger_id"

    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id="12345.98765.abcd2358fdea", view=reject_modal())
    assert _error(excinfo)["error"] == "invalid_trigger_id"


def test_invalid_views_are_invalid_arguments(stand_in: SlackStandIn, client: WebClient) -> None:
    cases = [
        (
            reject_modal(title="A title longer than 24 chars"),
            "must be less than 25 characters [json-pointer:/view/title/text]",
        ),
        (
            reject_modal(private_metadata="x" * 3001),
            "must be less than 3001 characters [json-pointer:/view/private_metadata]",
        ),
        (
            {**reject_modal(), "blocks": [{"type": "input", "label": {"type": "plain_text", "text": "L"}}]},
            "missing required field: element [json-pointer:/view/blocks/0]",
        ),
        (
            {**reject_modal(), "blocks": [{"type": "divider"}] * 101},
            "no more than 100 items allowed [json-pointer:/view/blocks]",
        ),
    ]
    for view, message in cases:
        trigger_id = stand_in.issue_trigger_id("U0ALICE")
        with pytest.raises(SlackApiError) as excinfo:
            client.views_open(trigger_id=trigger_id, view=view)
        body = _error(excinfo)
        assert body["error"] == "invalid_arguments"
        messages = body["response_metadata"]["messages"]
        assert messages[0] == "[ERROR] failed to match all allowed schemas [json-pointer:/view]"
        assert f"[ERROR] {message}" in messages


def test_update_with_hash_and_push_limit(stand_in: SlackStandIn, client: WebClient) -> None:
    view = client.views_open(trigger_id=stand_in.issue_trigger_id("U0BOB"), view=reject_modal())["view"]
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=reject_modal(title="Edited"))[
        "view"
    ]
    assert updated["title"]["text"] == "Edited"
    assert updated["hash"] != view["hash"]
    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id=view["id"], hash=view["hash"], view=reject_modal())
    assert _error(excinfo)["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id="V0NOPE", view=reject_modal())
    assert _error(excinfo)["error"] == "not_found"

    for _ in range(2):
        client.views_push(trigger_id=stand_in.issue_trigger_id("U0BOB"), view=reject_modal())
    assert len(stand_in.workspace.view_stack("U0BOB")) == 3
    with pytest.raises(SlackApiError) as excinfo:
        client.views_push(trigger_id=stand_in.issue_trigger_id("U0BOB"), view=reject_modal())
    assert _error(excinfo)["error"] == "push_limit_reached"


def test_publish_home(stand_in: SlackStandIn, client: WebClient) -> None:
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "3 pending"}}]}
    published = client.views_publish(user_id="U0CAROL", view=home)["view"]
    assert published["type"] == "home"
    assert stand_in.workspace.home_view("U0CAROL") is not None
    with pytest.raises(SlackApiError) as excinfo:
        client.views_publish(user_id="U0CAROL", view=reject_modal())
    assert _error(excinfo)["error"] == "invalid_arguments"


def test_submission_answers_are_applied_like_slack(stand_in: SlackStandIn, client: WebClient) -> None:
    workspace = stand_in.workspace
    view = client.views_open(trigger_id=stand_in.issue_trigger_id("U0DAVE"), view=reject_modal())["view"]
    errors = workspace.apply_view_response(
        view["id"], {"response_action": "errors", "errors": {"reason": "Say why"}}
    )
    assert errors == {"reason": "Say why"}
    assert workspace.top_view("U0DAVE") is not None
    workspace.apply_view_response(
        view["id"], {"response_action": "update", "view": reject_modal(title="Thanks")}
    )
    top = workspace.top_view("U0DAVE")
    assert top is not None and top.definition["title"]["text"] == "Thanks"
    workspace.apply_view_response(view["id"], {"response_action": "clear"})
    assert workspace.view_stack("U0DAVE") == []
