"""Timer firings: expire gates, close override windows, escalate.

Every timer is safe to run twice or late: the transition scripts check the request's
state, so a duplicate or a moot timer (the request was decided meanwhile) changes
nothing. A timer never acts early: the claim only hands out due members (ms precision)
and `fire` waits out any remainder.

The ticker calls `fire` directly in its own thread, so a deadline never waits behind a
Slack call; `fire_timers` is the same as an RQ job (kept for operators who enqueue it).
"""

from __future__ import annotations

import logging
import time

from bot.slack import delivery
from hitl import tracing
from hitl.errors import RequestNotFound, TransitionRefused
from hitl.keys import TimerKind, parse_timer_member
from hitl.metrics import MetricsStore
from hitl.status import SystemVerb
from hitl.store import Store
from hitl.tracing import SpanName
from workers import queues
from workers.context import store_for

log = logging.getLogger(__name__)

# The system verb each timer kind applies.
_VERBS = {TimerKind.TIMEOUT: SystemVerb.EXPIRE, TimerKind.WINDOW: SystemVerb.FINALIZE}


def fire(store: Store, member: str, due_ms: int, lease: int) -> str:
    """Fire one claimed timer and acknowledge it; returns what it did."""
    try:
        rid, kind, step = parse_timer_member(member)
    except ValueError:  # written by some other version: drop it rather than retry it forever
        log.error("unknown timer %s", member)
        store.ack_timer(member, lease)
        return "unknown timer kind"
    early = due_ms / 1000 - time.time()
    if early > 0:
        time.sleep(early)
    if store.metrics:
        MetricsStore(store.redis, store.keys).timer_lateness(time.time() - due_ms / 1000)
    try:
        if kind in _VERBS:
            started = time.time_ns()
            status, trace_ctx = store.transition_traced(rid, _VERBS[kind])
            outcome = status.value
            attrs = {"hitl.request_id": rid, "hitl.verb": _VERBS[kind], "hitl.status": status.value}
            tracing.record(SpanName.TRANSITION, trace_ctx, started, attrs)
        elif kind is TimerKind.ESC and step is not None:
            if store.escalate(rid, step):
                outcome = f"escalated {step}"
                queues.queue(store.redis, store.keys.prefix, queues.SLACK).enqueue(
                    escalation_ping, store.keys.prefix, rid, step, result_ttl=60
                )
            else:
                outcome = "moot"
        else:
            outcome = "unknown timer kind"
            log.error("unknown timer %s", member)
    except (TransitionRefused, RequestNotFound) as exc:
        outcome = f"moot: {exc}"
    store.ack_timer(member, lease)
    return outcome


def fire_timers(prefix: str, items: list[tuple[str, int, int]]) -> dict[str, str]:
    """Fire a batch of claimed timers [(member, due_ms, lease)]; returns what each did."""
    store = store_for(prefix)
    return {member: fire(store, member, due_ms, lease) for member, due_ms, lease in items}


def escalation_ping(prefix: str, request_id: str, step: int) -> str:
    """The RQ job behind an escalation: the reminder (and repost) `bot.slack.delivery` sends."""
    return delivery.escalation_ping(store_for(prefix), request_id, step)
