"""``hitl dev``: the whole product on one machine, with a local Slack in the browser.

A team evaluating approval tools gives up if trying one needs a Slack workspace, an app,
tokens and a Redis. ``hitl dev`` needs none of them:

1. Redis: an embedded ``redis-server`` when ``REDIS_URL`` is unset, else that Redis;
2. the Slack stand-in (``hitl_sandbox.server``) serving Slack's Web API *and* the browser page
   (``hitl_sandbox.page``) on ``--port`` (8080);
3. the bot: the real Bolt app behind ``hitl bot``'s HTTP server, in this process, pointed
   at the stand-in with ``SLACK_API_URL`` and verifying a signing secret generated now;
   it serves ``/v1`` and ``/mcp`` as ``hitl bot`` does, behind an API key made now;
4. a worker: a real ``hitl worker`` process (cards, timers, escalation);
5. the demo agent (``hitl_sandbox.demo_agent``), unless ``--no-demo``: it files sample requests
   and prints each decision as it arrives; before it, ``hitl_sandbox.seed`` publishes the
   sandbox's policy and a short decided history, so a promotion proposal and a card that
   offers a grant are there from the first minute.

Ctrl-C (or SIGTERM) stops everything, children first. The pieces are also usable one by
one (``start_stack``), which is how the browser tests get the very same stack.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import redis
from pydantic import SecretStr
from slack_sdk import WebClient

from bot.gateway import mcp
from bot.gateway.mcp import MCP_PATH
from bot.gateway.web import WebServer, bind, build_web_app
from bot.slack.app import build_app
from hitl.client import Approvals
from hitl.embedded import EmbeddedRedis
from hitl.errors import ConfigError, HitlError
from hitl.settings import Settings, load_settings
from hitl_sandbox.page import SandboxPage
from hitl_sandbox.seed import seed
from hitl_sandbox.server import SlackStandIn

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
DEFAULT_CHANNEL = "C0APPROVALS"
# Name of the HTTP API key `hitl dev` makes (the audit log records it as `via`).
API_KEY_NAME = "dev"
# The stand-in accepts this bot token; it means nothing anywhere else.
SANDBOX_TOKEN = "xoxb-sandbox-local"
# People of the sandbox workspace allowed to pause and resume agents in the demo.
DEMO_ADMINS = "U0ALICE"
# Seconds a fresh worker gets to register with Redis before we give up on it.
WORKER_START_TIMEOUT = 30.0
# Seconds each child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
# Libraries whose INFO lines would bury the demo agent's output in the terminal.
QUIET_LOGGERS = ("slack_bolt", "slack_sdk", "urllib3", "rq", "bot", "workers")


class PortInUse(HitlError):
    """The page's port is taken; the message names ``--port`` as the way out."""


