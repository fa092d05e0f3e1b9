"""The sync and asyncio clients are twins: the same methods with the same arguments, the
same decorator, the same verbs and the same cancel, against a real Redis. A request's fields
are declared once (`hitl.fields`) and reach every client, the checks, MCP and OpenAPI."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import time
import typing
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bot.gateway import openapi
from bot.gateway.mcp import build_server
from hitl import (
    AlreadyDecided,
    Approvals,
    AsyncApprovals,
    AsyncBatchHandle,
    AsyncRequestHandle,
    BatchHandle,
    InvalidRequest,
    Rejected,
    RequestHandle,
    Status,
    Verb,
    waiters,
)
from hitl.fields import FIELD_DOCS, REQUIRED, GateFields, PlanFields, RequestFields, names
from hitl.models import RequestInput
from hitl.remote import AsyncHttpApprovals, HttpApprovals
from hitl.settings import Settings
from hitl.status import EventType
from tests.helpers import ROOT, events

# Lifecycle methods that differ by design: closing, and hopping from sync to asyncio.
_OWN = {Approvals: {"close", "asyncio"}, AsyncApprovals: {"aclose"}}

TWINS = [
    (Approvals, AsyncApprovals),
    (RequestHandle, AsyncRequestHandle),
    (BatchHandle, AsyncBatchHandle),
]


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    own = _OWN.get(cls, set())
    return {
        name: member for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in own
    }


def _params(func: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    sig = inspect.signature(func)
    return [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values()]


@pytest.mark.parametrize(("sync", "aio"), TWINS, ids=lambda c: c.__name__)
def test_sync_and_async_offer_the_same_methods_with_the_same_arguments(sync: type, aio: type) -> None:
    ours, theirs = _public(sync), _public(aio)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert _params(ours[name]) == _params(theirs[name]), name


def test_both_clients_offer_the_whole_surface() -> None:
    surface = {"request", "request_batch", "get", "decide", "cancel", "require_approval", "wait_request"}
    assert surface <= _public(Approvals).keys()
    assert {"status", "fetch", "decision", "wait", "cancel"} <= _public(RequestHandle).keys()
    # The asyncio twin's own methods (its I/O) are awaited, but for the decorator factory;
    # what both inherit from the base does no I/O.
    for name, func in _public(AsyncApprovals).items():
        if name in vars(AsyncApprovals):
            assert inspect.iscoroutinefunction(func) is (name != "require_approval"), name


# -- one declaration of the request's fields (hitl.fields) -----------------------------------

CLIENTS = (Approvals, AsyncApprovals, HttpApprovals, AsyncHttpApprovals)
# The TypedDict each method takes as **fields.
TAKES = {"request": RequestFields, "request_batch": PlanFields, "require_approval": GateFields}

# One value for every declared field (a new field needs one here: the test below then shows
# it reaches every surface).
EVERY_FIELD: dict[str, Any] = {
    "params": {"to": "ops@example.com"}, "context": "because", "agent": "bot", "run_id": "run-1",
    "risk": "high", "reversible": False, "confidence": 0.9, "mode": "gate", "channel": "#ops",
    "approvers": ["U0APPROVER", "U0SECOND"], "requested_by": "U0REQUESTER", "quorum": 2, "timeout": 600.0,
    "window": 60.0, "idempotency_key": "every-field", "callback_url": "https://hooks.example/hitl",
}
ALL = {*REQUIRED, *names(RequestFields)}


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", sorted(TAKES))
def test_each_client_method_takes_its_fields_from_the_one_declaration(cls: type, method: str) -> None:
    """Named arguments are keyword-only (or the positional few) and typed; the rest is
    ``**fields: Unpack[<hitl.fields TypedDict>]``, so a type checker sees every field."""
    func = getattr(cls, method)
    params = list(inspect.signature(func).parameters.values())[1:]
    *named, rest = params
    assert rest.kind is inspect.Parameter.VAR_KEYWORD and rest.name == "fields"
    assert typing.get_type_hints(func)["fields"] == typing.Unpack[TAKES[method]]
    assert all(p.annotation is not inspect.Parameter.empty for p in named)
    if method == "request":
        assert [(p.name, p.kind) for p in named] == [
            (n, inspect.Parameter.KEYWORD_ONLY) for n in ("action", "summary", "via")
        ]


def test_the_declarations_nest_and_the_docstring_names_every_field() -> None:
    assert names(GateFields) < names(PlanFields) < names(RequestFields)
    assert names(RequestFields) - names(PlanFields) == {"params"}  # a plan's params are its items
    doc = Approvals.request.__doc__ or ""
    assert "Args:" in doc
    for name in ALL:
        assert f"\n            {name}: " in doc, name  # request()'s Args section documents it
        assert FIELD_DOCS.get(name), name  # and the schemas describe it


def test_a_field_declared_once_reaches_every_surface(approvals: Approvals) -> None:
    """The declaration's keys are RequestInput's fields, the MCP tool's arguments, the
    OpenAPI request body's properties, and what each client files or sends."""
    assert EVERY_FIELD.keys() == names(RequestFields)
    assert set(RequestInput.model_fields) == ALL
    server, _tools = build_server(approvals.settings)
    (tool,) = [t for t in asyncio.run(server.list_tools()) if t.name == "request_approval"]
    assert set(tool.input_schema["properties"]) == ALL | {"wait_seconds"}
    assert set(tool.input_schema["required"]) == set(REQUIRED)
    assert all(tool.input_schema["properties"][n].get("description") for n in ALL)
    schemas = openapi.spec()["components"]["schemas"]
    assert set(schemas["RequestInput"]["properties"]) == ALL
    assert set(schemas["BatchInput"]["properties"]) == names(PlanFields) | {"summary", "items", "action"}

    # The Redis clients file every field (RequestInput checks each one; unknown ones are refused).
    allowed = approvals.settings.model_copy(update={"webhook_allowed": ["https://hooks.example/"]})
    with Approvals(settings=allowed, client=approvals.redis) as sync:
        stored = sync.request(action="a", summary="s", **EVERY_FIELD).fetch()
    assert {n: getattr(stored, n) for n in ("params", "context", "agent", "run_id", "risk", "requested_by",
                                            "idempotency_key", "callback_url")} == {
        n: EVERY_FIELD[n] for n in ("params", "context", "agent", "run_id", "risk", "requested_by",
                                    "idempotency_key", "callback_url")
    }

    async def filed_async() -> str:
        async with AsyncApprovals(settings=allowed) as aio:
            every = {**EVERY_FIELD, "idempotency_key": "every-field-async"}
            return (await aio.request(action="a", summary="s", **every)).id

    assert approvals.fetch(asyncio.run(filed_async())).run_id == "run-1"

    # The HTTP clients send every field.
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "r1", "mode": "gate"})

    with HttpApprovals(api_url="http://hitl.example", api_key="k", transport=httpx.MockTransport(answer)) as h:
        h.request(action="a", summary="s", **EVERY_FIELD)

    async def sent_async() -> None:
        async def answer_async(request: httpx.Request) -> httpx.Response:
            return answer(request)

        transport = httpx.MockTransport(answer_async)
        async with AsyncHttpApprovals(api_url="http://hitl.example", api_key="k", transport=transport) as h:
            await h.request(action="a", summary="s", **EVERY_FIELD)

    asyncio.run(sent_async())
    assert [set(body) for body in sent] == [ALL, ALL]


