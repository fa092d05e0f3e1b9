"""`requested_by` is a Slack user id; an email is resolved with users.lookupByEmail when filed.

An email stored as-is used to disable the self-approval rule without a word (issue 8 item
6). These tests resolve against the Slack stand-in over HTTP, as the bot token would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hitl_sandbox import SlackStandIn

from hitl import Approvals, InvalidRequest
from hitl.client import AsyncApprovals
from hitl.errors import NotAllowed
from hitl.settings import Settings
from tests.conftest import make_settings

TOKEN = "xoxb-requested-by"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def with_slack(redis_url: str, prefix: str, slack: SlackStandIn) -> Iterator[Approvals]:
    settings = make_settings(redis_url, prefix, slack_bot_token=TOKEN, slack_api_url=slack.url)
    with Approvals(settings=settings) as client:
        yield client


def _stored(approvals: Approvals) -> int:
    return len(list(approvals.redis.scan_iter(match=f"{approvals.keys.prefix}:req:*")))


def test_an_email_is_stored_as_the_users_id_and_self_approval_is_refused(with_slack: Approvals) -> None:
    handle = with_slack.request(action="deploy", summary="s", requested_by="Dave@Sandbox.invalid")
    assert handle.fetch().requested_by == "U0DAVE"
    with pytest.raises(NotAllowed):
        with_slack.decide(handle.id, "approve", by="U0DAVE")
    with_slack.decide(handle.id, "approve", by="U0ALICE")
    assert handle.status() == "approved"


def test_an_unknown_email_is_refused_naming_requested_by(with_slack: Approvals) -> None:
    with pytest.raises(InvalidRequest) as info:
        with_slack.request(action="deploy", summary="s", requested_by="dave@corp.example")
    assert info.value.field == "requested_by"
    assert "no Slack user has the email 'dave@corp.example'" in str(info.value)
    assert _stored(with_slack) == 0


def test_a_user_id_is_kept_without_asking_slack(with_slack: Approvals, slack: SlackStandIn) -> None:
    slack.workspace.scopes = []  # any Slack call would now fail with missing_scope
    assert with_slack.request(action="a", summary="s", requested_by="U0DAVE").fetch().requested_by == "U0DAVE"


def test_without_the_email_scope_the_refusal_says_what_to_pass(with_slack: Approvals, slack: SlackStandIn) -> None:
    slack.workspace.scopes = [s for s in slack.workspace.scopes if s != "users:read.email"]
    with pytest.raises(InvalidRequest) as info:
        with_slack.request(action="a", summary="s", requested_by="dave@sandbox.invalid")
    assert info.value.field == "requested_by"
    assert "missing_scope" in str(info.value)
    assert "Slack user id" in str(info.value)


def test_without_a_bot_token_an_email_is_refused(redis_url: str, prefix: str) -> None:
    settings: Settings = make_settings(redis_url, prefix)
    with Approvals(settings=settings) as client:
        with pytest.raises(InvalidRequest) as info:
            client.request(action="a", summary="s", requested_by="dave@sandbox.invalid")
        assert info.value.field == "requested_by"
        assert "without SLACK_BOT_TOKEN" in str(info.value)
        assert _stored(client) == 0


class _Directory:
    """A resolver handed to the client: the routing code never talks to Slack itself."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def user_id_for_email(self, email: str) -> str | None:
        self.asked.append(email)
        return "U0CAROL" if email == "carol@corp.example" else None


def test_the_resolver_is_injected_into_both_clients(settings: Settings) -> None:
    directory = _Directory()
    with Approvals(settings=settings, directory=directory) as client:
        filed = client.request(action="a", summary="s", requested_by="carol@corp.example")
        assert filed.fetch().requested_by == "U0CAROL"

        async def file_async() -> str | None:
            async with AsyncApprovals(settings=settings, directory=directory) as aio:
                handle = await aio.request(action="a", summary="s", requested_by="carol@corp.example")
                return (await handle.fetch()).requested_by

        assert asyncio.run(file_async()) == "U0CAROL"
    assert directory.asked == ["carol@corp.example", "carol@corp.example"]
