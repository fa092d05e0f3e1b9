"""One listener per process for every waiter: any number of waits on two Redis connections.

Before this module each `wait()` held its own connection blocked in BLMOVE, so 2,000
asyncio waits filled the pool and woke seconds late. Now every wait in a process (sync
`wait()`, asyncio `wait()`, the HTTP long-poll, the MCP tools) registers with the
`Dispatcher` for its Redis URL and key prefix, which owns two connections and two daemon
threads:

- the *listener* tails the audit stream ``{prefix}:events`` with ``XREAD BLOCK``. Final
  events (decided, expired, vetoed, finalized, cancelled) name the request; when one names
  a registered request, the listener re-reads those requests in one pipeline and hands
  each waiter its final `Request`;
- the *checker* reads the current state of newly registered requests (batched, one
  pipeline per batch), so a request that was already final, or turned final between the
  caller's last look and the registration, is answered at once.

No decision is missed: a waiter is registered *before* its request is checked, and the
stream is read from a cursor taken before any check, so a final transition lands either
before the check (the check sees it) or after the cursor (the listener sees it). When the
listener loses its connection (a Redis restart, a failover) it takes a fresh cursor and
has every registered request checked again.

A waiter that times out or is cancelled unregisters itself; the registry then holds
nothing of it, and no Redis key is ever written for a waiter. A dispatcher with no waiter
for `IDLE_SECONDS` stops its threads and closes its connections; the next wait starts a
new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any, cast

import redis

from hitl import scripts
from hitl.errors import HitlError, RequestNotFound, WaitTimeout
from hitl.ids import known_shape
from hitl.keys import Keys
from hitl.models import Request
from hitl.status import EventType
from hitl.store import apply_outcome, parse_outcome, parse_request
from hitl.streams import Entry, StreamReply

log = logging.getLogger(__name__)

# Audit events after which a request is final. `created` is not among them: a request that
# is final at creation (auto, notify) is found by the check that follows registration.
_FINAL = (EventType.DECIDED, EventType.EXPIRED, EventType.VETOED, EventType.FINALIZED, EventType.CANCELLED)
FINAL_EVENTS: frozenset[bytes] = frozenset(e.value.encode() for e in _FINAL)
# Longest XREAD block (ms): bounds how long an idle or stopping listener takes to notice.
BLOCK_MS = 5_000
# Most stream entries taken per XREAD, and most requests read per pipeline.
XREAD_COUNT = 1_000
CHECK_BATCH = 1_000
# Back-off bounds while Redis is unreachable (seconds).
RECONNECT_MIN, RECONNECT_MAX = 0.05, 2.0
# A dispatcher without waiters for this long stops and closes its connections (seconds).
IDLE_SECONDS = 30.0
# Connections the dispatcher owns: the listener's and the checker's.
CONNECTIONS = 2


def client_name() -> str:
    """The CLIENT SETNAME of this process's dispatcher connections (find them in CLIENT LIST)."""
    return f"hitl-waiter-{os.getpid()}"


class DispatcherClosed(HitlError):
    """The dispatcher was shut down (tests, interpreter exit) while this wait was held."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"stopped waiting for {request_id}: the waiter dispatcher was shut down")


class _Stopped(Exception):
    """Internal: a registration raced an idle stop; the caller retries on a new dispatcher."""


Result = Request | HitlError


class _Waiter:
    """One wait on one request; `deliver` is called once, from a dispatcher thread."""

    __slots__ = ("request_id",)

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id

    def deliver(self, result: Result) -> None:
        raise NotImplementedError


class _ThreadWaiter(_Waiter):
    __slots__ = ("event", "result")

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.event = threading.Event()
        self.result: Result | None = None

    def deliver(self, result: Result) -> None:
        self.result = result
        self.event.set()


class _AsyncWaiter(_Waiter):
    """Resolved on its own event loop; `Dispatcher._resolve` batches them per loop."""

    __slots__ = ("future", "loop")

    def __init__(self, request_id: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(request_id)
        self.loop = loop
        self.future: asyncio.Future[Request] = loop.create_future()

    def deliver(self, result: Result) -> None:  # only used one at a time; see _settle
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(_settle, [(self.future, result)])


_Settling = tuple["asyncio.Future[Request]", Result]


def _settle(items: list[_Settling]) -> None:
    """Runs on the waiters' loop: complete every future still waiting."""
    for fut, result in items:
        if fut.done():  # timed out or cancelled meanwhile
            continue
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)


