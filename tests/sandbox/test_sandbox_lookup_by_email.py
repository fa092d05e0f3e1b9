"""users.lookupByEmail answers as Slack does: the user, users_not_found, or missing_scope."""

from __future__ import annotations

import pytest
from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def test_finds_a_user_by_email_whatever_the_case(client: WebClient) -> None:
    user = client.users_lookupByEmail(email="Carol@Sandbox.INVALID")["user"]
    assert (user["id"], user["profile"]["email"]) == ("U0CAROL", "carol@sandbox.invalid")


def test_an_unknown_email_is_users_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        client.users_lookupByEmail(email="mallory@corp.example")
    assert info.value.response["error"] == "users_not_found"


def test_needs_the_users_read_email_scope(stand_in: SlackStandIn, client: WebClient) -> None:
    stand_in.workspace.scopes = [s for s in stand_in.workspace.scopes if s != "users:read.email"]
    with pytest.raises(SlackApiError) as info:
        client.users_lookupByEmail(email="carol@sandbox.invalid")
    assert (info.value.response["error"], info.value.response["needed"]) == ("missing_scope", "users:read.email")
