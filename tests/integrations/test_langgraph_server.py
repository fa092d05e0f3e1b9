"""Resuming a LangGraph Server thread from an RQ job, through the real `langgraph-sdk` client.

The server is a loopback stub of the two endpoints the SDK calls (read from its source,
`langgraph_sdk/_sync/threads.py` and `runs.py`): ``GET /threads/{thread_id}`` (the thread,
with ``interrupts``: task id -> [{value, id}]) and ``POST /threads/{thread_id}/runs`` (a
run, its JSON body carrying ``assistant_id`` and ``command``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from rq import Queue, SimpleWorker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hitl import Approvals
from hitl.integrations.langgraph import enqueue_server_resume, human_interrupt, resume_server_thread
from tests.helpers import eventually
from tests.integrations.test_langgraph import Reviewer, reject

THREAD = "thread-9"
ASKED = {"to": "all@example.com"}


@dataclass
class StubServer:
    """What the stub serves (`threads`) and what it was asked to run (`runs`)."""

    url: str = ""
    threads: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[StubServer]:
    stub = StubServer()

    async def get_thread(request: Request) -> JSONResponse:
        thread_id = request.path_params["thread_id"]
        if thread_id not in stub.threads:
            return JSONResponse({"detail": "Thread not found"}, status_code=404)
        return JSONResponse(stub.threads[thread_id])

    async def create_run(request: Request) -> JSONResponse:
        thread_id = request.path_params["thread_id"]
        body = await request.json()
        stub.runs.append((thread_id, body))
        return JSONResponse({
            "run_id": f"run-{len(stub.runs)}", "thread_id": thread_id,
            "assistant_id": body["assistant_id"], "status": "pending",
        })

    app = Starlette(routes=[
        Route("/threads/{thread_id}", get_thread, methods=["GET"]),
        Route("/threads/{thread_id}/runs", create_run, methods=["POST"]),
    ])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    eventually(lambda: uv.started, 20, "the stub LangGraph Server to listen")
    stub.url = f"http://127.0.0.1:{port}"
    try:
        yield stub
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.fixture
def job_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, prefix: str) -> None:
    """The job builds its own `Approvals()` from the environment, as an `rq worker` would."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HITL_REDIS_PREFIX", prefix)
    monkeypatch.delenv("HITL_POLICY_FILE", raising=False)


def waiting_thread(approvals: Approvals, server: StubServer) -> str:
    """A server thread stopped at `approval_interrupt`'s interrupt, plus one that is not ours."""
    handle = approvals.request(action="send_email", summary="Email everyone", params=ASKED, run_id=THREAD)
    ours = human_interrupt("send_email", ASKED, "Email everyone", handle.id, ("accept", "edit", "respond", "ignore"))
    server.threads[THREAD] = {
        "thread_id": THREAD, "status": "interrupted", "metadata": {}, "values": {},
        "interrupts": {
            "task-1": [{"value": ours, "id": "intr-ours"}],
            "task-2": [{"value": {"question": "someone else's"}, "id": "intr-other"}],
        },
    }
    return handle.id


def run_langgraph_queue(approvals: Approvals) -> None:
    queue = Queue(f"{approvals.keys.prefix}-langgraph", connection=approvals.redis)
    SimpleWorker([queue], connection=approvals.redis).work(burst=True)


def test_a_decision_resumes_the_server_thread_from_the_worker(
    approvals: Approvals, server: StubServer, job_env: None
) -> None:
    request_id = waiting_thread(approvals, server)
    approvals.decide(request_id, "approve", by="U0ALICE", params={"to": "team@example.com"})
    job = enqueue_server_resume(approvals, THREAD, "agent", url=server.url, timeout=60)
    run_langgraph_queue(approvals)
    assert job.get_status(refresh=True).value == "finished", job.latest_result()
    ((thread_id, body),) = server.runs
    assert (thread_id, body["assistant_id"]) == (THREAD, "agent")
    resume = body["command"]["resume"]
    assert list(resume) == ["intr-ours"]  # the foreign interrupt is left for its owner
    answer = resume["intr-ours"]
    assert (answer["type"], answer["args"]) == ("edit", {"action": "send_email", "args": {"to": "team@example.com"}})
    assert (answer["hitl"]["kind"], answer["hitl"]["request_id"], answer["hitl"]["by"]) == ("edited", request_id, ["U0ALICE"])
    assert job.return_value()["run_id"] == "run-1"


def test_a_rejection_resumes_with_the_reason_as_the_response(
    approvals: Approvals, server: StubServer, job_env: None
) -> None:
    request_id = waiting_thread(approvals, server)
    approvals.decide(request_id, "reject", by="U0BOB", comment="not to everyone")
    run = resume_server_thread(THREAD, "agent", url=server.url, timeout=30)
    assert run is not None and run["thread_id"] == THREAD
    ((_thread, body),) = server.runs
    answer = body["command"]["resume"]["intr-ours"]
    assert answer["type"] == "response" and "Rejected by U0BOB: not to everyone" in answer["args"]


def test_a_thread_with_nothing_of_ours_pending_starts_no_run(
    approvals: Approvals, server: StubServer, job_env: None
) -> None:
    server.threads[THREAD] = {"thread_id": THREAD, "status": "idle", "interrupts": {}}
    assert resume_server_thread(THREAD, "agent", url=server.url, timeout=5) is None
    assert server.runs == []


def test_an_undecided_request_fails_the_job_after_its_timeout_and_starts_no_run(
    approvals: Approvals, server: StubServer, job_env: None
) -> None:
    """The job's wait is bounded by the `timeout` given to `enqueue_server_resume`."""
    waiting_thread(approvals, server)
    job = enqueue_server_resume(approvals, THREAD, "agent", url=server.url, timeout=1)
    run_langgraph_queue(approvals)
    assert job.get_status(refresh=True).value == "failed"
    assert "WaitTimeout" in (job.latest_result().exc_string or "")
    assert server.runs == []


def test_a_middleware_interrupt_is_filed_by_the_job_and_resumed_with_its_decisions(
    approvals: Approvals, server: StubServer, job_env: None
) -> None:
    """A `HumanInTheLoopMiddleware` interrupt on the server: the job files it (one card)
    and resumes with the middleware's `{"decisions": [...]}` once Slack decides."""
    request = {
        "action_requests": [{"name": "send_email", "args": ASKED, "description": "Email everyone"}],
        "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}],
    }
    server.threads[THREAD] = {"thread_id": THREAD, "interrupts": {"task-1": [{"value": request, "id": "intr-mw"}]}}
    reviewer = Reviewer(approvals)
    reviewer.decide(reject("wrong list"))
    job = enqueue_server_resume(approvals, THREAD, "agent", url=server.url, timeout=60)
    run_langgraph_queue(approvals)
    assert job.get_status(refresh=True).value == "finished", job.latest_result()
    (req,) = reviewer.seen
    assert (req.action, req.params, req.run_id) == ("send_email", ASKED, THREAD)
    ((_thread, body),) = server.runs
    assert body["command"]["resume"] == {"intr-mw": {"decisions": [{"type": "reject", "message": "wrong list"}]}}