@dataclass
class DevStack:
    """A running sandbox stack: Redis, stand-in with page, bot, worker (and maybe the demo)."""

    redis_url: str
    prefix: str
    stand_in: SlackStandIn
    page: SandboxPage
    bot: WebServer
    approvals: Approvals
    worker: subprocess.Popen[bytes]
    signing_secret: str
    api_key: str
    workdir: Path
    embedded: EmbeddedRedis | None = None
    cleanup_prefix: bool = False
    demo: subprocess.Popen[bytes] | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def page_url(self) -> str:
        """The browser page, e.g. ``http://127.0.0.1:8080/_sandbox/``."""
        return self.page.url

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint (streamable HTTP, bearer ``api_key``), as ``hitl bot`` serves it."""
        return self.bot.base_url + MCP_PATH

    @property
    def worker_log(self) -> Path:
        """Where the worker's output goes (the terminal is kept for the demo agent)."""
        return self.workdir / "worker.log"

    def env(self) -> dict[str, str]:
        """What a ``hitl`` process needs to join this stack (worker, demo agent, ``hitl request``)."""
        return {
            "REDIS_URL": self.redis_url,
            "HITL_REDIS_PREFIX": self.prefix,
            "SLACK_BOT_TOKEN": SANDBOX_TOKEN,
            "SLACK_API_URL": self.stand_in.url,
            "HITL_DEFAULT_CHANNEL": DEFAULT_CHANNEL,
        }

    def start_demo(self, *, stdout: TextIO | int | None = None) -> subprocess.Popen[bytes]:
        """Start the demo agent (``python -m hitl_sandbox.demo_agent``) against this stack."""
        env = child_env(self.env())
        self.demo = subprocess.Popen(
            [sys.executable, "-m", "hitl_sandbox.demo_agent", "--page-url", self.page_url],
            env=env,
            stdout=stdout,
            stderr=stdout if stdout is not None else None,
        )
        return self.demo

    def stop(self) -> None:
        """Stop everything, the processes that use the others first. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.demo is not None:
            stop_process(self.demo)
        self.page.close()
        stop_process(self.worker, group=True)
        with contextlib.suppress(Exception):
            self.bot.stop()
        if self.cleanup_prefix:
            with contextlib.suppress(redis.RedisError):
                delete_prefix(self.approvals.redis, self.prefix)
        with contextlib.suppress(Exception):
            self.approvals.close()
        self.stand_in.stop()
        if self.embedded is not None:
            self.embedded.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DevStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_env(extra: dict[str, str], *, keep_hitl: bool = True) -> dict[str, str]:
    """The environment for a child ``hitl`` process: ours, with ``extra`` on top.

    Real Slack credentials (``SLACK_*``) never reach the sandbox's children: a worker must
    not post demo cards to a real workspace. ``keep_hitl=False`` also drops ``HITL_*`` and
    ``REDIS_*`` (the tests' isolation).
    """
    drop: tuple[str, ...] = ("SLACK_",) if keep_hitl else ("SLACK_", "HITL_", "REDIS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stop_process(
    proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT, *, group: bool = False
) -> None:
    """SIGTERM, wait, then SIGKILL: RQ finishes the job at hand on SIGTERM.

    ``group=True`` signals the process group the child leads (``start_new_session``):
    a worker runs RQ's scheduler in a child process of its own, which must go too.
    """

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)

    if proc.poll() is None:
        send(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait()
    if group:
        send(signal.SIGKILL)  # a scheduler child that outlived its worker


def delete_prefix(conn: redis.Redis, prefix: str) -> None:
    """Remove a throwaway prefix's keys (and its RQ queues) from a shared Redis."""
    for pattern in (f"{prefix}:*", f"rq:*{prefix}-*"):
        batch = list(conn.scan_iter(match=pattern, count=1000))
        if batch:
            conn.delete(*batch)


def _bind_stand_in(host: str, port: int) -> SlackStandIn:
    """Start the stand-in on ``port``; a taken port is a one-line error naming ``--port``."""
    stand_in = SlackStandIn(bot_token=SANDBOX_TOKEN, host=host, port=port)
    try:
        return stand_in.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} is already in use (another hitl dev?); pick a free one with --port, "
                f"e.g. hitl dev --port {port + 1}"
            ) from None
        if exc.errno == errno.EACCES:
            raise PortInUse(f"port {port} needs privileges; pick one above 1024 with --port") from None
        raise


