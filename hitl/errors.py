"""One exception hierarchy for everything `hitl` raises.

Agent code catches `HitlError` once; callers that need to tell cases apart catch the
subclasses. Every message is written for a person: it names the field, the request or the
setting at fault and says what to do about it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hitl.status import Status


class HitlError(Exception):
    """Base class of every error raised by hitl-router."""


class ConfigError(HitlError):
    """A setting is missing or malformed; the message names the variable."""


class InvalidRequest(HitlError, ValueError):
    """A request's arguments are invalid; `field` names the offending argument."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class IdempotencyConflict(InvalidRequest):
    """An idempotency key already belongs to a request with another action, summary or params.

    The key is refused rather than answered with that request: an agent must never get back
    a decision about something else. `request_id` is the request holding the key.
    """

    def __init__(self, key: str, request_id: str, action: str = "") -> None:
        self.key = key
        self.request_id = request_id
        what = f" ({action})" if action else ""
        super().__init__(
            "idempotency_key",
            f"{key!r} already belongs to request {request_id}{what}, filed with a different action, "
            "summary or params; use a new key for a different request",
        )


class RequestNotFound(HitlError, LookupError):
    """No request with that id exists (or it has aged out of Redis)."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"no request with id {request_id!r}")


class TransitionRefused(HitlError):
    """A decision was refused; nothing changed. `reason` is a short machine-readable code.

    Subclasses tell a reviewer (or an agent) why: the request is already final, the person
    may not decide it, or the card they clicked is out of date.
    """

    def __init__(self, request_id: str, reason: str, message: str) -> None:
        self.request_id = request_id
        self.reason = reason
        super().__init__(message)


class AlreadyDecided(TransitionRefused):
    """The request reached a final state before this decision; the first decision stands."""

    def __init__(self, request_id: str, status: Status | str, by: list[str]) -> None:
        self.status = Status(status)
        self.by = by
        who = f" by {', '.join(by)}" if by else ""
        super().__init__(request_id, "final", f"request {request_id} is already {status}{who}")


class DeadlinePassed(TransitionRefused):
    """The decision came after the request's deadline (or an override's window): the request
    is now expired (or finalized) and the decision was not recorded."""

    def __init__(self, request_id: str, status: Status | str, deadline: float) -> None:
        self.status = Status(status)
        self.deadline = deadline
        when = datetime.fromtimestamp(deadline, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        if self.status is Status.FINALIZED:
            message = f"the veto window of request {request_id} ended at {when}; the veto was not recorded"
        else:
            message = f"request {request_id} expired at {when}; the decision was not recorded"
        super().__init__(request_id, "expired", message)


class NotAllowed(TransitionRefused):
    """The person may not take this decision (not an approver, the requester, already voted)."""


class ExecutionRefused(TransitionRefused):
    """An execution record was refused: the request does not allow the tool to run, its call
    already started (`reason` "started"), or a finish came without a start."""


class StaleVersion(TransitionRefused):
    """The request changed (for example its parameters were edited) since the card was drawn."""


class WaitTimeout(HitlError, TimeoutError):
    """`wait(timeout=...)` ran out before the request reached a final state."""

    def __init__(self, request_id: str, timeout: float) -> None:
        self.request_id = request_id
        super().__init__(f"request {request_id} still undecided after {timeout:g}s")


# -- the HTTP transport (hitl.remote): what the web process answered ---------------------------


class ApiKeyRefused(HitlError, PermissionError):
    """The web process refused the API key (401) or what the key asked for (403).

    `status` is the HTTP status and `field` what the server named (`Authorization`,
    `action`, ...). The message says what to fix: the key itself, or its permissions.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status = status
        self.field = field
        if status == 401:
            hint = "set HITL_API_KEY (or api_key=) to a key the server knows (HITL_API_KEYS on the server)"
        else:
            hint = "the key is valid but may not do this; ask an operator to widen what the key allows"
        super().__init__(f"the hitl API refused the request ({status}): {message}; {hint}")


class RateLimited(HitlError):
    """The web process kept answering 429 (too many requests) past the retries the client makes.

    `retry_after` is the server's last `Retry-After`, in seconds (None if it gave none).
    """

    def __init__(self, message: str, retry_after: float | None) -> None:
        self.retry_after = retry_after
        when = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        super().__init__(f"the hitl API is rate limiting this key: {message}{when}")


class ApiUnavailable(HitlError, ConnectionError):
    """The web process could not be reached, or answered 5xx, past the client's retries.

    Nothing is known to have been recorded: retry with the same `idempotency_key`.
    """


class ReviewerOnly(HitlError, PermissionError):
    """A decision was asked of an agent's client: agents file and wait, reviewers decide in Slack.

    The HTTP transport holds an agent's API key, which can never approve its own requests.
    """
