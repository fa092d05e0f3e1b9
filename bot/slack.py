"""The one way hitl-router talks to Slack's Web API.

A `WebClient` pointed at `SLACK_API_URL` with slack_sdk's own retry handlers: 429s wait
out Retry-After, connection errors and 5xx are retried with back-off. Built once per
process and shared (WebClient is thread-safe).
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from hitl.errors import ConfigError
from hitl.settings import Settings

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


def web_client(settings: Settings, *, retries: bool = True) -> WebClient:
    handlers = (
        [
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
            ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        ]
        if retries
        else []
    )
    return WebClient(
        token=bot_token(settings),
        base_url=settings.slack_api_url,
        timeout=CALL_TIMEOUT,
        retry_handlers=handlers,
    )