@pytest.mark.parametrize("cls", CLIENTS, ids=lambda c: c.__name__)
def test_an_unknown_keyword_is_pythons_type_error_naming_it(cls: type) -> None:
    """``**fields`` accepts any name at run time: each method refuses one its declaration
    lacks before doing anything, as a spelt-out signature would."""
    client = object.__new__(cls)  # nothing is configured: the refusal comes first
    calls = {
        "request": lambda: client.request(action="a", summary="s", timeoutt=3),
        "request_batch": lambda: client.request_batch("s", [{"action": "a", "summary": "s"}], params={}),
        "require_approval": lambda: client.require_approval(idempotency_key="k"),
    }
    for method, call in calls.items():
        with pytest.raises(TypeError, match=f"^{method}\\(\\) got an unexpected keyword argument"):
            result = call()
            if inspect.iscoroutine(result):
                asyncio.run(result)


def test_a_type_checker_flags_a_misspelt_or_mistyped_field() -> None:
    """mypy on tests/typing/request_calls.py: an error on exactly the lines marked ``# error``
    (a misspelt keyword, a wrong type, a field the method does not take), none elsewhere."""
    case = ROOT / "tests" / "typing" / "request_calls.py"
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context", str(case.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    flagged = {
        int(line.split(":")[1]) for line in run.stdout.splitlines() if ": error:" in line
    }
    marked = {n for n, line in enumerate(case.read_text().splitlines(), 1) if line.endswith("# error")}
    assert marked and flagged == marked, run.stdout + run.stderr


# -- the asyncio decorator ---------------------------------------------------------------


async def _one_waiting(aio: AsyncApprovals, timeout: float = 10.0) -> str:
    """The id of the request a gated call is waiting on, once its wait is registered."""
    end = time.monotonic() + timeout
    while not (ids := list(aio.dispatcher().registered())):
        if time.monotonic() > end:
            raise AssertionError(f"no wait registered after {timeout}s")
        await asyncio.sleep(0.01)
    return ids[0]


def test_async_require_approval_runs_the_coroutine_with_edited_params(settings: Settings) -> None:
    async def scenario() -> tuple[str, list[int], str]:
        async with AsyncApprovals(settings=settings) as aio:
            calls: list[int] = []

            @aio.require_approval(action="send_email", summary="Email {count} customers", timeout=30)
            async def send(count: int) -> str:
                calls.append(count)
                return "sent"

            running = asyncio.create_task(send(200))
            rid = await _one_waiting(aio)
            summary = (await (await aio.get(rid)).fetch()).summary
            await aio.decide(rid, Verb.APPROVE, by="U01", params={"count": 20})
            return await asyncio.wait_for(running, 10), calls, summary

    assert asyncio.run(scenario()) == ("sent", [20], "Email 200 customers")