def _connect(url: str) -> redis.Redis:
    # One thread uses each client, so its pool never holds more than one connection.
    return redis.Redis.from_url(
        url,
        client_name=client_name(),
        socket_connect_timeout=5,
        socket_timeout=BLOCK_MS / 1000 + 10,
        socket_keepalive=True,
        health_check_interval=30,
    )


class Dispatcher:
    """Wakes every waiter of one Redis URL and key prefix; see the module docstring."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the checker sleeps on it
        self._waiters: dict[str, set[_Waiter]] = {}
        # Each waited request as its check found it (not yet final): on a final event only
        # the outcome on its done list is read and applied, as `wait()` always did.
        self._seen: dict[str, Request] = {}
        self._to_check: set[str] = set()
        self._in_flight = 0  # requests the checker is reading right now
        self._stopped = False
        self._idle_since = time.monotonic()
        self._listen = _connect(url)
        self._check_client = _connect(url)
        self._read_listen = self._listen.register_script(scripts.READ)
        self._read_check = self._check_client.register_script(scripts.READ)
        self._listener_id: int | None = None
        self._threads = [
            threading.Thread(target=self._listen_loop, name=f"hitl-waiter-listen[{prefix}]", daemon=True),
            threading.Thread(target=self._check_loop, name=f"hitl-waiter-check[{prefix}]", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- what callers use -------------------------------------------------------------------
    def wait(self, request_id: str, timeout: float | None) -> Request:
        """Block this thread until the request is final; `WaitTimeout` after `timeout` s."""
        w = _ThreadWaiter(known_shape(request_id))
        self._register(w)
        try:
            if not w.event.wait(timeout):
                raise WaitTimeout(request_id, timeout or 0)
            return _unwrap(w.result)
        finally:
            self._unregister(w)

    async def wait_async(self, request_id: str, timeout: float | None) -> Request:
        """`wait` for asyncio: the future is completed on the caller's loop."""
        w = _AsyncWaiter(known_shape(request_id), asyncio.get_running_loop())
        self._register(w)
        try:
            return await asyncio.wait_for(w.future, timeout)
        except TimeoutError:
            raise WaitTimeout(request_id, timeout or 0) from None
        finally:
            self._unregister(w)

    def registered(self) -> dict[str, int]:
        """Waiters per request id right now (for tests and diagnostics)."""
        with self._lock:
            return {rid: len(ws) for rid, ws in self._waiters.items()}

    def checks_queued(self) -> int:
        """Registered requests whose first read has not run yet (benchmarks wait for 0)."""
        with self._lock:
            return len(self._to_check) + self._in_flight

    @property
    def stopped(self) -> bool:
        return self._stopped

    def close(self) -> None:
        """Stop both threads, fail any waiter still held, close the connections."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            left = [w for ws in self._waiters.values() for w in ws]
            self._waiters.clear()
            self._wake.notify_all()
        for w in left:
            w.deliver(DispatcherClosed(w.request_id))
        listener, checker = self._threads
        end = time.monotonic() + BLOCK_MS / 1000 + 5
        while listener.is_alive() and time.monotonic() < end:
            self._unblock_listener()  # again if it was not yet blocked the first time
            listener.join(0.05)
        checker.join(max(end - time.monotonic(), 0.1))
        self._disconnect()

    # -- registry ----------------------------------------------------------------------------
    def _register(self, w: _Waiter) -> None:
        with self._lock:
            if self._stopped:
                raise _Stopped
            self._waiters.setdefault(w.request_id, set()).add(w)
            self._to_check.add(w.request_id)  # register, THEN check: see the module docstring
            self._wake.notify()

    def _unregister(self, w: _Waiter) -> None:
        with self._lock:
            ws = self._waiters.get(w.request_id)
            if ws is not None:
                ws.discard(w)
                if not ws:
                    del self._waiters[w.request_id]
                    self._to_check.discard(w.request_id)
                    self._seen.pop(w.request_id, None)
            if not self._waiters:
                self._idle_since = time.monotonic()

    def _registered_among(self, ids: Iterable[str]) -> list[str]:
        with self._lock:
            return [rid for rid in ids if rid in self._waiters]

    def _resolve(self, results: dict[str, Result]) -> None:
        """Hand each result to every waiter of its request, one loop callback per event loop."""
        if not results:
            return
        with self._lock:
            taken = [(w, results[rid]) for rid in results for w in self._waiters.pop(rid, ())]
            for rid in results:
                self._seen.pop(rid, None)
            if not self._waiters:
                self._idle_since = time.monotonic()
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settling]] = defaultdict(list)
        for w, result in taken:
            if isinstance(w, _AsyncWaiter):
                by_loop[w.loop].append((w.future, result))
            else:
                w.deliver(result)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(_settle, items)

    def _recheck_all(self) -> None:
        with self._lock:
            self._to_check.update(self._waiters)
            self._wake.notify()

    # -- reading -----------------------------------------------------------------------------
    def _read(self, client: redis.Redis, script: Any, ids: Collection[str]) -> dict[str, Result]:
        """The requests `ids` as they stand (or `RequestNotFound`), read in one pipeline."""
        pipe = client.pipeline(transaction=False)
        for rid in ids:
            script(keys=[self.keys.req(rid), self.keys.events], client=pipe)
        return {
            rid: parse_request(raw) if raw else RequestNotFound(rid)
            for rid, raw in zip(ids, pipe.execute(), strict=True)
        }

    def _check(self, ids: Collection[str]) -> dict[str, Result]:
        """First read after registration: final (or missing) requests are answered; the
        others are kept for the wake."""
        read = self._read(self._check_client, self._read_check, ids)
        with self._lock:
            for rid, got in read.items():
                if isinstance(got, Request) and not got.final and rid in self._waiters:
                    self._seen[rid] = got
        return {rid: got for rid, got in read.items() if not isinstance(got, Request) or got.final}

    def _woken(self, ids: Collection[str]) -> dict[str, Result]:
        """Requests a final event named: the outcome from each done list applied to the
        request as checked (one LINDEX each), or a full read for any not checked yet."""
        with self._lock:
            seen = {rid: self._seen[rid] for rid in ids if rid in self._seen}
        out: dict[str, Result] = {}
        if seen:
            pipe = self._listen.pipeline(transaction=False)
            for rid in seen:
                pipe.lindex(self.keys.done(rid), 0)
            for (rid, req), token in zip(seen.items(), pipe.execute(), strict=True):
                outcome = parse_outcome(token)
                if outcome is not None:
                    out[rid] = apply_outcome(req, outcome)
        rest = [rid for rid in ids if rid not in out]
        if rest:
            read = self._read(self._listen, self._read_listen, rest)
            out.update((rid, got) for rid, got in read.items() if not isinstance(got, Request) or got.final)
        return out

    def _check_loop(self) -> None:
        backoff = RECONNECT_MIN
        while True:
            with self._lock:
                while not self._to_check and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                batch = [self._to_check.pop() for _ in range(min(CHECK_BATCH, len(self._to_check)))]
                self._in_flight = len(batch)
            try:
                ids = self._registered_among(batch)
                if ids:
                    self._resolve(self._check(ids))
                backoff = RECONNECT_MIN
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("waiter dispatcher: Redis unreachable while checking (%s); retrying", exc)
                with self._lock:
                    self._to_check.update(ids)
                    self._wake.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX)
            except Exception:  # never let one bad request stop the checker for everyone
                log.exception("waiter dispatcher: check failed for %d requests", len(batch))
            finally:
                with self._lock:
                    self._in_flight = 0

    def _tail(self) -> bytes:
        """The stream's last entry id (read from there on), or 0-0 for an empty stream."""
        last = cast(list[Entry], self._listen.xrevrange(self.keys.events, count=1))
        return last[0][0] if last else b"0-0"

    def _listen_loop(self) -> None:
        cursor: bytes | None = None
        backoff = RECONNECT_MIN
        while not self._stopped:
            try:
                if cursor is None:
                    self._listener_id = int(self._listen.client_id())
                    cursor = self._tail()
                    self._recheck_all()  # whatever turned final while we were not reading
                    backoff = RECONNECT_MIN
                resp = cast(
                    StreamReply,
                    self._listen.xread({self.keys.events: cursor}, count=XREAD_COUNT, block=BLOCK_MS),
                )
                woken: set[str] = set()
                for _stream, entries in resp or ():
                    for eid, fields in entries:
                        cursor = eid
                        rid = fields.get(b"id")
                        if rid is not None and fields.get(b"type") in FINAL_EVENTS:
                            woken.add(rid.decode())
                ids = self._registered_among(woken)
                if ids:
                    self._resolve(self._woken(ids))
                if self._idle_stop():
                    return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._stopped:
                    return
                log.warning("waiter dispatcher: lost Redis (%s); reconnecting in %.2fs", exc, backoff)
                cursor = None
                time.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX)
            except Exception:
                if self._stopped:
                    return
                log.exception("waiter dispatcher: listener error; re-reading every waiter")
                cursor = None
                time.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX)

    # -- lifecycle ---------------------------------------------------------------------------
    def _idle_stop(self) -> bool:
        """Stop when no one has waited for IDLE_SECONDS; the next wait starts a new dispatcher."""
        with _DISPATCHERS_LOCK, self._lock:
            if self._stopped:
                # close() is under way and disconnects once both threads have ended:
                # closing the clients here too would pull a connection from under its
                # CLIENT UNBLOCK (seen as a teardown error under load).
                return True
            if self._waiters or time.monotonic() - self._idle_since < IDLE_SECONDS:
                return False
            self._stopped = True
            self._wake.notify_all()
            if _DISPATCHERS.get((self.url, self.keys.prefix)) is self:
                del _DISPATCHERS[(self.url, self.keys.prefix)]
        self._disconnect()
        return True

    def _unblock_listener(self) -> None:
        """End the listener's XREAD BLOCK now rather than after up to BLOCK_MS."""
        if self._listener_id is None:
            return
        with contextlib.suppress(redis.RedisError):
            self._check_client.client_unblock(self._listener_id)

    def _disconnect(self) -> None:
        for client in (self._listen, self._check_client):
            with contextlib.suppress(Exception):
                client.close()


