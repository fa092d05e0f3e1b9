"""Tool calls that outlast their client: a repeat re-attaches to the request it filed.

Agents' clients give up on a tool call after 5 to 60 s (MCP clients, Claude Code hooks,
the Claude Agent SDK's `can_use_tool`), while a reviewer may take minutes. So a wait that
runs out never cancels anything: the request stays pending in Slack, the client is told
which request is pending and what to call, and the *same* call asked again files nothing
new. It reaches the same request through the ordinary idempotency key (`hitl.store`),
derived from what identifies the call (`derived_key`), so there is one mechanism and one
card.

A key derived from the call's content (tool, arguments, session) also matches a later,
legitimate repeat of the same command. `attach` therefore treats a key as spent once its
approval has been handed out (`claim` records the execution, `hitl.executions`), and once
its request expired or was cancelled (no one decided that one): the next repeat files a
fresh request under the key's next generation (``KEY#1``, ``KEY#2`` ...). A rejection is
not spent: the same call in the same session hears the same "no".
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hitl.errors import InvalidRequest
from hitl.models import Decision, Request
from hitl.status import Status

if TYPE_CHECKING:
    from hitl.client import AsyncApprovals  # only annotations: `hitl hook` never loads the Redis client

# How many spent generations of one derived key `attach` walks past before refusing.
MAX_GENERATIONS = 64
# Statuses after which nobody decided: a repeat of the call asks again.
_STALE = frozenset({Status.EXPIRED, Status.CANCELLED})


def derived_key(prefix: str, *parts: Any) -> str:
    """A stable idempotency key for one tool call: `prefix` and sha256 of `parts` as canonical
    JSON (the store scopes it to the caller's API key besides)."""
    content = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{prefix}:{hashlib.sha256(content.encode()).hexdigest()[:48]}"


class Claim(StrEnum):
    """What `claim` found for an approved request."""

    MINE = "mine"  # this caller hands the approval out: the tool may run
    SPENT = "spent"  # another repeat already handed it out


def _spent(req: Request) -> bool:
    if req.status in _STALE:
        return True
    return Decision.from_request(req).approved and req.execution is not None


async def attach(aio: AsyncApprovals, fields: dict[str, Any], key: str, *, via: str | None) -> Request:
    """The request this call belongs to: pending, decided and not yet handed out, or new
    (filed with `fields` under the first unspent generation of `key`)."""
    for generation in range(MAX_GENERATIONS):
        slot = key if generation == 0 else f"{key}#{generation}"
        handle = await aio.request_from({**fields, "idempotency_key": slot}, via=via)
        req = await aio.fetch(handle.id)
        if not _spent(req):
            return req
    raise InvalidRequest(
        "idempotency_key",
        f"the same tool call was already asked and answered {MAX_GENERATIONS} times; ask the user "
        "instead, or change the call",
    )


async def claim(aio: AsyncApprovals, req: Request) -> Claim:
    """Record that an approved request's tool call is handed to the client (started and,
    as far as hitl can know, finished: the client runs it), at most once."""
    if req.execution is not None:
        return Claim.SPENT
    if not await aio.start_execution(req.id):
        return Claim.SPENT
    await aio.finish_execution(req.id)
    return Claim.MINE


def answerable(req: Request) -> bool:
    """Whether the request says yes or no already (an override's open window says yes)."""
    return req.final or Decision.from_request(req).approved


__all__ = ["MAX_GENERATIONS", "Claim", "answerable", "attach", "claim", "derived_key"]
