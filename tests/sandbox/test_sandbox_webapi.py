"""The stand-in answers slack_sdk's WebClient the way Slack does: messages, errors, auth."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

APPROVE_CARD: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*send_email* to 200 customers"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": "req-1",
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": "req-1",
            },
        ],
    },
]


def _error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> dict[str, Any]:
    return dict(excinfo.value.response.data)


def test_auth_test_reports_the_bot_and_scopes_header(client: WebClient) -> None:
    response = client.auth_test()
    assert response["user_id"] == "U0HITLBOT"
    assert response["bot_id"] == "B0HITLBOT"
    assert response["team_id"] == "T0SANDBOX"
    assert "chat:write" in response.headers["x-oauth-scopes"]


def test_post_then_update_round_trip(stand_in: SlackStandIn, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="#agent-approvals", text="Approval needed", blocks=APPROVE_CARD)
    assert posted["channel"] == "C0APPROVALS"  # name resolved to the id, as Slack does
    ts = posted["ts"]
    assert posted["message"]["bot_id"] == "B0HITLBOT"
    # Slack fills in block_ids it was not given; interaction payloads carry them.
    assert all(block.get("block_id") for block in posted["message"]["blocks"])

    decided = [
        *APPROVE_CARD[:2],
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Approved by <@U0ALICE>"}]},
    ]
    updated = client.chat_update(channel="C0APPROVALS", ts=ts, text="Approved", blocks=decided)
    assert updated["ts"] == ts

    stored = stand_in.workspace.message("C0APPROVALS", ts)
    assert stored is not None
    assert stored.text == "Approved"
    assert not stored.has_actions()
    assert stored.edited is None  # a bot replacing blocks is not marked edited
    history = client.conversations_history(channel="C0APPROVALS")
    assert [m["ts"] for m in history["messages"]] == [ts]

    second = client.chat_postMessage(channel="C0APPROVALS", text="next")
    assert float(second["ts"]) > float(ts)


def test_update_keeps_blocks_when_left_out_and_refuses_other_authors(
    stand_in: SlackStandIn, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel="C0APPROVALS", text="card", blocks=APPROVE_CARD)["ts"]
    client.chat_update(channel="C0APPROVALS", ts=ts, text="card (text only)")
    stored = stand_in.workspace.message("C0APPROVALS", ts)
    assert stored is not None and stored.has_actions() and stored.edited is not None

    human = stand_in.workspace.post_message("C0APPROVALS", "hello", user="U0BOB")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0APPROVALS", ts=human.ts, text="hijacked")
    assert _error(excinfo)["error"] == "cant_update_message"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0APPROVALS", ts="1.000001", text="x")
    assert _error(excinfo)["error"] == "message_not_found"


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
            "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        ([{"type": "divider"}] * 51, "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "A"}},
                        {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "B"}},
                    ],
                }
            ],
            '[ERROR] `action_id` "go" already exists [json-pointer:/blocks/0/elements/1/action_id]',
        ),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "A"}, "style": "warning"}
                    ],
                }
            ],
            "[ERROR] must be a valid enum value [json-pointer:/blocks/0/elements/0/style]",
        ),
        ([{"type": "sectoin", "text": {"type": "mrkdwn", "text": "typo"}}], None),
    ],
    ids=["header-151", "51-blocks", "duplicate-action-id", "section-3001", "11-fields", "style", "unknown"],
)
def test_invalid_blocks_are_rejected_like_slack(
    stand_in: SlackStandIn, client: WebClient, blocks: list[dict[str, Any]], message: str | None
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0APPROVALS", text="fallback", blocks=blocks)
    body = _error(excinfo)
    assert body["error"] == "invalid_blocks"
    if message is not None:
        assert message in body["response_metadata"]["messages"]
    assert stand_in.workspace.messages("C0APPROVALS") == []


def test_blocks_that_are_not_an_array_are_invalid_blocks_format(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", json={"channel": "C0APPROVALS", "blocks": {"type": "divider"}})
    assert _error(excinfo)["error"] == "invalid_blocks_format"
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", params={"channel": "C0APPROVALS", "blocks": "[not json"})
    assert _error(excinfo)["error"] == "invalid_blocks_format"


def test_post_message_argument_errors(stand_in: SlackStandIn, client: WebClient) -> None:
    cases = [
        ({"text": "no channel"}, "channel_not_found"),
        ({"channel": "#nowhere", "text": "x"}, "channel_not_found"),
        ({"channel": "C0APPROVALS"}, "no_text"),
        ({"channel": "C0APPROVALS", "text": "x" * 40_001}, "msg_too_long"),
    ]
    stand_in.workspace.add_channel("quiet", "C0QUIET", bot_is_member=False)
    cases.append(({"channel": "C0QUIET", "text": "x"}, "not_in_channel"))
    for kwargs, error in cases:
        with pytest.raises(SlackApiError) as excinfo:
            client.api_call("chat.postMessage", json=kwargs)
        assert _error(excinfo)["error"] == error, kwargs


def test_threads_ephemerals_permalinks_and_people(stand_in: SlackStandIn, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0APPROVALS", text="card")["ts"]
    reply = client.chat_postMessage(channel="C0APPROVALS", text="reminder", thread_ts=parent)
    assert reply["message"]["thread_ts"] == parent
    thread = client.conversations_replies(channel="C0APPROVALS", ts=parent)["messages"]
    assert [m["ts"] for m in thread] == [parent, reply["ts"]]
    assert thread[0]["reply_count"] == 1
    # Replies stay out of the channel history.
    assert [m["ts"] for m in client.conversations_history(channel="C0APPROVALS")["messages"]] == [parent]

    ephemeral = client.chat_postEphemeral(channel="C0APPROVALS", user="U0BOB", text="Already decided")
    assert [e.text for e in stand_in.workspace.ephemerals("C0APPROVALS", "U0BOB")] == ["Already decided"]
    assert ephemeral["message_ts"]
    stand_in.workspace.add_channel("secret-ish", "C0SMALL", members=["U0ALICE"])
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postEphemeral(channel="C0SMALL", user="U0BOB", text="x")
    assert _error(excinfo)["error"] == "user_not_in_channel"

    link = client.chat_getPermalink(channel="C0APPROVALS", message_ts=parent)["permalink"]
    assert link.endswith("/archives/C0APPROVALS/p" + parent.replace(".", ""))

    assert client.users_info(user="U0CAROL")["user"]["name"] == "carol"
    assert client.usergroups_users_list(usergroup="S0LEADS")["users"] == ["U0ALICE", "U0BOB"]
    assert client.conversations_info(channel="C0ENGLEADS")["channel"]["name"] == "eng-leads"
    for call, error in [
        (lambda: client.users_info(user="U0NOBODY"), "user_not_found"),
        (lambda: client.usergroups_users_list(usergroup="S0NONE"), "no_such_subteam"),
        (lambda: client.conversations_info(channel="C0NONE"), "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            call()
        assert _error(excinfo)["error"] == error


def test_dm_by_user_id(client: WebClient) -> None:
    posted = client.chat_postMessage(channel="U0DAVE", text="Reminder: 1 approval waiting")
    assert posted["channel"].startswith("D")
    assert client.conversations_open(users="U0DAVE")["channel"]["id"] == posted["channel"]


def test_unknown_method_and_tokens(stand_in: SlackStandIn, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.teleport")
    assert excinfo.value.response.status_code == 200
    assert _error(excinfo)["error"] == "unknown_method"

    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token="xoxb-wrong", base_url=stand_in.url, retry_handlers=[]).auth_test()
    assert _error(excinfo)["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(base_url=stand_in.url, retry_handlers=[]).auth_test()
    assert _error(excinfo)["error"] == "not_authed"


def test_json_body_ignored_by_read_methods_and_token_as_form_field(
    stand_in: SlackStandIn, client: WebClient
) -> None:
    # Slack's read methods take form arguments only; a JSON body is as good as nothing.
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("users.info", json={"user": "U0ALICE"})
    assert _error(excinfo)["error"] == "user_not_found"

    # curl-style: GET with a query string, and a token passed as a form field.
    with urllib.request.urlopen(f"{stand_in.url}users.info?user=U0ALICE&token=xoxb-test") as response:
        assert json.loads(response.read())["user"]["id"] == "U0ALICE"
    request = urllib.request.Request(
        f"{stand_in.url}chat.postMessage",
        data=b"token=xoxb-test&channel=general&text=hello",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["channel"] == "C0GENERAL"


def test_calls_are_logged(stand_in: SlackStandIn, client: WebClient) -> None:
    client.chat_postMessage(channel="C0APPROVALS", text="one")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0NONE", text="two")
    calls = stand_in.workspace.calls("chat.postMessage")
    assert [(c.status, c.ok, c.error) for c in calls] == [
        (200, True, None),
        (200, False, "channel_not_found"),
    ]
    assert calls[0].args["text"] == "one"


def test_wait_for_wakes_on_a_change_made_by_another_thread(stand_in: SlackStandIn) -> None:
    workspace = stand_in.workspace
    ts = workspace.post_message("C0APPROVALS", "card", blocks=APPROVE_CARD).ts
    go = threading.Event()

    def decide() -> None:
        go.wait(5)
        workspace.update_message("C0APPROVALS", ts, text="Approved", blocks=APPROVE_CARD[:2])

    worker = threading.Thread(target=decide)
    worker.start()
    go.set()
    message = workspace.wait_for(
        lambda: (m := workspace.message("C0APPROVALS", ts)) is not None and not m.has_actions() and m,
        timeout=5,
    )
    worker.join(5)
    assert message.text == "Approved"

    with pytest.raises(TimeoutError):
        workspace.wait_for(lambda: workspace.message("C0APPROVALS", "0.000001"), timeout=0.05)
