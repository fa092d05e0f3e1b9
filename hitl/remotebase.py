"""What the sync and asyncio HTTP clients share: the calls, their answers, retries and polls.

An agent that holds only an API key talks to the web process (`/v1`, docs/contract.md)
instead of Redis: whoever holds Redis credentials is inside the trust boundary, an agent
is not. `hitl.remote.HttpApprovals` and `AsyncHttpApprovals` only do I/O; everything
decided before and after a round trip lives here once, the way httpx shares its
`BaseClient`: the request each call sends (`Call`), what its answer means (`answer`, which
maps the contract's status codes to the library's exceptions), whether and when to try
again (`Retries`: `Retry-After` on 429/503, back-off on connection errors, and only for
calls that are safe to repeat), and how a long wait is cut into long-polls (`Poll`).

Routing, policy and identity are the server's: the client never routes (the server does,
with the team's policy) and never names itself (`via` comes from the key).
"""

from __future__ import annotations

import enum
import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from hitl.clientbase import MAX_PLAN_ITEMS
from hitl.errors import (
    AlreadyDecided,
    ApiKeyRefused,
    ApiUnavailable,
    ConfigError,
    InvalidRequest,
    RateLimited,
    RequestNotFound,
    ReviewerOnly,
    TransitionRefused,
)
from hitl.masking import RESULT_CHARS, clip_json
from hitl.models import Request, RequestInput
from hitl.settings import Settings, api_base_url, load_settings
from hitl.status import Mode, Status
from hitl.views import EXPIRED_COMMENT

# Longest a single long-poll asks the server to hold (the contract allows 0 to 60 s; staying
# under a minute keeps clear of the idle timeouts of common proxies and load balancers).
MAX_POLL = 50.0
# How much longer than its long-poll the client waits for an answer before it gives up on one.
READ_MARGIN = 15.0
# Connect and ordinary read timeouts (seconds).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Retries of one call (a wait retries until its own deadline instead): back-off from
# BACKOFF_FIRST doubling to BACKOFF_MAX, with jitter; a Retry-After is honoured up to RETRY_AFTER_MAX.
MAX_ATTEMPTS = 6
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 5.0
RETRY_AFTER_MAX = 60.0

_USER_AGENT = "hitl-router-client"


class Execution(enum.StrEnum):
    """`POST /v1/requests/{id}/execution` states: the at-most-once record of a tool run."""

    STARTED = "started"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class Exchange:
    """How a call's final answer came: its status, and whether the call was sent more than
    once (an earlier attempt may have landed before its answer was lost)."""

    status: int
    resent: bool

    def created(self) -> bool | None:
        """For `POST /v1/requests`: True when this call filed the request (201), False when
        its idempotency key found an earlier one (200), None when a resend blurs the two."""
        return None if self.resent else self.status == 201


@dataclass(frozen=True)
class Call:
    """One round trip: the HTTP request, and what the client needs to read its answer.

    `request_id` names the request a 404 or 409 is about. `idempotent` says the call may be
    sent again after a connection broke mid-way (it cannot file or change anything twice);
    any call may be sent again when it never reached the server, or was refused with 429/503.
    `deadline` (monotonic) bounds a wait's retries instead of MAX_ATTEMPTS.
    """

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None
    idempotent: bool = False
    timeout: float = READ_TIMEOUT
    deadline: float | None = None
    endless: bool = False  # a wait with no timeout: retry a broken connection for as long as it takes

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        timeout = httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT)
        return http.build_request(self.method, self.path, json=self.body, params=self.params, timeout=timeout)


# -- what the client sends -------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """A request argument as JSON: seconds for a timedelta, an enum's value, lists for tuples."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_jsonable(v) for v in value]
    return value


def request_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`request()` arguments as the `POST /v1/requests` body, checked here first.

    The same `RequestInput` checks the server runs, so a typo is an `InvalidRequest` naming
    the field without a round trip. Routing and the policy stay on the server.
    """
    if "via" in fields:
        raise InvalidRequest("via", "is set by the server from your API key")
    RequestInput.parse(**fields)
    return {k: _jsonable(v) for k, v in fields.items() if v is not None}


def batch_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`request_batch()` arguments as the `POST /v1/batches` body (the server checks each step)."""
    if "via" in fields:
        raise InvalidRequest("via", "is set by the server from your API key")
    if fields.get("summary") is None:
        raise InvalidRequest("summary", "is required")
    items = fields.get("items")
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise InvalidRequest("items", "is required: a list of request() arguments, one per step")
    if not items:
        raise InvalidRequest("items", "a plan needs at least one item")
    if len(items) > MAX_PLAN_ITEMS:
        raise InvalidRequest("items", f"at most {MAX_PLAN_ITEMS:,} items in one plan; split it")
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"items.{n}", "must be a dict of request() arguments")
    body = {k: _jsonable(v) for k, v in fields.items() if v is not None and k != "mode"}
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("items", f"must be JSON-serialisable ({exc})") from None
    return body


