"""Executions: an approval lets its tool call run at most once.

An adapter records that the approved call is starting (`start`) before it runs the tool
and that it ended (`finish`) after. The record lives in the request's own hash (field
``execution``, see `hitl.keys`), written by one script (`hitl.scripts.EXECUTION`), so a
second start is refused atomically however many processes re-run the agent. A re-run that
finds a start without a finish cannot know whether the tool ran; the script marks the
request `ExecutionState.UNKNOWN` and re-syncs its card, and the adapter tells the model
"outcome unknown: check before retrying" instead of running the tool a second time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from hitl import scripts
from hitl.errors import ExecutionRefused, RequestNotFound
from hitl.ids import known_shape
from hitl.keys import Keys, sync_member
from hitl.masking import result_text
from hitl.redisvalues import as_str
from hitl.status import EventType, ExecutionState

STARTED, FINISHED = "started", "finished"


def execution_args(
    keys: Keys, request_id: str, state: str, ok: bool = True, result: Any = None
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV for `scripts.EXECUTION`; `RequestNotFound` for a string that is no
    request id (it would name another key of the request). A finish's `result` goes into its
    audit event masked and size-capped (`hitl.masking.result_text`)."""
    known_shape(request_id)
    payload: dict[str, Any] = {
        "id": request_id, "sync": sync_member(request_id), "state": state, "ok": ok,
        "events": {
            "started": EventType.EXECUTION_STARTED.value,
            "finished": EventType.EXECUTION_FINISHED.value,
            "unknown": EventType.OUTCOME_UNKNOWN.value,
        },
    }
    if result is not None:
        payload["result"] = result_text(result)
    return [keys.req(request_id), keys.timers, keys.events], [json.dumps(payload, separators=(",", ":"))]


def parse_started(request_id: str, result: Sequence[Any]) -> bool:
    """EXECUTION's answer to a start: True when this caller may run the tool."""
    kind = as_str(result[0])
    if kind == "started":
        return True
    if kind == "already":
        return False
    if kind == "missing":
        raise RequestNotFound(request_id)
    raise ExecutionRefused(
        request_id, "not_approved",
        f"request {request_id} is {as_str(result[1])}: its tool call may not run, so no execution starts",
    )


def parse_finished(request_id: str, result: Sequence[Any]) -> None:
    kind = as_str(result[0])
    if kind == "finished":
        return
    if kind == "missing":
        raise RequestNotFound(request_id)
    state = as_str(result[1]) or "not started"
    raise ExecutionRefused(
        request_id, "not_started",
        f"request {request_id}'s tool call is {state}: only a started execution can finish",
    )


class Executions:
    """Start and finish records of approved tool calls (synchronous)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = client.register_script(scripts.EXECUTION)

    def start(self, request_id: str) -> bool:
        """Record the start; False when a call already started (then it must not run)."""
        return parse_started(request_id, self._script(*execution_args(self.keys, request_id, STARTED)))

    def finish(self, request_id: str, *, ok: bool = True, result: Any = None) -> None:
        """Record the end of a started call; `ok` False when the tool raised; `result`, if
        given, is kept (masked, capped) in the audit event."""
        parse_finished(request_id, self._script(*execution_args(self.keys, request_id, FINISHED, ok, result)))


class AsyncExecutions:
    """`Executions` for asyncio code."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = client.register_script(scripts.EXECUTION)

    async def start(self, request_id: str) -> bool:
        args = execution_args(self.keys, request_id, STARTED)
        return parse_started(request_id, await self._script(*args))

    async def finish(self, request_id: str, *, ok: bool = True, result: Any = None) -> None:
        args = execution_args(self.keys, request_id, FINISHED, ok, result)
        parse_finished(request_id, await self._script(*args))


__all__ = ["AsyncExecutions", "ExecutionState", "Executions"]