def _start_worker(
    env: dict[str, str], prefix: str, redis_url: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """A real ``hitl worker`` process, returned once it has registered with Redis."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hitl.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group (RQ's scheduler is a child of it), out of the terminal's
            # Ctrl-C: `hitl dev` stops it in order, after the demo agent.
            start_new_session=True,
        )
    conn = redis.Redis.from_url(redis_url)
    try:
        # Nothing to block on: a worker announces itself only by writing its registry key.
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while proc.poll() is None and not conn.scard(f"rq:workers:{prefix}-timers"):
            if time.monotonic() > deadline:
                stop_process(proc, group=True)
                raise ConfigError(
                    f"hitl worker did not start within {WORKER_START_TIMEOUT:g}s; see {log_path}"
                )
            time.sleep(0.05)
    finally:
        conn.close()
    if proc.poll() is not None:
        stop_process(proc, group=True)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise ConfigError("hitl worker exited at start: " + (" | ".join(tail) or f"see {log_path}"))
    return proc


def _free_port(host: str, port: int) -> int:
    """`port`, or a free one when 0 (bound and released: the bot binds it again at once)."""
    if port:
        return port
    probe = bind(host, 0)
    try:
        return int(probe.getsockname()[1])
    finally:
        probe.close()


def start_stack(
    *,
    port: int = DEFAULT_PORT,
    bot_port: int = 0,
    host: str = "127.0.0.1",
    redis_url: str | None = None,
    prefix: str | None = None,
    worker_env: dict[str, str] | None = None,
    isolated: bool = False,
    settings: Settings | None = None,
) -> DevStack:
    """Start Redis (embedded when ``redis_url`` and the settings name none), the stand-in
    with its page, the bot and a worker; return the running stack.

    ``isolated=True`` (tests) ignores the caller's environment and ``.env`` for the
    children and the bot, so a developer's real settings cannot leak in. On any failure,
    whatever was started is stopped again before the error propagates.
    """
    base = settings or (Settings(_env_file=None) if isolated else load_settings())  # type: ignore[call-arg]
    embedded: EmbeddedRedis | None = None
    cleanup_prefix = False
    url = redis_url or base.redis_url
    if prefix is None:
        if url and "prefix" not in base.model_fields_set:
            # A shared Redis gets a throwaway prefix: the sandbox's Slack forgets everything
            # when it stops, so its requests must not outlive it (or meet a previous run's).
            prefix, cleanup_prefix = f"hitl-dev-{secrets.token_hex(4)}", True
        else:
            prefix = base.prefix
    workdir = Path(tempfile.mkdtemp(prefix="hitl-dev-"))
    stack: DevStack | None = None
    with contextlib.ExitStack() as undo:
        undo.callback(shutil.rmtree, workdir, True)
        if not url:
            embedded = EmbeddedRedis().start()
            undo.callback(embedded.close)
            url = embedded.url
        stand_in = _bind_stand_in(host, port)
        undo.callback(stand_in.stop)
        secret = secrets.token_hex(16)
        api_key = secrets.token_urlsafe(24)
        # The bot's port is chosen now, so `/hitl dashboard` links can point at it.
        bot_port = _free_port(host, bot_port)
        admins = base.admins or [DEMO_ADMINS]
        bot_settings = base.model_copy(
            update={
                "redis_url": url,
                "prefix": prefix,
                "slack_bot_token": SecretStr(SANDBOX_TOKEN),
                "slack_signing_secret": SecretStr(secret),
                "slack_app_token": None,
                "slack_api_url": stand_in.url,
                "default_channel": DEFAULT_CHANNEL,
                "admins": admins,
                "api_keys": {API_KEY_NAME: SecretStr(api_key)},
                "public_url": base.public_url or f"http://{host}:{bot_port}",
            }
        )
        approvals = Approvals(bot_settings.redis, settings=bot_settings)
        undo.callback(approvals.close)
        app = build_app(bot_settings, approvals=approvals)
        # What `hitl bot` serves besides Slack and /v1: MCP at /mcp, behind the same key.
        mounts, lifespans = mcp.web_parts(approvals)
        web = build_web_app(approvals, bolt=app, signing_secret=secret, mounts=mounts, lifespans=lifespans)
        bot = WebServer(web, host=host, port=bot_port).start()
        undo.callback(bot.stop)
        page = SandboxPage(stand_in, bot.url, secret).mount()
        env = {
            "REDIS_URL": url,
            "HITL_REDIS_PREFIX": prefix,
            "SLACK_BOT_TOKEN": SANDBOX_TOKEN,
            "SLACK_API_URL": stand_in.url,
            "HITL_DEFAULT_CHANNEL": DEFAULT_CHANNEL,
            "HITL_ADMINS": ",".join(admins),
            **(worker_env or {}),
        }
        worker = _start_worker(child_env(env, keep_hitl=not isolated), prefix, url, workdir / "worker.log")
        stack = DevStack(
            redis_url=url,
            prefix=prefix,
            stand_in=stand_in,
            page=page,
            bot=bot,
            approvals=approvals,
            worker=worker,
            signing_secret=secret,
            api_key=api_key,
            workdir=workdir,
            embedded=embedded,
            cleanup_prefix=cleanup_prefix,
        )
        undo.pop_all()
    assert stack is not None
    return stack


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[DevStack]:
    """``start_stack`` as a context manager."""
    stack = start_stack(**kwargs)
    try:
        yield stack
    finally:
        stack.stop()


def _quiet_logs() -> None:
    """Keep the terminal for the demo agent: libraries say only warnings and errors."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def banner(stack: DevStack, *, demo: bool) -> str:
    """What ``hitl dev`` prints once everything runs."""
    redis_line = f"embedded, {stack.redis_url}" if stack.embedded else stack.redis_url
    env = f"REDIS_URL={stack.redis_url} HITL_REDIS_PREFIX={stack.prefix}"
    lines = [
        "",
        "hitl dev: the whole product on this machine, no Slack workspace needed.",
        "",
        f"  Open the sandbox (a local Slack):  {stack.page_url}",
        "",
        f"  Redis   {redis_line} (prefix {stack.prefix})",
        f"  Bot     {stack.bot.url} (the real Bolt app, requests signed like Slack's)",
        f"  Worker  pid {stack.worker.pid} (log: {stack.worker_log})",
        f"  Agent   {'the demo agent files sample requests below' if demo else 'none (--no-demo)'}",
        "",
        "  File your own request from another terminal:",
        f"    {env} hitl request --action deploy --summary 'Deploy v1.2' --wait",
        "",
        f"  Or over HTTP (API key {API_KEY_NAME!r}; docs at {stack.bot.base_url}/docs):",
        f"    curl -s -X POST {stack.bot.base_url}/v1/requests -H 'Authorization: Bearer {stack.api_key}' "
        "-H 'Content-Type: application/json' -d '{\"action\": \"deploy\", \"summary\": \"Deploy v1.2\"}'",
        "",
        f"  Or as MCP tools (streamable HTTP at {stack.mcp_url}, the same key), e.g. for Claude Code:",
        f"    claude mcp add --transport http hitl {stack.mcp_url} "
        f"--header 'Authorization: Bearer {stack.api_key}'",
        "",
        "  Watch it live: type /hitl dashboard in the sandbox for a private dashboard link;",
        f"  Prometheus scrapes {stack.bot.base_url}/metrics",
        "",
        "  Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def run(*, port: int = DEFAULT_PORT, demo: bool = True, bot_port: int = 0, verbose: bool = False) -> int:
    """``hitl dev``: start the stack, print the page's address, run until Ctrl-C or SIGTERM."""
    if not verbose:
        _quiet_logs()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack = start_stack(port=port, bot_port=bot_port)
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    status = 0
    try:
        print(banner(stack, demo=demo), flush=True)
        if demo:
            client = WebClient(token=SANDBOX_TOKEN, base_url=stack.stand_in.url)
            for line in seed(stack.approvals, client, stack.approvals.settings).lines():
                print(line, flush=True)
            stack.start_demo()
        while not stop.wait(0.5):
            if stack.worker.poll() is not None:
                print(f"hitl dev: the worker exited (code {stack.worker.returncode}); see {stack.worker_log}",
                      file=sys.stderr, flush=True)
                status = 1
                break
        print("\nhitl dev: stopping…", flush=True)
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("hitl dev: stopped.", flush=True)
    return status


__all__ = ["DevStack", "PortInUse", "child_env", "run", "running_stack", "start_stack"]