def _path(request_id: str, tail: str = "") -> str:
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidRequest("id", "must be a request id such as the one request() returned")
    return f"/v1/requests/{quote(request_id.strip(), safe='')}{tail}"


# -- what the answers mean -------------------------------------------------------------------


def parse_time(text: str | None) -> float | None:
    """An ISO 8601 UTC time of the request view as epoch seconds."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def request_of(view: Mapping[str, Any]) -> Request:
    """The request view (docs/contract.md) as a `Request`.

    The view is what the API shows an agent: the fields it lacks (context, approvers, ...)
    keep their defaults. Its `decision` fills the live state, so `Request.decision()`
    answers as the Redis client's does (an expired request's explanatory comment is the
    view's, for other languages; here it is `None`, as in Redis).
    """
    status = Status(view["status"])
    decision = view.get("decision") or {}
    comment = decision.get("comment")
    if status is Status.EXPIRED and comment == EXPIRED_COMMENT:
        comment = None
    return Request(
        id=view["id"], action=view["action"], summary=view["summary"], params=view.get("params") or {},
        mode=Mode(view["mode"]), status=status, channel=view.get("channel"),
        created_at=parse_time(view.get("created_at")) or 0.0, deadline=parse_time(view.get("deadline")),
        by=list(decision.get("by") or []), comment=comment,
        decided_params=decision.get("params") if decision else None,
        decided_at=parse_time(decision.get("decided_at")), execution=view.get("execution"),
        grant=decision.get("grant"),
    )


def already_decided(view: Mapping[str, Any]) -> AlreadyDecided:
    """The `AlreadyDecided` a 409 stands for, from the request as it now is."""
    req = request_of(view)
    return AlreadyDecided(req.id, req.status, req.by)


def _error_of(resp: httpx.Response) -> tuple[str, str | None] | None:
    """The contract's `{"error", "field"}` body; None when the answer is not one (not our API)."""
    try:
        body = resp.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    fld = body.get("field")
    return body["error"], fld if isinstance(fld, str) else None


class Conflict(Exception):
    """A 409 on `call`: the client reads the request to say how it ended (`already_decided`),
    or, on an execution record, whether the call had already started (`execution_started`)."""

    def __init__(self, call: Call, message: str) -> None:
        self.call = call
        self.message = message
        super().__init__(message)


def execution_started(conflict: Conflict) -> bool:
    """Whether a 409 on `{"state": "started"}` says the tool call already started (the caller
    must not run it: False from `start_execution`), rather than that the request does not
    allow it to run at all (an error)."""
    return "already started" in conflict.message


def execution_refused(conflict: Conflict) -> TransitionRefused:
    """A refused execution record (not approved, or a finish without a start) as an error."""
    return TransitionRefused(conflict.call.request_id or "?", "execution", conflict.message)


def answer(call: Call, resp: httpx.Response, base_url: str) -> dict[str, Any]:
    """The JSON of a successful answer; any other answer as the library's exception.

    422 and 400 are `InvalidRequest` naming the field, 404 `RequestNotFound`, 409 `Conflict`
    (the caller turns it into `AlreadyDecided`, or `False` for an execution already started),
    401/403 `ApiKeyRefused`, 429 `RateLimited`, 5xx and anything unexpected `ApiUnavailable`.
    Retryable answers reach here only once the retries are spent.
    """
    if resp.is_success:
        body = resp.json()
        if not isinstance(body, dict):
            raise ApiUnavailable(f"{base_url}{call.path} answered {resp.status_code} with no JSON object")
        return body
    code = resp.status_code
    err = _error_of(resp)
    if err is None:
        if code == 404:
            raise ConfigError(
                f"HITL_API_URL: {base_url} has no hitl API at {call.path} (404); give the web process's "
                "base URL, without /v1, and make sure it runs this version of hitl-router"
            )
        raise ApiUnavailable(
            f"{base_url}{call.path} answered {code} ({resp.reason_phrase}); is it hitl's web process?"
        )
    message, fld = err
    if fld and message.startswith(f"{fld}: "):
        message = message[len(fld) + 2:]
    if code in (400, 413, 422):
        raise InvalidRequest(fld or "body", message)
    if code == 404:
        raise RequestNotFound(call.request_id or "?")
    if code == 409:
        raise Conflict(call, message)
    if code in (401, 403):
        raise ApiKeyRefused(code, message, fld)
    if code == 429:
        raise RateLimited(message, retry_after(resp))
    raise ApiUnavailable(f"the hitl API at {base_url} answered {code}: {message}")


