"""What the sync and asyncio clients share: validation, routing and plan assembly.

`Approvals` and `AsyncApprovals` (`hitl.client`) differ only in how they talk to Redis.
Everything decided before a byte is written lives here, once: the stored document of a
request (`build_doc`), of a plan and its steps (`build_plan`), the checks on a decision
(`check_decision`) and what `require_approval` does around the gated call (`Gate`).
The product contract these follow is `docs/contract.md`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from hitl import waiters, webhookurl
from hitl.errors import InvalidRequest
from hitl.fields import check_keywords
from hitl.ids import new_id
from hitl.keys import Keys
from hitl.models import Decision, Rejected, Request, RequestInput, check_comment, check_params
from hitl.people import Directory, default_directory, resolve_requester
from hitl.policy import route
from hitl.policystore import PolicyInForce
from hitl.settings import Settings, load_settings
from hitl.slackids import is_email
from hitl.status import Mode, Verb

# Most items one plan (request_batch) may hold.
MAX_PLAN_ITEMS = 1_000


def build_doc(
    settings: Settings, policy: PolicyInForce, *, directory: Directory | None = None, **fields: Any
) -> dict[str, Any]:
    """Validate an agent's arguments and route them with the published policy: the `doc`.

    `fields` are `request()`'s arguments by name, as given (a JSON body's keys too: an
    unknown name is an `InvalidRequest` naming it). `directory` resolves an email given as
    `requested_by` to a Slack user id (by default Slack's `users.lookupByEmail`, called
    only when an email is given).

    The routing here gives friendly errors before anything is sent; the CREATE script
    routes `asked` (the agent's own routing arguments) again with the policy in force, and
    its answer replaces these routed fields when the request is stored.
    """
    req = RequestInput.parse(**fields)
    check_callback(settings, req.callback_url)
    r = route(req, policy.policy, settings.default_channel)
    requested_by = resolve_requester(req.requested_by, directory or default_directory(settings))
    return {
        "id": new_id(),
        "action": req.action,
        "summary": req.summary,
        "params": req.params,
        "context": req.context,
        "agent": req.agent,
        "run_id": req.run_id,
        "risk": req.risk.value if req.risk else None,
        "reversible": req.reversible,
        "confidence": req.confidence,
        "mode": r.mode.value,
        "urgent": r.urgent,
        "low_confidence": r.low_confidence,
        "channel": r.channel,
        "mirror_channels": r.mirror_channels,
        "approvers": r.approvers,
        "approvers_from": r.approvers_from.value if r.approvers_from else None,
        "requested_by": requested_by,
        "quorum": r.quorum,
        "timeout": r.timeout,
        "window": r.window,
        "escalation": [s.model_dump() for s in r.escalation],
        "idempotency_key": req.idempotency_key,
        "callback_url": req.callback_url,
        "via": None,
        "batch": None,
        "items": [],
        "policy_version": policy.version,
        # What the agent asked of routing, for CREATE to route (only ever adding oversight).
        "asked": {
            "mode": req.mode.value if req.mode else None, "channel": req.channel, "approvers": req.approvers,
            "quorum": req.quorum, "timeout": req.timeout, "window": req.window,
        },
    }


def check_callback(settings: Settings, url: str | None) -> str | None:
    """A `callback_url` must be under an allowed destination, compared part by part
    (`hitl.webhookurl`): agents cannot aim the worker at arbitrary hosts, ports or paths
    (server-side request forgery). Returns the normalised URL, the one the worker sends to."""
    if url is None:
        return None
    try:
        return webhookurl.check(url, settings.webhook_allowed).text
    except webhookurl.BadWebhookUrl as exc:
        raise InvalidRequest("callback_url", f"{url!r} is refused: {exc}") from None


def check_decision(verb: Verb | str, params: Mapping[str, Any] | None, comment: str | None = None) -> Verb:
    """Validate a decision's arguments before anything is written; errors name the field.

    `verb` may be a `Verb` or its string (the bot and the HTTP API read strings off the
    wire); anything else is an `InvalidRequest` naming `verb`.
    """
    try:
        v = Verb(verb)
    except ValueError:
        choices = ", ".join(v.value for v in Verb)
        raise InvalidRequest("verb", f"{verb!r} is not one of {choices}") from None
    check_comment(comment)
    if params is not None:
        if v is not Verb.APPROVE:
            raise InvalidRequest("params", "edited parameters go with an approval only")
        check_params(params)
    return v


def build_plan(
    settings: Settings, policy: PolicyInForce, summary: str, items: Sequence[Mapping[str, Any]], action: str,
    common: Mapping[str, Any], *, via: str | None = None, directory: Directory | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stored documents of a plan and its steps (`request_batch`'s arguments validated).

    Every step waits for review with the plan's channel and deadline (CREATE sees to that). The plan's
    idempotency key K gives step n the key "K/n", so the key covers each step too.
    """
    if not items:
        raise InvalidRequest("items", "a plan needs at least one item")
    if len(items) > MAX_PLAN_ITEMS:
        raise InvalidRequest("items", f"at most {MAX_PLAN_ITEMS:,} items in one plan; split it")
    shared = {k: v for k, v in common.items() if k != "mode"}
    key = shared.pop("idempotency_key", None)
    plan = build_doc(
        settings, policy, directory=directory, action=action, summary=summary, params={"items": len(items)},
        mode=Mode.GATE, idempotency_key=key, **shared,
    )
    steps = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"items.{n}", "must be a dict of request() arguments")
        if item.get("idempotency_key") is not None:
            raise InvalidRequest(
                f"items.{n}.idempotency_key",
                "give request_batch one idempotency_key; each step's is derived from it",
            )
        step_key = None if key is None else f"{key}/{n}"
        try:
            args = {**shared, **item, "mode": Mode.GATE, "idempotency_key": step_key}
            doc = build_doc(settings, policy, directory=directory, **args)
        except InvalidRequest as exc:
            raise InvalidRequest(f"items.{n}.{exc.field}", str(exc).split(": ", 1)[1]) from None
        doc.update(batch=plan["id"], escalation=[], channel=plan["channel"], timeout=plan["timeout"], via=via)
        steps.append(doc)
    plan["items"] = [d["id"] for d in steps]
    plan["via"] = via
    return plan, steps