def test_async_require_approval_raises_rejected_with_the_reason(settings: Settings) -> None:
    async def scenario() -> Rejected:
        async with AsyncApprovals(settings=settings) as aio:

            @aio.require_approval(action="delete_record")
            async def delete(record: int) -> None:
                raise AssertionError("must not run")

            running = asyncio.create_task(delete(42))
            rid = await _one_waiting(aio)
            await aio.decide(rid, "reject", by="U01", comment="wrong id")
            with pytest.raises(Rejected) as info:
                await asyncio.wait_for(running, 10)
            return info.value

    rejected = asyncio.run(scenario())
    assert rejected.reason == "wrong id"
    assert "rejected by U01: wrong id" in str(rejected)


def test_async_require_approval_refuses_a_plain_function(settings: Settings) -> None:
    async def scenario() -> None:
        async with AsyncApprovals(settings=settings) as aio:
            with pytest.raises(TypeError, match="coroutine functions; send is not"):

                @aio.require_approval()
                def send() -> None: ...

    asyncio.run(scenario())


def test_async_require_approval_acts_at_once_outside_gate(settings: Settings) -> None:
    async def scenario() -> list[str]:
        async with AsyncApprovals(settings=settings) as aio:
            ran: list[str] = []

            @aio.require_approval(action="log_line", mode="auto")
            async def log_line(text: str) -> None:
                ran.append(text)

            await asyncio.wait_for(log_line("hello"), 10)
            return ran

    assert asyncio.run(scenario()) == ["hello"]


# -- verbs ---------------------------------------------------------------------------------


def test_decide_with_a_bad_verb_names_verb_on_both_clients(approvals: Approvals, settings: Settings) -> None:
    req = approvals.request(action="a", summary="s")
    with pytest.raises(InvalidRequest) as info:
        approvals.decide(req.id, "approved", by="U01")
    assert info.value.field == "verb"
    assert "'approved' is not one of approve, reject, veto, confirm" in str(info.value)

    async def scenario() -> InvalidRequest:
        async with AsyncApprovals(settings=settings) as aio:
            with pytest.raises(InvalidRequest) as caught:
                await aio.decide(req.id, "expire", by="U01")  # a system verb is no person's to send
            return caught.value

    assert asyncio.run(scenario()).field == "verb"
    assert req.status() is Status.PENDING  # nothing changed


def test_decide_takes_the_verb_enum_or_its_string(approvals: Approvals) -> None:
    first, second = (approvals.request(action="a", summary=f"s{n}") for n in range(2))
    assert approvals.decide(first.id, Verb.REJECT, by="U01", comment="no").status is Status.REJECTED
    assert approvals.decide(second.id, "approve", by="U01").status is Status.APPROVED


# -- cancel by id ----------------------------------------------------------------------------


def test_cancel_by_id_on_the_sync_client(approvals: Approvals, conn, prefix: str) -> None:
    req = approvals.request(action="a", summary="s")
    assert approvals.cancel(req.id, by="U09") is Status.CANCELLED
    assert req.wait(timeout=5).status == "cancelled"
    cancelled = [e for e in events(conn, prefix, req.id) if e["type"] == EventType.CANCELLED]
    assert [e["by"] for e in cancelled] == ['["U09"]']
    with pytest.raises(AlreadyDecided):
        approvals.cancel(req.id)


def test_cancel_by_id_on_the_async_client(settings: Settings) -> None:
    async def scenario() -> tuple[Status, str, Status]:
        async with AsyncApprovals(settings=settings) as aio:
            req = await aio.request(action="a", summary="s")
            status = await aio.cancel(req.id)
            decision = await req.wait(timeout=5)
            with pytest.raises(AlreadyDecided):
                await aio.cancel(req.id)
            done = await aio.request(action="a", summary="s2")
            return status, decision.status, await done.cancel()

    assert asyncio.run(scenario()) == (Status.CANCELLED, "cancelled", Status.CANCELLED)


# -- audit event types ---------------------------------------------------------------------


def test_every_audit_event_the_store_writes_is_an_event_type(approvals: Approvals, conn, prefix: str) -> None:
    """Kill switch on and off, a filing, a vote and a decision: each event's type parses."""
    approvals.store.pause("*", "U01")
    approvals.store.pause("*", "U01", on=False)
    req = approvals.request(action="a", summary="s", quorum=2)
    approvals.decide(req.id, Verb.APPROVE, by="U01")
    approvals.decide(req.id, Verb.APPROVE, by="U02")
    types = [EventType(e["type"]) for e in events(conn, prefix)]
    assert {EventType.PAUSED, EventType.RESUMED, EventType.CREATED, EventType.VOTED, EventType.DECIDED} <= set(types)