def retry_after(resp: httpx.Response) -> float | None:
    """`Retry-After` in seconds (a number or an HTTP date), None if absent or unreadable."""
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            value = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(value, 0.0) if math.isfinite(value) else None


# -- when to try again -----------------------------------------------------------------------

# Broke before the request reached the server: nothing can have happened, any call may repeat.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Refused before anything was done (rate limit, "Redis is unreachable; nothing was recorded").
_REFUSED = frozenset({429, 503})
# May have reached the server: only an idempotent call repeats.
_MAYBE_DONE = frozenset({408, 502, 504})


class Retries:
    """Whether and when one `Call` is sent again.

    `after_response` and `after_error` answer the delay before the next attempt, or None
    (read the answer / raise the error). A wait (`Call.deadline`) keeps trying until its
    deadline, or for ever (`Call.endless`), so a restarting web process is waited out the
    way the Redis client waits out a Redis restart; any other call tries MAX_ATTEMPTS times.
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        self.attempt = 0

    def _delay(self, hint: float | None = None) -> float | None:
        self.attempt += 1
        endless = self.call.endless or self.call.deadline is not None
        if not endless and self.attempt >= MAX_ATTEMPTS:
            return None
        backoff = min(BACKOFF_FIRST * 2 ** (self.attempt - 1), BACKOFF_MAX) * random.uniform(0.5, 1.0)
        delay = min(hint, RETRY_AFTER_MAX) if hint is not None else backoff
        if self.call.deadline is not None and time.monotonic() + delay > self.call.deadline:
            return None
        return delay

    def after_response(self, resp: httpx.Response) -> float | None:
        code = resp.status_code
        if code in _REFUSED or (code in _MAYBE_DONE and self.call.idempotent):
            return self._delay(retry_after(resp))
        return None

    def after_error(self, exc: httpx.TransportError) -> float | None:
        if isinstance(exc, _NOT_SENT) or self.call.idempotent:
            return self._delay()
        return None


def unreachable(base_url: str, call: Call, exc: httpx.TransportError) -> ApiUnavailable:
    what = "nothing was sent" if isinstance(exc, _NOT_SENT) else "the answer was lost"
    again = "" if call.idempotent or isinstance(exc, _NOT_SENT) else (
        "; it may have been recorded: retry with the same idempotency_key to get the same request"
    )
    detail = f"{type(exc).__name__}: {exc or 'no detail'}"
    return ApiUnavailable(f"the hitl API at {base_url} did not answer ({detail}); {what}{again}")


# -- long waits ------------------------------------------------------------------------------


class Poll:
    """A `wait(timeout)` cut into long-polls of at most MAX_POLL seconds each."""

    def __init__(self, request_id: str, timeout: float | None) -> None:
        self.request_id = request_id
        self.timeout = timeout
        self.end = None if timeout is None else time.monotonic() + timeout

    def call(self) -> Call:
        """The next `GET /v1/requests/{id}?wait=S`, S up to what is left of the timeout."""
        left = MAX_POLL if self.end is None else min(max(self.end - time.monotonic(), 0.0), MAX_POLL)
        return Call(
            "GET", _path(self.request_id), params={"wait": f"{left:.3f}"}, request_id=self.request_id,
            idempotent=True, timeout=left + READ_MARGIN, deadline=self.end, endless=self.end is None,
        )

    def over(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


# -- configuration ---------------------------------------------------------------------------


def use_http(
    api_url: str | None, settings: Settings | None, *, redis_url: str | None, client: object | None
) -> bool:
    """Whether `Approvals(...)` / `AsyncApprovals(...)` talk HTTP rather than Redis.

    An explicit `api_url` means HTTP, an explicit `redis_url` or Redis `client` means Redis
    (both at once is a `ConfigError`); otherwise HITL_API_URL decides, and wins over
    REDIS_URL: an agent given an API URL never opens a Redis connection.
    """
    if api_url is not None:
        if redis_url is not None or client is not None:
            raise ConfigError(
                "api_url: give either api_url (HTTP, an agent's key) or a Redis URL/client, not both"
            )
        return True
    if redis_url is not None or client is not None:
        return False
    return (settings or load_settings()).api_url is not None


class BaseHttpApprovals:
    """Configuration and every step of a call but the I/O; subclasses only send and sleep."""

    def __init__(self, api_url: str | None, api_key: str | None, settings: Settings | None) -> None:
        self.settings = settings or load_settings()
        if api_url is not None:
            # The same checks as HITL_API_URL, naming the argument.
            try:
                api_url = api_base_url(api_url)
            except ValueError as exc:
                raise ConfigError(f"api_url: {exc}") from None
        url = api_url or self.settings.api_url
        if url is None:
            raise ConfigError("HITL_API_URL: is required for the HTTP client (the web process's base URL)")
        key = api_key or self.settings.secret("api_key")
        if not key:
            raise ConfigError(
                "HITL_API_KEY: is required with HITL_API_URL (an API key the web process knows, from "
                "HITL_API_KEYS or `hitl keys create`)"
            )
        self.base_url = url
        self.api_key = key
        self._headers = {"Authorization": f"Bearer {key}", "User-Agent": _USER_AGENT}

    def __repr__(self) -> str:  # never the key
        return f"<{type(self).__name__} {self.base_url}>"

    # The calls, by client method.
    @staticmethod
    def create_call(fields: Mapping[str, Any], via: str | None) -> Call:
        body = request_body({**fields, **({"via": via} if via is not None else {})})
        # The same idempotency key gets the same request: such a filing may safely be repeated.
        return Call("POST", "/v1/requests", body, idempotent=body.get("idempotency_key") is not None)

    @staticmethod
    def batch_call(fields: Mapping[str, Any], via: str | None) -> Call:
        body = batch_body({**fields, **({"via": via} if via is not None else {})})
        return Call("POST", "/v1/batches", body, idempotent=body.get("idempotency_key") is not None)

    @staticmethod
    def read_call(request_id: str) -> Call:
        return Call("GET", _path(request_id), request_id=request_id, idempotent=True)

    @staticmethod
    def cancel_call(request_id: str, by: str | None) -> Call:
        if by is not None:
            raise InvalidRequest("by", "is set by the server from your API key")
        return Call("POST", _path(request_id, "/cancel"), {}, request_id=request_id)

    @staticmethod
    def execution_call(request_id: str, state: Execution, ok: bool = True, result: Any = None) -> Call:
        body: dict[str, Any] = {"state": state.value}
        if state is Execution.FINISHED:
            body["ok"] = ok
            if result is not None:  # clipped here so a big result fits any body limit; the server masks
                body["result"] = clip_json(result, RESULT_CHARS)
        # Not repeated once it may have landed: a second "started" would read as a start that
        # never finished (outcome unknown), and a lost answer already keeps the tool from running.
        return Call("POST", _path(request_id, "/execution"), body, request_id=request_id)

    @staticmethod
    def refuse_decide() -> ReviewerOnly:
        return ReviewerOnly(
            "decide() is not available over HTTP: agents file requests and wait, reviewers decide in "
            "Slack. The HTTP client holds an agent's API key, which can never approve a request"
        )

    @staticmethod
    def filed(view: Mapping[str, Any]) -> tuple[str, Mode]:
        return view["id"], Mode(view["mode"])

    @staticmethod
    def plan_filed(body: Mapping[str, Any]) -> tuple[str, Mode, list[str]]:
        return body["id"], Mode(body["plan"]["mode"]), [item["id"] for item in body["items"]]

    @staticmethod
    def started(body: Mapping[str, Any]) -> bool:
        return bool(body.get("started", True))

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url, "headers": self._headers,
            "timeout": httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            # The key goes only where it was configured to go.
            "follow_redirects": False,
        }

    @staticmethod
    def remaining(end: float | None) -> float | None:
        return None if end is None else max(end - time.monotonic(), 0.001)


__all__ = [
    "MAX_POLL", "BaseHttpApprovals", "Call", "Conflict", "Execution", "Poll", "Retries", "already_decided",
    "answer", "batch_body", "execution_refused", "execution_started", "parse_time", "request_body",
    "request_of", "retry_after", "unreachable", "use_http",
]
