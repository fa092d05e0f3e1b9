"""The web process: one ASGI app (Starlette) on uvicorn.

It serves Slack's endpoint (`POST /slack/events`, through Bolt's Starlette adapter
helpers), `GET /healthz`, the HTTP API under `/v1`, `/openapi.json` and `/docs`,
`GET /metrics` and the dashboard at `/dashboard` (`bot.gateway.observability`); other
parts (the MCP server) plug in with `mounts=` and `lifespans=`.

Why these choices:
- Bolt's `App.dispatch` is synchronous and runs listeners that call Slack; it runs in a
  worker thread so long-polls and other requests on the event loop never stall behind it.
- A request body must arrive within `bodies.BODY_TIMEOUT` and stay under `MAX_BODY`: a slow or
  short body gets 408 instead of holding anything forever, and no thread waits on it.
- On SIGTERM the server first tells in-flight long-polls to answer with the current view,
  then stops: callers see a normal 200, never a reset connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from enum import StrEnum

import redis
import uvicorn
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.gateway import api, bodies, hooks, openapi
from bot.gateway.auth import Authenticator
from bot.gateway.observability import observability_routes
from hitl.client import Approvals
from hitl.pool import BUSY_RETRY_AFTER, RedisBusy

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Largest Slack request body accepted; Slack's payloads are far smaller.
MAX_BODY = 1024 * 1024
# Seconds in-flight requests get to finish once shutdown starts (long-polls end at once).
GRACEFUL_SHUTDOWN = 15

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class Health(StrEnum):
    """What `/healthz` found."""

    UP = "up"
    DOWN = "down"
    BUSY = "busy"


class Gateway:
    """State of one web process that routes share: the API clients and the drain signal."""

    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals
        self.aio = approvals.asyncio()
        # The bearer keys (`hitl keys create`, HITL_API_KEYS): `await keys.authenticate(header)`
        # answers the caller's `Principal` or raises `auth.Refused` (401, 429). /mcp and the
        # dashboard use the same.
        self.keys = Authenticator(approvals.settings, approvals.redis, self.aio.redis, approvals.keys)
        self._draining = asyncio.Event()

    def drain(self) -> None:
        """Shutdown has begun: long-polls answer now with what they have."""
        self._draining.set()

    async def draining(self) -> None:
        await self._draining.wait()

    async def health(self) -> Health:
        """Redis up, down, or up but this process too busy to ask it in time."""
        try:
            return Health.UP if await self.aio.redis.ping() else Health.DOWN
        except RedisBusy:
            return Health.BUSY
        except (redis.RedisError, OSError):
            return Health.DOWN

    async def healthy(self) -> bool:
        return await self.health() is Health.UP


def slack_route(bolt: App, signing_secret: str) -> Route:
    """`POST /slack/events`: Bolt verifies the signature and acks; dispatch runs in a thread."""
    verifier = SignatureVerifier(signing_secret)

    async def events(request: Request) -> Response:
        try:
            body = await bodies.read_body(request, MAX_BODY)
        except bodies.BodyTooLarge:
            return JSONResponse({"error": f"body over {MAX_BODY:,} bytes"}, 413)
        except (TimeoutError, ClientDisconnect):
            return JSONResponse({"error": f"the body did not arrive within {bodies.BODY_TIMEOUT:g}s"}, 408)
        text = body.decode("utf-8", errors="replace")
        try:
            bolt_request = to_bolt_request(request, text.encode())
        except ValueError:
            # Bolt parses before it verifies: answer as it would, without the traceback.
            headers = {k: v for k, v in request.headers.items()}
            if not verifier.is_valid_request(text, headers):
                return JSONResponse({"error": "invalid request"}, 401)
            return JSONResponse({"error": "malformed payload: not valid JSON"}, 400)
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    return Route(EVENTS_PATH, events, methods=["POST"])


def build_web_app(
    approvals: Approvals,
    *,
    bolt: App | None = None,
    signing_secret: str = "",
    mounts: Sequence[BaseRoute] = (),
    lifespans: Sequence[Lifespan] = (),
) -> Starlette:
    """The whole web process as one ASGI app.

    `bolt` is None in Socket Mode (Slack's traffic comes over the socket); the rest is
    served either way. `mounts` are extra routes or `Mount`s (e.g. the MCP server at
    `/mcp`), `lifespans` their startup/shutdown context managers, entered in order after
    the gateway's own and left in reverse. `app.state.gateway` is the `Gateway`.
    """
    gateway = Gateway(approvals)
    ctx = api.ApiContext(approvals=approvals, aio=gateway.aio, keys=gateway.keys, draining=gateway.draining)

    async def healthz(request: Request) -> JSONResponse:
        state = await gateway.health()
        if state is Health.BUSY:
            return JSONResponse(
                {"ok": False, "redis": "up", "error": f"busy, retry in {BUSY_RETRY_AFTER} s"}, 503,
                headers={"Retry-After": str(BUSY_RETRY_AFTER)},
            )
        ok = state is Health.UP
        return JSONResponse({"ok": ok, "redis": state.value}, 200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(gateway.aio.aclose)
            for extra in lifespans:
                await stack.enter_async_context(extra(app))
            yield

    routes: list[BaseRoute] = [Route(HEALTH_PATH, healthz, methods=["GET"])]
    if bolt is not None:
        routes.append(slack_route(bolt, signing_secret))
    routes += api.routes(ctx) + hooks.routes(ctx) + openapi.routes()
    routes += observability_routes(approvals, gateway.keys)
    routes += list(mounts)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app


class _Server(uvicorn.Server):
    """uvicorn, telling the app to drain its long-polls before it waits for them."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway | None) -> None:
        super().__init__(config)
        self.gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.gateway is not None:
            self.gateway.drain()
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one. Raises OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class WebServer:
    """Runs an app from `build_web_app` on uvicorn: in the foreground (`hitl bot`) or in a
    thread (`hitl dev`, tests, benchmarks)."""

    def __init__(self, app: Starlette, *, host: str = "0.0.0.0", port: int = 3000) -> None:
        self.app = app
        self.host = host
        self.sock = bind(host, port)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            timeout_keep_alive=30, access_log=False,
        )
        self.server = _Server(config, getattr(app.state, "gateway", None))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Slack's endpoint (what a Slack app's Request URL points at)."""
        return self.base_url + EVENTS_PATH

    def serve_forever(self) -> None:
        """Run in the foreground until SIGINT/SIGTERM (uvicorn handles the signals)."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 15.0) -> WebServer:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="hitl-web", daemon=True
        )
        self._thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:  # uvicorn offers no event to wait on
            if not self._thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("the web server did not start; see the log above")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(GRACEFUL_SHUTDOWN + 5)
        with contextlib.suppress(OSError):
            self.sock.close()

