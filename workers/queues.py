"""The RQ queues hitl-router uses, named after the key prefix so deployments don't mix."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from hitl.keys import Keys

# Timer firings: expiries, window ends, escalation steps. Short, latency-sensitive jobs.
TIMERS = "timers"
# Slack calls: posting and updating cards, escalation pings. Paced, retried.
SLACK = "slack"
# Decision webhooks: only jobs left by older workers; attempts now run as hook timers.
WEBHOOKS = "webhooks"


def queue_name(prefix: str, kind: str) -> str:
    return Keys(prefix).queue(kind)


def queue(connection: Redis, prefix: str, kind: str) -> Queue:
    return Queue(queue_name(prefix, kind), connection=connection)


def all_queues(connection: Redis, prefix: str) -> list[Queue]:
    """Timers first: a worker drains deadlines before it talks to Slack."""
    return [queue(connection, prefix, kind) for kind in (TIMERS, SLACK, WEBHOOKS)]
