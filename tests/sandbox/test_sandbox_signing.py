"""Signed requests and payload builders, checked by slack_sdk's verifier and a real Bolt app."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions, sign, signed_command, signed_event, signed_interaction
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

SECRET = "sandbox-signing-secret"

CARD: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* to production"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": "req-9",
            }
        ],
    },
]


def test_signature_is_accepted_by_slack_sdk_verifier() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    now = int(time.time())
    headers = sign(SECRET, body, now)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body, sign(SECRET, body, now - 600))  # too old


def test_click_payload_matches_the_stored_message(stand_in: SlackStandIn) -> None:
    workspace = stand_in.workspace
    message = workspace.post_message("C0APPROVALS", "deploy?", blocks=CARD)
    payload = Interactions(workspace).click("C0APPROVALS", message.ts, "approve", user_id="U0BOB")
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0BOB" and payload["user"]["username"] == "bob"
    assert payload["container"] == {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": "C0APPROVALS",
        "is_ephemeral": False,
    }
    action = payload["actions"][0]
    assert action["type"] == "button" and action["value"] == "req-9"
    assert action["block_id"] == message.blocks[1]["block_id"]  # Slack's generated block_id
    assert payload["message"]["blocks"] == message.blocks
    assert payload["response_url"].startswith(stand_in.base_url)

    request = signed_interaction(SECRET, payload)
    assert SignatureVerifier(SECRET).is_valid_request(request.body, request.headers)
    decoded = json.loads(parse_qs(request.text)["payload"][0])
    assert decoded == payload


def _bolt_app(stand_in: SlackStandIn) -> App:
    client = WebClient(token=stand_in.bot_token, base_url=stand_in.url)
    return App(client=client, signing_secret=SECRET)


def test_bolt_app_handles_a_click_and_updates_the_card(stand_in: SlackStandIn) -> None:
    workspace = stand_in.workspace
    app = _bolt_app(stand_in)

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        decided = [
            body["message"]["blocks"][0],
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Approved"}]},
        ]
        client.chat_update(
            channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved", blocks=decided
        )
        respond(text="Thanks, recorded.", response_type="ephemeral", replace_original=False)

    message = workspace.post_message("C0APPROVALS", "deploy?", blocks=CARD)
    request = signed_interaction(SECRET, Interactions(workspace).click("C0APPROVALS", message.ts, "approve"))
    response = app.dispatch(BoltRequest(body=request.text, headers=request.headers))
    assert response.status == 200

    workspace.wait_for(lambda: workspace.ephemerals("C0APPROVALS", "U0ALICE"), what="respond() ephemeral")
    updated = workspace.message("C0APPROVALS", message.ts)
    assert updated is not None and not updated.has_actions() and updated.text == "Approved"
    assert [c.method for c in workspace.calls()][:1] == ["auth.test"]


def test_bolt_app_opens_a_modal_from_a_command_and_reads_the_submission(stand_in: SlackStandIn) -> None:
    workspace = stand_in.workspace
    app = _bolt_app(stand_in)
    submitted: list[tuple[str, str]] = []

    @app.command("/hitl")
    def hitl(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "reason",
                "private_metadata": body["text"],
                "title": {"type": "plain_text", "text": "Reject"},
                "submit": {"type": "plain_text", "text": "Reject"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "why",
                        "label": {"type": "plain_text", "text": "Why?"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ],
            },
        )

    @app.view("reason")
    def reason(ack: Ack, view: dict[str, Any]) -> None:
        # Record before ack(): dispatch() returns as soon as the listener acks.
        submitted.append((view["private_metadata"], view["state"]["values"]["why"]["text"]["value"]))
        ack()

    interactions = Interactions(workspace)
    command = signed_command(SECRET, interactions.command("/hitl", "req-3", user_id="U0CAROL"))
    assert app.dispatch(BoltRequest(body=command.text, headers=command.headers)).status == 200
    modal = workspace.wait_for(lambda: workspace.top_view("U0CAROL"), what="modal opened")

    submission = signed_interaction(SECRET, interactions.submit(modal.id, {"text": "Too risky"}))
    answer = app.dispatch(BoltRequest(body=submission.text, headers=submission.headers))
    assert answer.status == 200
    assert submitted == [("req-3", "Too risky")]
    # A plain ack() closes the modal, as Slack would.
    assert workspace.apply_view_response(modal.id, answer.body) is None
    assert workspace.top_view("U0CAROL") is None


def test_app_home_opened_event_is_signed_json(stand_in: SlackStandIn) -> None:
    payload = Interactions(stand_in.workspace).home_opened("U0DAVE")
    assert payload["type"] == "event_callback"
    assert payload["event"]["type"] == "app_home_opened" and payload["event"]["user"] == "U0DAVE"
    request = signed_event(SECRET, payload)
    assert request.headers["Content-Type"] == "application/json"
    assert SignatureVerifier(SECRET).is_valid_request(request.body, request.headers)
