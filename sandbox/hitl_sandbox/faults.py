"""Fault injection and rate limits for the Slack stand-in.

Delivery code must survive what Slack really does under load: HTTP 429 with a
``Retry-After`` header, the odd 500/503, a connection cut mid-request. Tests queue such
answers here ("the next 2 calls of chat.postMessage answer 429") and the stand-in serves
them before running the method. A real sliding-window limit per channel lets bursts be
benchmarked against Slack's "about one message per second per channel".
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ANY_METHOD = "*"
# Read methods Slack limits hardest for apps outside the Marketplace.
HISTORY_METHODS = ("conversations.history", "conversations.replies")
NON_MARKETPLACE_CAP = 15


@dataclass(frozen=True)
class Fault:
    """One queued answer that replaces a method's normal result.

    ``kind`` is ``"http"`` (answer with ``status``, ``headers`` and ``body``) or ``"drop"``
    (close the connection without answering).
    """

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str = ""


@dataclass
class _Queued:
    """A queued fault and how many more calls it answers."""

    fault: Fault
    remaining: int


@dataclass
class RateLimit:
    """A sliding-window limit: at most ``limit`` calls in any ``per`` seconds, per key."""

    limit: int
    per: float
    per_channel: bool
    hits: dict[str, deque[float]] = field(default_factory=dict)


class Hold:
    """A call held by the stand-in until released: Slack slow to answer, so a test can
    kill the caller while the call is in flight. The call then runs as usual (the message
    is made) and answers whoever is still listening."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.arrived = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def wait(self) -> None:
        self.arrived.set()
        self._released.wait(self.timeout)


class Faults:
    """Queued faults and configured rate limits, shared by every request thread.

    Methods are Slack method names (``"chat.postMessage"``); ``"*"`` matches any method.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[_Queued]] = {}
        self._limits: dict[str, RateLimit] = {}
        self._holds: dict[str, list[Hold]] = {}
        self._latency: dict[str, float] = {}
        # Most objects a history read answers (None: as asked, up to Slack's usual 999).
        self.history_cap: int | None = None

    # -- queued faults ---------------------------------------------------------------------

    def _queue(self, method: str, fault: Fault, times: int) -> None:
        """Queue ``fault`` for the next ``times`` calls of ``method``."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queued.setdefault(method, []).append(_Queued(fault, times))

    def ratelimit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` answer 429 ``ratelimited`` with ``Retry-After``."""
        self._queue(method, ratelimited_fault(retry_after), times)

    def error(
        self, method: str, status: int = 500, *, times: int = 1, body: dict[str, Any] | str | None = None
    ) -> None:
        """Make the next ``times`` calls of ``method`` answer HTTP ``status`` (500, 503...) with ``body``.

        The default body is Slack-like JSON (``fatal_error`` for 500, ``service_unavailable``
        otherwise); pass a string to serve a non-JSON body such as an HTML error page.
        """
        if body is None:
            body = {"ok": False, "error": "fatal_error" if status == 500 else "service_unavailable"}
        self._queue(method, Fault("http", status, {}, body), times)

    def drop(self, method: str, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` lose their connection without an answer."""
        self._queue(method, Fault("drop"), times)

    def drop_after(self, method: str, *, times: int = 1) -> None:
        """Run the next ``times`` calls of ``method``, then lose the answer (an ambiguous failure)."""
        self._queue(method, Fault("drop_after"), times)

    def take(self, method: str) -> Fault | None:
        """Consume and return the next fault queued for ``method`` (or for any method), if any."""
        with self._lock:
            for key in (method, ANY_METHOD):
                queue = self._queued.get(key)
                if queue:
                    entry = queue[0]
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        queue.pop(0)
                    return entry.fault
        return None

    def pending(self, method: str | None = None) -> int:
        """How many faulty answers are still queued (for ``method``, or in total)."""
        with self._lock:
            keys = [method] if method is not None else list(self._queued)
            return sum(q.remaining for key in keys for q in self._queued.get(key, []))

    # -- held calls and latency ------------------------------------------------------------

    def hold(self, method: str, *, timeout: float = 60.0) -> Hold:
        """Hold the next call of ``method`` until ``release()`` (or ``timeout`` seconds)."""
        held = Hold(timeout)
        with self._lock:
            self._holds.setdefault(method, []).append(held)
        return held

    def take_hold(self, method: str) -> Hold | None:
        with self._lock:
            queue = self._holds.get(method)
            return queue.pop(0) if queue else None

    def set_latency(self, seconds: float, method: str = ANY_METHOD) -> None:
        """Answer every call of ``method`` (or of any method) ``seconds`` late, as a busy Slack does."""
        with self._lock:
            self._latency[method] = seconds

    def latency(self, method: str) -> float:
        with self._lock:
            return self._latency.get(method, self._latency.get(ANY_METHOD, 0.0))

    # -- rate limits -----------------------------------------------------------------------

    def set_rate_limit(
        self, method: str, *, limit: int = 1, per: float = 1.0, per_channel: bool = True
    ) -> None:
        """Enforce at most ``limit`` calls of ``method`` in any ``per`` seconds.

        With ``per_channel`` (Slack's rule for chat.postMessage) each channel has its own
        window; otherwise the window is workspace-wide. Calls over the limit answer 429
        with ``Retry-After`` set to the whole seconds until a slot frees up.
        """
        if limit < 1 or per <= 0:
            raise ValueError("limit must be >= 1 and per > 0")
        with self._lock:
            self._limits[method] = RateLimit(limit, per, per_channel)

    def non_marketplace_limits(self, *, per: float = 60.0, cap: int = NON_MARKETPLACE_CAP) -> None:
        """Slack's limits since 2026-03-03 for apps outside the Marketplace:
        conversations.history and conversations.replies allow one call per ``per`` seconds
        (a minute) per channel, over it 429 with Retry-After, and answer at most ``cap``
        (15) objects per call whatever ``limit`` asks. ``per`` may be shortened for a test
        that must page through several windows."""
        for name in HISTORY_METHODS:
            self.set_rate_limit(name, limit=1, per=per, per_channel=True)
        with self._lock:
            self.history_cap = cap

    def clear_rate_limit(self, method: str) -> None:
        """Remove the limit on ``method``."""
        with self._lock:
            self._limits.pop(method, None)

    def check_rate(self, method: str, channel: str | None, now: Callable[[], float]) -> int | None:
        """Count one call; return seconds to wait when it is over the limit, else ``None``.

        Refused calls do not use up the window, as with Slack.
        """
        with self._lock:
            rule = self._limits.get(method)
            if rule is None:
                return None
            key = (channel or "") if rule.per_channel else ""
            hits = rule.hits.setdefault(key, deque())
            moment = now()
            while hits and moment - hits[0] >= rule.per:
                hits.popleft()
            if len(hits) >= rule.limit:
                return max(1, math.ceil(rule.per - (moment - hits[0])))
            hits.append(moment)
            return None

    def clear(self) -> None:
        """Drop every queued fault and rate limit."""
        with self._lock:
            self._queued.clear()
            self._limits.clear()
            self._latency.clear()
            self.history_cap = None
            for queue in self._holds.values():
                for held in queue:
                    held.release()
            self._holds.clear()


def ratelimited_fault(retry_after: int) -> Fault:
    """Slack's answer to a rate-limited call: HTTP 429, ``Retry-After`` seconds, ``ratelimited``."""
    return Fault("http", 429, {"retry-after": str(retry_after)}, {"ok": False, "error": "ratelimited"})
