"""The vocabulary of a request's life: modes, statuses, verbs and risk levels.

All are `str` enums so they serialise to the plain strings users see in Redis, in Slack
and in the audit log.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """Where the human sits (SPEC's risk matrix)."""

    AUTO = "auto"  # act at once, log only
    NOTIFY = "notify"  # act at once, post an info card
    OVERRIDE = "override"  # act at once, a human may veto within a window
    GATE = "gate"  # wait for an approval
    SHADOW = "shadow"  # ask "would you approve?", never block the agent


# Modes ordered by how much human oversight they give; used to let callers only raise it.
OVERSIGHT_ORDER: tuple[Mode, ...] = (Mode.AUTO, Mode.NOTIFY, Mode.SHADOW, Mode.OVERRIDE, Mode.GATE)


class Status(StrEnum):
    """Where a request is in its lifecycle."""

    PENDING = "pending"  # gate or shadow: waiting for a human
    OPEN = "open"  # override: executed, veto window running
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FINALIZED = "finalized"  # override window closed (or confirmed early) without a veto
    VETOED = "vetoed"
    JUDGED = "judged"  # shadow: a human said what they would have done

    @property
    def final(self) -> bool:
        return self not in (Status.PENDING, Status.OPEN)


FINAL_STATUSES: frozenset[Status] = frozenset(s for s in Status if s.final)


class Verb(StrEnum):
    """What a person can do to a request."""

    APPROVE = "approve"
    REJECT = "reject"
    VETO = "veto"
    CONFIRM = "confirm"  # override: "looks good", closes the window early


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class EventType(StrEnum):
    """Audit stream event types."""

    CREATED = "created"
    VOTED = "voted"  # one approval towards a quorum
    DECIDED = "decided"
    EXPIRED = "expired"
    ESCALATED = "escalated"
    VETOED = "vetoed"
    FINALIZED = "finalized"
    CANCELLED = "cancelled"
    DELIVERED = "delivered"
    CLEANED = "cleaned"  # maintenance removed a request left pending past deadline + retention
    TRIMMED = "trimmed"  # maintenance trimmed audit events older than HITL_AUDIT_RETENTION
    WEBHOOK = "webhook"  # one decision-webhook delivery attempt and its outcome


# Audit events that mark a request turning final (what decision webhooks are sent for).
FINAL_EVENTS: frozenset[EventType] = frozenset(
    {EventType.DECIDED, EventType.EXPIRED, EventType.VETOED, EventType.FINALIZED, EventType.CANCELLED}
)


class WebhookOutcome(StrEnum):
    """How one webhook delivery attempt ended."""

    DELIVERED = "delivered"  # 2xx: done
    RETRYING = "retrying"  # connection error, timeout, 408, 429 or 5xx: tried again later
    GAVE_UP = "gave_up"  # another 4xx, or the retries ran out