def seconds(timeout: float | timedelta | None) -> float | None:
    """A wait's timeout in seconds (callers may give a `timedelta`)."""
    return timeout.total_seconds() if isinstance(timeout, timedelta) else timeout


def arguments(method: str, fields: Mapping[str, Any], declared: type, **named: Any) -> dict[str, Any]:
    """A typed method's arguments as the mapping `build_doc` validates: its named ones, and
    its ``**fields`` once every key is one `declared` (a `hitl.fields` TypedDict) names.

    The signatures take ``**fields: Unpack[...]`` so a type checker sees every field; at
    run time an unknown keyword is still Python's TypeError naming it (`check_keywords`).
    """
    check_keywords(method, fields, declared)
    return {**named, **fields}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class _Handle(Protocol):
    mode: Mode

    def wait(self) -> Decision: ...
    def decision(self) -> Decision: ...


class _AsyncHandle(Protocol):
    mode: Mode

    async def wait(self) -> Decision: ...
    async def decision(self) -> Decision: ...


@dataclass(frozen=True)
class Gate:
    """What `require_approval` does around one gated function.

    `prepare` turns a call into the request to file (its JSON-serialisable arguments become
    `params`; `summary` may use `{name}` placeholders for them); `finish` raises
    `hitl.Rejected` unless approved, and puts a reviewer's edited values into the call.
    `call` and `acall` run the whole sequence with the client's `request_from` as `file`:
    only a gate waits; in any other mode the function runs at once.
    """

    func: Callable[..., Any]
    action: str | None
    summary: str | None
    fields: Mapping[str, Any]

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[inspect.BoundArguments, dict]:
        bound = inspect.signature(self.func).bind(*args, **kwargs)
        bound.apply_defaults()
        name = self.action or self.func.__name__
        params = {k: v for k, v in bound.arguments.items() if _jsonable(v)}
        text = (self.summary or f"Run {name}").format(**bound.arguments)
        return bound, {**self.fields, "action": name, "summary": text, "params": params}

    @staticmethod
    def finish(bound: inspect.BoundArguments, decision: Decision) -> inspect.BoundArguments:
        if not decision.approved:
            raise Rejected(decision)
        for key, value in decision.params.items():
            if key in bound.arguments:
                bound.arguments[key] = value
        return bound

    def call(
        self, file: Callable[[dict[str, Any]], _Handle], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        bound, req = self.prepare(args, kwargs)
        handle = file(req)
        decision = handle.wait() if handle.mode is Mode.GATE else handle.decision()
        bound = self.finish(bound, decision)
        return self.func(*bound.args, **bound.kwargs)

    async def acall(
        self,
        file: Callable[[dict[str, Any]], Awaitable[_AsyncHandle]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        bound, req = self.prepare(args, kwargs)
        handle = await file(req)
        decision = await (handle.wait() if handle.mode is Mode.GATE else handle.decision())
        bound = self.finish(bound, decision)
        return await self.func(*bound.args, **bound.kwargs)


class BaseApprovals:
    """Configuration and every pre-I/O step of a client; subclasses only talk to Redis.

    Holds the settings, key names, policy and people directory, and turns arguments into
    the documents the store writes. Methods here never touch the network, except that an
    email in `requested_by` is resolved through `directory` (see `needs_lookup`).
    """

    def __init__(
        self,
        redis_url: str | None,
        settings: Settings | None,
        prefix: str | None,
        directory: Directory | None,
    ) -> None:
        self.settings = settings or load_settings()
        self.directory = directory
        self.url = redis_url or self.settings.redis
        self.keys = Keys(prefix or self.settings.prefix)
        # The process's own HITL_POLICY_FILE plays no part here: requests are routed by the
        # published policy (`hitl.policystore`), read by the subclasses from Redis.

    def build(
        self, fields: Mapping[str, Any], *, policy: PolicyInForce, via: str | None = None
    ) -> dict[str, Any]:
        """The document for `request()` arguments given by name (validated, routed with the
        published `policy`)."""
        doc = build_doc(self.settings, policy, directory=self.directory, **fields)
        doc["via"] = via
        return doc

    def build_batch(
        self, fields: Mapping[str, Any], *, policy: PolicyInForce, via: str | None = None
    ) -> tuple[dict, list[dict]]:
        """The stored plan and steps for `request_batch()` arguments given by name.

        `fields` holds `summary`, `items`, optionally `action` (default "plan"), and any
        `request()` argument the plan shares with its steps; an unknown name is an
        `InvalidRequest` naming it.
        """
        rest = dict(fields)
        summary, items = rest.pop("summary", None), rest.pop("items", None)
        action = rest.pop("action", "plan")
        if summary is None:
            raise InvalidRequest("summary", "is required")
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise InvalidRequest("items", "is required: a list of request() arguments, one per step")
        return build_plan(
            self.settings, policy, summary, items, action, rest, via=via, directory=self.directory
        )

    @staticmethod
    def plan_ids(
        plan: Mapping[str, Any], steps: Sequence[Mapping[str, Any]], existing: Request | None
    ) -> tuple[str, Mode, list[str]]:
        """The plan's id and mode and its steps' ids: as filed, or the plan an idempotency
        key found (`Store.create_plan`'s answer)."""
        if existing is None:
            return plan["id"], Mode.GATE, [d["id"] for d in steps]
        return existing.id, existing.mode, list(existing.items)

    @staticmethod
    def decision_args(
        verb: Verb | str, params: Mapping[str, Any] | None, comment: str | None
    ) -> tuple[Verb, dict[str, Any] | None]:
        """`decide()`'s verb and edited params, checked (`check_decision`) for the store."""
        return check_decision(verb, params, comment), None if params is None else dict(params)

    def dispatcher(self) -> waiters.Dispatcher:
        """The dispatcher this client's waits go through (diagnostics, tests)."""
        return waiters.dispatcher(self.url, self.keys.prefix)

    @staticmethod
    def needs_lookup(fields: Mapping[str, Any]) -> bool:
        """Whether building `fields` may call Slack (an email as `requested_by`, here or in
        any plan step): the asyncio client then builds off the event loop."""
        items = fields.get("items")
        steps = items if isinstance(items, Sequence) and not isinstance(items, str) else ()
        return is_email(fields.get("requested_by")) or any(
            isinstance(s, Mapping) and is_email(s.get("requested_by")) for s in steps
        )

    @staticmethod
    def gate(
        func: Callable[..., Any], action: str | None, summary: str | None, fields: Mapping[str, Any]
    ) -> Gate:
        """The `Gate` for `require_approval(action, summary, **fields)` around `func`."""
        return Gate(func, action, summary, {k: v for k, v in fields.items() if v is not None})