def _unwrap(result: Result | None) -> Request:
    if isinstance(result, BaseException):
        raise result
    assert result is not None
    return result


_DISPATCHERS: dict[tuple[str, str], Dispatcher] = {}
_DISPATCHERS_LOCK = threading.Lock()


def dispatcher(url: str, prefix: str) -> Dispatcher:
    """This process's dispatcher for a Redis URL and key prefix, started on first use."""
    with _DISPATCHERS_LOCK:
        d = _DISPATCHERS.get((url, prefix))
        if d is None or d.stopped:
            d = _DISPATCHERS[(url, prefix)] = Dispatcher(url, prefix)
        return d


def wait_request(url: str, prefix: str, request_id: str, timeout: float | None) -> Request:
    """Block until the request is final and return it; `WaitTimeout` after `timeout` s,
    `RequestNotFound` for an unknown id."""
    while True:
        try:
            return dispatcher(url, prefix).wait(request_id, timeout)
        except _Stopped:
            continue


async def wait_request_async(url: str, prefix: str, request_id: str, timeout: float | None) -> Request:
    """`wait_request` for asyncio code (AsyncApprovals, the HTTP long-poll, MCP tools)."""
    while True:
        try:
            return await dispatcher(url, prefix).wait_async(request_id, timeout)
        except _Stopped:
            continue


def shutdown() -> None:
    """Stop every dispatcher of this process (tests; a clean exit). Waits held end with
    `DispatcherClosed`; later waits start new dispatchers."""
    with _DISPATCHERS_LOCK:
        all_ = list(_DISPATCHERS.values())
        _DISPATCHERS.clear()
    for d in all_:
        d.close()
