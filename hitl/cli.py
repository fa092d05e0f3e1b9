"""The `hitl` console script.

The `worker`, `bot`, `mcp` and `dev` subcommands load the `workers` and `bot` packages on demand;
the core library (`import hitl`) never imports them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import redis

from hitl import logs, tracing
from hitl.errors import ConfigError, HitlError
from hitl.settings import load_settings
from hitl.status import Mode, Status

# `hitl request --wait` exit codes (SPEC).
EXIT_APPROVED, EXIT_REJECTED, EXIT_EXPIRED, EXIT_ERROR = 0, 1, 2, 3
# Every final status has a code; a withdrawn request is "do not act", like a rejection.
# Shadow requests are never waited on (see `_request`), so `judged` never reaches this map
# through `--wait`; it still means "go ahead", as shadow never blocks the agent.
_EXIT_BY_STATUS: dict[Status, int] = {
    Status.APPROVED: EXIT_APPROVED,
    Status.FINALIZED: EXIT_APPROVED,
    Status.JUDGED: EXIT_APPROVED,
    Status.REJECTED: EXIT_REJECTED,
    Status.VETOED: EXIT_REJECTED,
    Status.CANCELLED: EXIT_REJECTED,
    Status.EXPIRED: EXIT_EXPIRED,
}
# Modes whose agent waits for a human: the rest act at once, so `--wait` returns at once.
_BLOCKING_MODES = frozenset({Mode.GATE, Mode.OVERRIDE})


def exit_code(status: Status, mode: Mode) -> int:
    """SPEC's exit code for what `--wait` saw: 0 approved or finalized, 1 rejected, vetoed
    or cancelled, 2 expired, 3 error. A shadow request is filed and the agent goes ahead
    (shadow measures the human, it never gates), so it exits 0 while still pending."""
    if mode is Mode.SHADOW:
        return EXIT_APPROVED
    return _EXIT_BY_STATUS.get(status, EXIT_ERROR)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3 (SPEC's "error"), not argparse's 2, which means "expired"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"hitl: error: {message}\n")


def parse_param(text: str) -> tuple[str, Any]:
    """`key=value`; the value is read as JSON when it parses (numbers, booleans, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--param wants key=value, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _request(args: argparse.Namespace) -> int:
    from hitl.client import Approvals

    approvals = Approvals()
    handle = approvals.request(
        action=args.action,
        summary=args.summary,
        params=dict(args.param or []),
        context=args.context,
        agent=args.agent,
        run_id=args.run_id,
        mode=args.mode,
        channel=args.channel,
        timeout=args.timeout,
        window=args.window,
        approvers=args.approver,
        requested_by=args.requested_by,
        risk=args.risk,
        reversible=args.reversible,
        idempotency_key=args.idempotency_key,
    )
    print(f"request {handle.id} filed ({handle.mode})", file=sys.stderr)
    if not args.wait:
        print(handle.id)
        return EXIT_APPROVED
    decision = handle.wait() if handle.mode in _BLOCKING_MODES else handle.fetch().decision()
    print(json.dumps(decision.model_dump(mode="json")))
    if handle.mode is Mode.SHADOW:
        print(f"{decision.status}: shadow mode never blocks; go ahead, the reviewer's answer is measured",
              file=sys.stderr)
    else:
        who = f" by {', '.join(decision.by)}" if decision.by else ""
        why = f": {decision.comment}" if decision.comment else ""
        print(f"{decision.status}{who}{why}", file=sys.stderr)
    return exit_code(decision.status, handle.mode)


def _log_format() -> str:
    """HITL_LOG_FORMAT, read before anything else logs (a bad value is reported later)."""
    try:
        return load_settings().log_format
    except ConfigError:
        return "text"


def _worker(args: argparse.Namespace) -> int:
    tracing.setup("hitl-worker")
    runner = importlib.import_module("workers.runner")
    runner.run(load_settings(), burst=args.burst, fork=args.fork)
    return 0


def _dev(args: argparse.Namespace) -> int:
    dev = importlib.import_module("sandbox.dev")
    return int(dev.run(port=args.port, demo=not args.no_demo, bot_port=args.bot_port, verbose=args.verbose))


def _bot(args: argparse.Namespace) -> int:
    tracing.setup("hitl-bot")
    settings = load_settings()
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    importlib.import_module("bot.main").run(settings)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    importlib.import_module("bot.mcp").run_stdio(load_settings())
    return 0


def _policy_check(args: argparse.Namespace) -> int:
    from hitl.policy import Policy

    policy = Policy.load(Path(args.file))  # a ConfigError names the offending key
    print(f"{args.file}: OK ({len(policy.actions)} actions, {len(policy.rules)} rules)")
    return 0


def _audit_export(args: argparse.Namespace) -> int:
    import redis

    from hitl.audit import export, since_seconds
    from hitl.keys import Keys

    settings = load_settings()
    conn = redis.Redis.from_url(settings.redis)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        n = export(conn, Keys(settings.prefix), out, since_seconds(args.since))
    finally:
        if args.output:
            out.close()
    print(f"exported {n} events", file=sys.stderr)
    since = since_seconds(args.since)
    if since is None or since < time.time() - settings.audit_retention:
        print(
            f"note: events older than HITL_AUDIT_RETENTION ({settings.audit_retention / 86400:g} days) "
            "are trimmed by the workers; archive with a scheduled export run more often than that",
            file=sys.stderr,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hitl", description="Approvals for AI agents, decided in Slack.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    req = sub.add_parser("request", help="file a request from a shell; --wait to gate on it")
    req.add_argument("--action", required=True)
    req.add_argument("--summary", required=True)
    req.add_argument("--param", action="append", type=parse_param, metavar="KEY=VALUE")
    req.add_argument("--context")
    req.add_argument("--agent")
    req.add_argument("--run-id")
    req.add_argument("--mode", choices=[m.value for m in Mode])
    req.add_argument("--channel")
    req.add_argument("--timeout", type=float, metavar="SECONDS")
    req.add_argument("--window", type=float, metavar="SECONDS")
    req.add_argument("--approver", action="append", metavar="USER_OR_GROUP")
    req.add_argument("--requested-by", metavar="USER")
    req.add_argument("--risk", choices=["low", "medium", "high", "critical"])
    req.add_argument("--irreversible", dest="reversible", action="store_false", default=None)
    req.add_argument("--idempotency-key")
    req.add_argument(
        "--wait", action="store_true",
        help=(
            "block until decided; exit 0 approved or finalized, 1 rejected, vetoed or cancelled, "
            "2 expired, 3 error. A shadow request never blocks: it is printed as filed "
            "(status pending) and exits 0"
        ),
    )
    req.set_defaults(func=_request)

    wrk = sub.add_parser("worker", help="run an RQ worker and the timer ticker (no RQ scheduler)")
    wrk.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    wrk.add_argument("--fork", action="store_true", help="run each job in a forked work horse")
    wrk.set_defaults(func=_worker)

    bot = sub.add_parser("bot", help="run the Slack app: Socket Mode with SLACK_APP_TOKEN, else HTTP")
    bot.add_argument("--port", type=int, help="HTTP port (default $PORT or 3000)")
    bot.set_defaults(func=_bot)

    dev = sub.add_parser(
        "dev", help="the whole product on this machine: Redis, Slack sandbox page, bot, worker, demo agent"
    )
    dev.add_argument("--port", type=int, default=8080, help="port of the sandbox page (default 8080)")
    dev.add_argument("--bot-port", type=int, default=0, help="port of the bot (default: any free)")
    dev.add_argument("--no-demo", action="store_true", help="do not start the demo agent")
    dev.set_defaults(func=_dev)

    mcp = sub.add_parser("mcp", help="the MCP server on stdio (for Claude Code, Claude Desktop, Cursor)")
    mcp.set_defaults(func=_mcp)

    pol = sub.add_parser("policy", help="policy tools")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    check = pol_sub.add_parser("check", help="validate a policy file; errors name the offending key")
    check.add_argument("file")
    check.set_defaults(func=_policy_check)

    aud = sub.add_parser("audit", help="the audit log")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    exp = aud_sub.add_parser("export", help="write every event as JSON Lines")
    exp.add_argument(
        "--since",
        help=(
            "only events newer than this, e.g. 7d or 12h. Workers trim events older than "
            "HITL_AUDIT_RETENTION (default 90d): to archive everything, run e.g. "
            "`hitl audit export --since 2d -o audit-$(date +%%F).jsonl` daily (overlaps are "
            "harmless: each line has its event_id)"
        ),
    )
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.set_defaults(func=_audit_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(_log_format(), logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"hitl: configuration error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except HitlError as exc:
        print(f"hitl: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except redis.RedisError as exc:
        print(f"hitl: error: Redis at {_redis_location()} failed: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _redis_location() -> str:
    """Where REDIS_URL points, without its password, for the one-line Redis error."""
    try:
        url = urlsplit(load_settings().redis)
    except ConfigError:
        return "REDIS_URL"
    return url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()


if __name__ == "__main__":
    sys.exit(main())
