"""Timer jobs: expire gates, close override windows, escalate.

Every timer is safe to run twice or late: the transition scripts check the request's
state, so a duplicate or a moot timer (the request was decided meanwhile) changes
nothing. A timer never acts early: the claim only hands out due members (ms precision)
and `fire_timers` waits out any remainder.
"""

from __future__ import annotations

import logging
import time

from hitl import tracing
from hitl.errors import RequestNotFound, TransitionRefused
from hitl.keys import parse_timer_member
from hitl.metrics import MetricsStore
from hitl.tracing import SpanName
from workers import queues
from workers.context import store_for

log = logging.getLogger(__name__)

# The system verb each timer kind applies.
_VERBS = {"timeout": "expire", "window": "finalize"}


def fire_timers(prefix: str, items: list[tuple[str, int, int]]) -> dict[str, str]:
    """Fire a batch of claimed timers [(member, due_ms, lease)]; returns what each did."""
    store = store_for(prefix)
    counted = MetricsStore(store.redis, store.keys) if store.metrics else None
    outcome: dict[str, str] = {}
    for member, due_ms, lease in items:
        rid, kind, step = parse_timer_member(member)
        early = due_ms / 1000 - time.time()
        if early > 0:
            time.sleep(early)
        if counted is not None:
            counted.timer_lateness(time.time() - due_ms / 1000)
        try:
            if kind in _VERBS:
                started = time.time_ns()
                status, trace_ctx = store.transition_traced(rid, _VERBS[kind])
                outcome[member] = status.value
                attrs = {"hitl.request_id": rid, "hitl.verb": _VERBS[kind], "hitl.status": status.value}
                tracing.record(SpanName.TRANSITION, trace_ctx, started, attrs)
            elif kind == "esc" and step is not None:
                if store.escalate(rid, step):
                    outcome[member] = f"escalated {step}"
                    queues.queue(store.redis, prefix, queues.SLACK).enqueue(
                        "workers.cards.escalation_ping", prefix, rid, step, result_ttl=60
                    )
                else:
                    outcome[member] = "moot"
            else:
                outcome[member] = "unknown timer kind"
                log.error("unknown timer %s", member)
        except (TransitionRefused, RequestNotFound) as exc:
            outcome[member] = f"moot: {exc}"
        store.ack_timer(member, lease)
    return outcome
