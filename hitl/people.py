"""Who filed a request: `requested_by` as a Slack user id, resolving emails through Slack.

The self-approval rule compares `requested_by` with the clicking user's Slack id, so an
email stored as-is would silently switch the rule off. An email is therefore resolved to
an id with `users.lookupByEmail` when the request is filed, and refused when it cannot be.
The Slack call lives behind `Directory` so the routing code never talks to Slack and tests
can hand the client a resolver of their own.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from hitl.errors import InvalidRequest
from hitl.settings import Settings
from hitl.slackids import is_email, is_user

# How long a resolved email is remembered (seconds): people rarely change their address.
CACHE_SECONDS = 3600.0
# Slack call timeout while filing a request (seconds).
LOOKUP_TIMEOUT = 10


class Directory(Protocol):
    """Turns an email into a Slack user id, or None when Slack knows no such user."""

    def user_id_for_email(self, email: str) -> str | None: ...


class SlackDirectory:
    """`Directory` backed by Slack's `users.lookupByEmail` (scope `users:read.email`)."""

    def __init__(self, token: str | None, api_url: str) -> None:
        self._client = WebClient(token=token, base_url=api_url, timeout=LOOKUP_TIMEOUT) if token else None
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackDirectory:
        return cls(settings.secret("slack_bot_token"), settings.slack_api_url)

    def user_id_for_email(self, email: str) -> str | None:
        if self._client is None:
            raise InvalidRequest(
                "requested_by",
                f"{email!r} is an email, and without SLACK_BOT_TOKEN it cannot be resolved; "
                "pass the person's Slack user id (U…) instead",
            )
        key = email.lower()
        with self._lock:
            hit = self._cache.get(key)
        if hit and time.monotonic() - hit[1] < CACHE_SECONDS:
            return hit[0]
        try:
            answer = self._client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error == "users_not_found":
                return None
            raise InvalidRequest(
                "requested_by",
                f"Slack could not look up {email!r} ({error or exc}); pass the person's Slack user id (U…)",
            ) from None
        except OSError as exc:  # Slack unreachable: refuse rather than file an unchecked requester
            raise InvalidRequest(
                "requested_by",
                f"Slack could not be reached to look up {email!r} ({exc}); "
                "retry, or pass a Slack user id (U…)",
            ) from None
        user_id = (answer.get("user") or {}).get("id")
        if not is_user(user_id):
            return None
        with self._lock:
            self._cache[key] = (user_id, time.monotonic())
        return user_id


@functools.lru_cache(maxsize=8)
def _shared(token: str | None, api_url: str) -> SlackDirectory:
    return SlackDirectory(token, api_url)


def default_directory(settings: Settings) -> SlackDirectory:
    """One `SlackDirectory` (and cache) per token and API URL, shared by the process."""
    return _shared(settings.secret("slack_bot_token"), settings.slack_api_url)


def resolve_requester(who: str | None, directory: Directory) -> str | None:
    """`requested_by` as a Slack user id: ids pass, emails are looked up, else refused."""
    if who is None or is_user(who):
        return who
    if is_email(who):
        user_id = directory.user_id_for_email(who)
        if user_id is None:
            raise InvalidRequest(
                "requested_by",
                f"no Slack user has the email {who!r}; pass their Slack user id (U…) or the "
                "email they use in Slack",
            )
        return user_id
    raise InvalidRequest("requested_by", f"{who!r} is neither a Slack user id (U…/W…) nor an email")
