"""The vocabulary of a request's life: modes, statuses, verbs and risk levels.

All are `str` enums so they serialise to the plain strings users see in Redis, in Slack
and in the audit log.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """Where the human sits (the contract's risk matrix, `docs/contract.md`)."""

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


class Verb(StrEnum):
    """What a person can do to a request."""

    APPROVE = "approve"
    REJECT = "reject"
    VETO = "veto"
    CONFIRM = "confirm"  # override: "looks good", closes the window early


class SystemVerb(StrEnum):
    """What the product itself (a timer, the agent, the HTTP API) does to a request.

    Kept apart from `Verb` because no reviewer may send these through `decide()`; the
    store's transition takes either (`Transition`).
    """

    EXPIRE = "expire"  # a gate or shadow request's timeout ran out
    FINALIZE = "finalize"  # an override's veto window closed
    CANCEL = "cancel"  # the agent (or an API key) withdrew a pending request


# Everything `Store.transition` accepts: a person's verb or the system's.
Transition = Verb | SystemVerb


class ApproverSource(StrEnum):
    """Who named a request's approvers. Agent-named approvers only narrow who may decide:
    being named gives no say on its own (see `bot.access`)."""

    POLICY = "policy"  # the policy's approvers, or a subset the request narrowed them to
    AGENT = "agent"  # the policy names none; the agent named these


class Risk(StrEnum):
    """How much harm the action could do; the policy routes on it with `reversible`."""

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
    PAUSED = "paused"  # the kill switch turned on for a scope ("*" or an action)
    RESUMED = "resumed"  # the kill switch turned off again
    UNDELIVERABLE = "undeliverable"  # Slack refused a card for good (the error is recorded)
    CLEANED = "cleaned"  # maintenance removed a request left pending past deadline + retention
    TRIMMED = "trimmed"  # maintenance trimmed audit events older than HITL_AUDIT_RETENTION
    WEBHOOK = "webhook"  # one decision-webhook delivery attempt and its outcome
    EXECUTION_STARTED = "execution_started"  # an adapter is about to run the approved tool call
    EXECUTION_FINISHED = "execution_finished"  # ... and it returned (`ok` says whether it succeeded)
    OUTCOME_UNKNOWN = "outcome_unknown"  # a re-run found a start without a finish: not run again
    POLICY_APPLIED = "policy.applied"  # a new policy version was published (hitl.policystore)


# Audit events that mark a request turning final (what decision webhooks are sent for).
FINAL_EVENTS: frozenset[EventType] = frozenset(
    {EventType.DECIDED, EventType.EXPIRED, EventType.VETOED, EventType.FINALIZED, EventType.CANCELLED}
)


class ExecutionState(StrEnum):
    """Where the one tool call an approval allows stands (`hitl.executions`).

    A request is executed at most once: an adapter records STARTED before it runs the tool
    and FINISHED or FAILED after; a re-run that finds STARTED alone cannot know whether the
    tool ran, so it does not run it again and marks the request UNKNOWN.
    """

    STARTED = "started"
    FINISHED = "finished"  # the tool returned
    FAILED = "failed"  # the tool raised (it may have done part of its work)
    UNKNOWN = "unknown"  # started, then its process stopped before it finished

    @property
    def ran(self) -> bool:
        """Whether the call is known to have ended (so "outcome unknown" does not apply)."""
        return self in (ExecutionState.FINISHED, ExecutionState.FAILED)


class WebhookOutcome(StrEnum):
    """How one webhook delivery attempt ended."""

    DELIVERED = "delivered"  # 2xx: done
    RETRYING = "retrying"  # connection error, timeout, 408, 429 or 5xx: tried again later
    GAVE_UP = "gave_up"  # another 4xx, or the retries ran out
