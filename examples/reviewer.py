"""The examples' stand-in for the Slack reviewer (`--self-approve`, `--self-reject`).

It decides only the requests its own run filed, by id. The examples file into whatever
Redis `REDIS_URL` names, which may be shared: deciding "the oldest pending request" there
approved someone else's (against `make demo`, the demo's email to 200 customers). Each
example says which Redis it uses before it files anything.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hitl import Approvals
from hitl.client import RequestHandle
from hitl.models import Request

# Longest the stand-in waits for its run to file a request (seconds).
FILE_TIMEOUT = 60.0


class RunApprovals(Approvals):
    """This run's client: the id of every request it files goes to `filed`, for the
    stand-in reviewer (the adapters file through `request`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filed: queue.Queue[str] = queue.Queue()

    def request(self, **kwargs: Any) -> RequestHandle:
        handle = super().request(**kwargs)
        self.filed.put(handle.id)
        return handle


def redis_location(approvals: Approvals) -> str:
    """The Redis URL this client uses, without its password."""
    url = urlsplit(approvals.url)
    return url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()


def announce(approvals: Approvals, reviewer: bool) -> None:
    """Say where requests go (and, with a stand-in reviewer, what it may decide)."""
    if not isinstance(approvals, RunApprovals):  # HITL_API_URL: an agent's key, no Redis
        base = getattr(approvals, "base_url", "HITL_API_URL")
        print(f"[hitl] HTTP API {base} (HITL_API_URL): decide this run's request in Slack", flush=True)
        return
    where = f"[hitl] Redis {redis_location(approvals)} (prefix {approvals.keys.prefix!r})"
    if reviewer:
        where += ": the stand-in reviewer decides only the request this run files, by id"
    print(where, flush=True)


def stand_in(approvals: Approvals, decide: Callable[[Approvals, Request], None]) -> threading.Thread | None:
    """Start a thread that waits for this run's first request and decides it with `decide`
    (called with this client and the request, read from Redis by its id). Over HTTP (an
    agent's API key) there is no stand-in: deciding is the reviewers' part, in Slack."""
    if not isinstance(approvals, RunApprovals):
        print("[slack] no stand-in reviewer over HITL_API_URL: an API key cannot decide", flush=True)
        return None

    def review() -> None:
        try:
            request_id = approvals.filed.get(timeout=FILE_TIMEOUT)
        except queue.Empty:
            print(f"[slack] this run filed no request within {FILE_TIMEOUT:g}s; nothing decided", flush=True)
            return
        req = approvals.store.get(request_id)
        if req.final:  # the same run filed before (idempotency): its decision stands
            print(f"[slack] {req.id} was already {req.status.value}", flush=True)
            return
        decide(approvals, req)

    thread = threading.Thread(target=review, name="stand-in-reviewer", daemon=True)
    thread.start()
    return thread
