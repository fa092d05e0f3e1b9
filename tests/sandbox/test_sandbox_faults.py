"""Injected 429s, server errors, dropped connections and the per-channel rate limit."""

from __future__ import annotations

import pytest
from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

BOT_TOKEN = "xoxb-test"  # the token tests/sandbox/conftest.py starts the stand-in with


def test_rate_limit_retry_handler_succeeds_after_one_429(stand_in: SlackStandIn) -> None:
    stand_in.faults.ratelimit("chat.postMessage", times=1, retry_after=1)
    client = WebClient(
        token=BOT_TOKEN,
        base_url=stand_in.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    response = client.chat_postMessage(channel="C0APPROVALS", text="burst")
    assert response["ok"]
    calls = stand_in.workspace.calls("chat.postMessage")
    assert [(c.status, c.error) for c in calls] == [(429, "ratelimited"), (200, None)]
    assert len(stand_in.workspace.messages("C0APPROVALS")) == 1


def test_429_without_retry_handler_carries_retry_after(stand_in: SlackStandIn, client: WebClient) -> None:
    stand_in.faults.ratelimit("chat.update", retry_after=7)
    ts = client.chat_postMessage(channel="C0APPROVALS", text="card")["ts"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0APPROVALS", ts=ts, text="decided")
    response = excinfo.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response["error"] == "ratelimited"


def test_server_error_surfaces_as_slack_api_error(stand_in: SlackStandIn, client: WebClient) -> None:
    stand_in.faults.error("chat.postMessage", 500)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0APPROVALS", text="x")
    assert excinfo.value.response.status_code == 500
    assert stand_in.workspace.messages("C0APPROVALS") == []
    # Only the next call was faulty.
    assert client.chat_postMessage(channel="C0APPROVALS", text="x")["ok"]


def test_503_with_an_html_body(stand_in: SlackStandIn, client: WebClient) -> None:
    stand_in.faults.error("auth.test", 503, body="<html>Service Unavailable</html>")
    with pytest.raises(SlackApiError) as excinfo:
        client.auth_test()
    assert excinfo.value.response.status_code == 503
    assert "non-JSON" in excinfo.value.response["error"]


def test_dropped_connection_is_retried_by_the_connection_handler(stand_in: SlackStandIn) -> None:
    stand_in.faults.drop("chat.postMessage")
    # slack_sdk's default handler, minus its 0.5 s+ backoff to keep the test fast.
    handler = ConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.0))
    client = WebClient(token=BOT_TOKEN, base_url=stand_in.url, retry_handlers=[handler])
    assert client.chat_postMessage(channel="C0APPROVALS", text="after a reset")["ok"]
    assert [c.status for c in stand_in.workspace.calls("chat.postMessage")] == [0, 200]

    stand_in.faults.drop("chat.postMessage")
    bare = WebClient(token=BOT_TOKEN, base_url=stand_in.url, retry_handlers=[])
    with pytest.raises(OSError):  # http.client.RemoteDisconnected
        bare.chat_postMessage(channel="C0APPROVALS", text="lost")


def test_per_channel_rate_limit(stand_in: SlackStandIn, client: WebClient) -> None:
    now = [1000.0]
    stand_in.workspace.clock = lambda: now[0]
    stand_in.faults.set_rate_limit("chat.postMessage", limit=1, per=1.0)

    assert client.chat_postMessage(channel="C0APPROVALS", text="1")["ok"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0APPROVALS", text="2")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["retry-after"] == "1"
    # Another channel has its own window.
    assert client.chat_postMessage(channel="C0ENGLEADS", text="elsewhere")["ok"]

    now[0] += 1.0
    assert client.chat_postMessage(channel="C0APPROVALS", text="2 again")["ok"]
    assert [m.text for m in stand_in.workspace.messages("C0APPROVALS")] == ["1", "2 again"]
