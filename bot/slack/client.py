"""The one way hitl-router talks to Slack's Web API.

A `WebClient` pointed at `SLACK_API_URL` with slack_sdk's own retry handlers: 429s wait
out Retry-After, connection errors and 5xx are retried with back-off. Built once per
process and shared (WebClient is thread-safe).
"""

from __future__ import annotations

import logging
from urllib.error import HTTPError

import redis
from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse

from hitl.errors import ConfigError
from hitl.keys import Keys
from hitl.metrics import MetricsStore, SlackOutcome
from hitl.settings import Settings

log = logging.getLogger(__name__)

# Retries per call before an error reaches the caller (RQ then retries the whole job).
RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 3
SERVER_ERROR_RETRIES = 2
# Seconds before a single Web API call gives up.
CALL_TIMEOUT = 15


def bot_token(settings: Settings) -> str:
    token = settings.secret("slack_bot_token")
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) from your app")
    return token


class CallCounter(RetryHandler):
    """Counts every Web API attempt into `hitl_slack_calls_total{method,outcome}`.

    slack_sdk asks its retry handlers about every answer (and every connection error),
    so a handler placed first sees each attempt, retries included; it never asks for a
    retry itself and leaves that to the handlers after it. Shared by every client this
    module builds, so every caller is counted the same way.
    """

    def __init__(self, store: MetricsStore) -> None:
        super().__init__(max_retry_count=0)
        self.store = store

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        try:
            self.store.slack_call(method, outcome_of(response, error))
        except redis.RedisError as exc:  # a figure lost is better than a Slack call lost
            log.debug("could not count a Slack call: %s", exc)
        return False


def outcome_of(response: HttpResponse | None, error: Exception | None) -> SlackOutcome:
    status = response.status_code if response is not None else None
    if status is None and isinstance(error, HTTPError):
        status = error.code
    if status == 429:
        return SlackOutcome.RATELIMITED
    if error is not None or status != 200:
        return SlackOutcome.ERROR
    body = response.body if response is not None else None
    if isinstance(body, dict) and body.get("ok") is False:
        return SlackOutcome.RATELIMITED if body.get("error") == "ratelimited" else SlackOutcome.ERROR
    return SlackOutcome.OK


def counter(settings: Settings, client: redis.Redis | None = None) -> list[RetryHandler]:
    """The call counter for clients built from `settings` (none when HITL_METRICS is off)."""
    if not settings.metrics:
        return []
    conn = client or redis.Redis.from_url(settings.redis, socket_connect_timeout=2, socket_timeout=2)
    return [CallCounter(MetricsStore(conn, Keys(settings.prefix)))]


def web_client(settings: Settings, *, retries: bool = True, connection_retries: bool = True) -> WebClient:
    """A counted client; `connection_retries=False` for posts, where a dropped connection
    may hide a message that was created (posting blindly again makes duplicates)."""
    handlers = counter(settings)
    if retries:
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
        if connection_retries:
            handlers.append(ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES))
        handlers.append(ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES))
    return WebClient(
        token=bot_token(settings),
        base_url=settings.slack_api_url,
        timeout=CALL_TIMEOUT,
        retry_handlers=handlers,
    )
