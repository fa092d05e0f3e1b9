"""The `hitl` console script.

The core's own subcommands (`request`, `policy`, `audit`) live here. The others (`bot` and
`mcp` from the `bot` package, `worker` from `workers`, `dev` from the separate sandbox
distribution) are found through the `hitl.commands` entry points those distributions declare,
so the core never names, let alone imports, the packages built on top of it: dependencies run
`hitl` <- `bot` <- `workers`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from hitl import logs
from hitl.errors import ConfigError, HitlError
from hitl.settings import load_settings
from hitl.status import Mode, Status

if TYPE_CHECKING:
    from hitl.apikeys import ApiKeyStore
    from hitl.policystore import PolicyStore
    from hitl.settings import Settings

# `hitl request --wait` exit codes (the contract, docs/contract.md).
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
# The entry-point group where `bot` and `workers` declare their subcommands. Each entry point is
# a `Register`: called with the subparsers, it adds its own (arguments, help, and `func`).
COMMANDS_GROUP = "hitl.commands"
Subcommands = argparse._SubParsersAction  # what a `Register` receives (argparse's own type)
Register = Callable[[Subcommands], None]
# Where the plugin commands come from, for the usage error when none is installed.
_NOT_INSTALLED = (
    "the bot, mcp and worker commands are declared as entry points of the installed "
    "hitl-router distribution: install it (`pip install -e .`, or `make venv`)"
)
# `hitl dev` belongs to the sandbox distribution, which a production install leaves out.
_NO_SANDBOX = (
    "`hitl dev` comes with the local Slack sandbox, a separate distribution: "
    "`pip install -e sandbox` in a clone of hitl-router, or run `make demo`"
)

# Modes whose agent waits for a human: the rest act at once, so `--wait` returns at once.
_BLOCKING_MODES = frozenset({Mode.GATE, Mode.OVERRIDE})


def exit_code(status: Status, mode: Mode) -> int:
    """The contract's exit code for what `--wait` saw: 0 approved or finalized, 1 rejected, vetoed
    or cancelled, 2 expired, 3 error. A shadow request is filed and the agent goes ahead
    (shadow measures the human, it never gates), so it exits 0 while still pending."""
    if mode is Mode.SHADOW:
        return EXIT_APPROVED
    return _EXIT_BY_STATUS.get(status, EXIT_ERROR)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3 (the contract's "error"), not argparse's 2, which means "expired"."""

    def error(self, message: str) -> NoReturn:
        if "invalid choice" in message and not plugin_commands():
            message = f"{message}\n({_NOT_INSTALLED})"
        elif "invalid choice: 'dev'" in message:
            message = f"{message}\n({_NO_SANDBOX})"
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


def _policy_check(args: argparse.Namespace) -> int:
    from hitl.policy import Policy

    policy = Policy.load(Path(args.file))  # a ConfigError names the offending key
    print(f"{args.file}: OK ({len(policy.actions)} actions, {len(policy.rules)} rules)")
    return 0


def _policy_store() -> PolicyStore:
    import redis

    from hitl.keys import Keys
    from hitl.policystore import PolicyStore

    settings = load_settings()
    return PolicyStore(redis.Redis.from_url(settings.redis), Keys(settings.prefix))


def _applier() -> str:
    """Who runs `hitl policy apply` when --by is not given: the login name."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _policy_apply(args: argparse.Namespace) -> int:
    from hitl.policy import Policy

    path = Path(args.file)
    policy, text = Policy.read(path)  # validated first: a ConfigError names the offending key
    from hitl.metrics import admit_policy_actions

    store = _policy_store()
    published = store.publish(policy, text, by=args.by or _applier(), source=str(path.resolve()))
    # The published policy's action names keep metric labels of their own.
    admit_policy_actions(store.redis, store.keys, policy.actions, load_settings().metrics_max_actions)
    if published.changed:
        print(f"version {published.version} published from {args.file} "
              f"({len(policy.actions)} actions, {len(policy.rules)} rules)")
    else:
        print(f"unchanged: version {published.version} in force")
    return 0


def _policy_show(args: argparse.Namespace) -> int:
    import yaml

    from hitl.views import iso

    store = _policy_store()
    in_force = store.current()
    meta = in_force.meta
    if meta is None:
        print("version 0 in force: no policy published (hitl policy apply FILE publishes one)")
    else:
        print(f"version {meta.version} in force, applied by {meta.applied_by} at {iso(meta.applied_at)} "
              f"from {meta.source or '(not said)'}")
        print(f"sha256 {meta.sha256}")
    error = store.last_error()
    if error is not None:
        print(f"last_error: {error.message} (at {iso(error.at)}; the version in force stays)")
    if meta is not None:
        print("---")
        text = meta.text or yaml.safe_dump(json.loads(meta.canonical), sort_keys=False)
        print(text.rstrip("\n"))
    return 0


def _policy_history(args: argparse.Namespace) -> int:
    from hitl.views import iso

    versions = _policy_store().history()
    if not versions:
        print("no policy published yet: version 0 in force")
        return 0
    from hitl.autonomy import change_summary

    print(f"{'VERSION':<8} {'APPLIED AT':<25} {'APPLIED BY':<20} {'WHY':<10} {'CHANGE':<36}  SOURCE")
    before = None
    for v in versions:
        policy = v.policy()
        print(f"{v.version:<8} {iso(v.applied_at) or '':<25} {v.applied_by[:20]:<20} {v.reason:<10} "
              f"{change_summary(before, policy):<36}  {v.source or '-'}")
        before = policy
    return 0


def _policy_diff(args: argparse.Namespace) -> int:
    import yaml

    from hitl.autonomy import diff

    store = _policy_store()
    found = {n: store.version(n) for n in (args.a, args.b)}
    missing = [str(n) for n, v in found.items() if v is None]
    if missing:
        print(f"no policy version {', '.join(missing)} (hitl policy history lists them)", file=sys.stderr)
        return 2
    a, b = found[args.a], found[args.b]
    assert a is not None and b is not None
    change = diff(a.policy(), b.policy())
    print(yaml.safe_dump(change, sort_keys=False).rstrip("\n") if change else "# no change")
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


def _key_store() -> tuple[ApiKeyStore, Settings]:
    import redis

    from hitl.apikeys import ApiKeyStore
    from hitl.keys import Keys

    settings = load_settings()
    return ApiKeyStore(redis.Redis.from_url(settings.redis), Keys(settings.prefix)), settings


def _keys_create(args: argparse.Namespace) -> int:
    from hitl.apikeys import KeyNameTaken, Rate

    store, settings = _key_store()
    if args.name in settings.api_keys:
        raise KeyNameTaken(f"{args.name!r} is already a key in HITL_API_KEYS; pick another name")
    try:
        rate = Rate.parse(args.rate or settings.api_rate)
        patterns = [p for p in (args.actions or "").split(",") if p.strip()]
        principal, secret = store.create(args.name, rate=rate, admin=args.admin, actions=patterns)
    except ValueError as exc:
        print(f"hitl: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    actions = ", ".join(principal.actions) or "every action"
    kind = "admin key (reads and cancels every request)" if principal.admin else "agent key"
    print(f"created {kind} {principal.name!r}: {actions}, at most {principal.rate}")
    print("the secret is shown once, below; store it now (only its hash is kept):")
    print(secret)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from hitl.views import iso

    store, settings = _key_store()
    rows = [("NAME", "ADMIN", "ACTIONS", "RATE", "CREATED")]
    for p in store.list():
        created = iso(p.created_at) or ""
        rows.append((p.name, "yes" if p.admin else "no", ",".join(p.actions) or "*", str(p.rate), created))
    for name in settings.api_keys:
        rows.append((name, "no", "*", settings.api_rate, "HITL_API_KEYS"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    store, settings = _key_store()
    if store.revoke(args.name):
        print(f"revoked {args.name!r}: its next call is refused (401)")
        return 0
    where = " (it is in HITL_API_KEYS: remove it there and restart)" if args.name in settings.api_keys else ""
    print(f"hitl: error: no stored API key named {args.name!r}{where}", file=sys.stderr)
    return EXIT_ERROR


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

    for entry in plugin_commands():
        _register(sub, entry)

    pol = sub.add_parser("policy", help="policy tools")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    check = pol_sub.add_parser("check", help="validate a policy file; errors name the offending key")
    check.add_argument("file")
    check.set_defaults(func=_policy_check)
    apply = pol_sub.add_parser(
        "apply",
        help="validate a policy file and publish it as the next version (the one every request follows)",
    )
    apply.add_argument("file")
    apply.add_argument(
        "--by", metavar="NAME", help="who applies it, for the history (default: your login name)"
    )
    apply.set_defaults(func=_policy_apply)
    show = pol_sub.add_parser(
        "show", help="the version in force: who applied it, when, from where, and the policy"
    )
    show.set_defaults(func=_policy_show)
    history = pol_sub.add_parser(
        "history", help="every published version: when, who, why (file, promotion, demotion), what changed"
    )
    history.set_defaults(func=_policy_history)
    pdiff = pol_sub.add_parser("diff", help="what changed from version A to version B, as YAML")
    pdiff.add_argument("a", type=int)
    pdiff.add_argument("b", type=int)
    pdiff.set_defaults(func=_policy_diff)

    keys = sub.add_parser("keys", help="API keys for agents (stored hashed in Redis)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    create = keys_sub.add_parser(
        "create", help="make a key; prints its secret once, as the last line",
    )
    create.add_argument("name", help="the key's name: recorded as `via` and shown on cards")
    create.add_argument(
        "--actions", metavar="PATTERN,...", help="actions it may file, e.g. send_*,crm.* (default: all)"
    )
    create.add_argument("--rate", metavar="N/s", help="calls per second it may make (default: HITL_API_RATE)")
    create.add_argument(
        "--admin", action="store_true", help="an operator's key: reads and cancels every request"
    )
    create.set_defaults(func=_keys_create)
    keys_sub.add_parser("list", help="every key: name, admin, actions, rate, created").set_defaults(
        func=_keys_list
    )
    revoke = keys_sub.add_parser("revoke", help="refuse a key from its next call on")
    revoke.add_argument("name")
    revoke.set_defaults(func=_keys_revoke)

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

    hook = sub.add_parser("hook", help="answer an agent's tool-call hooks with decisions from Slack")
    hook_sub = hook.add_subparsers(dest="hook_kind", required=True, parser_class=_Parser)
    claude = hook_sub.add_parser(
        "claude-code",
        help="Claude Code's PreToolUse / PermissionRequest command hook (event on stdin, answer on stdout)",
        description="Posts the hook event to HITL_API_URL's /v1/hooks/claude-code with HITL_API_KEY and "
        "prints the decision; every failure is printed as a deny (docs/mcp.md, \"Claude Code hooks\").",
    )
    claude.add_argument(
        "--wait", default="55", metavar="SECONDS",
        help="longest wait for a reviewer (0 to 60, default 55); then deny \"no decision yet\"",
    )
    claude.set_defaults(func=_hook_claude_code)
    return parser


def _hook_claude_code(args: argparse.Namespace) -> int:
    from hitl import hookcli

    return hookcli.main(["--wait", args.wait])


def plugin_commands() -> list[EntryPoint]:
    """The `hitl.commands` entry points of every installed distribution, by name."""
    return sorted(entry_points(group=COMMANDS_GROUP), key=lambda entry: entry.name)


def _register(sub: Subcommands, entry: EntryPoint) -> None:
    """Let `entry` add its subcommand. One that cannot load (a missing optional dependency, a
    broken install) still appears, and says why when run, so the rest of `hitl` keeps working."""
    try:
        register: Register = entry.load()
    except Exception as exc:  # any import failure of a plugin
        reason = f"{entry.value} could not be loaded: {type(exc).__name__}: {exc}"
        broken = sub.add_parser(entry.name, help=f"(unavailable: {reason})")
        broken.set_defaults(func=_unavailable(entry.name, reason))
        return
    register(sub)


def _unavailable(name: str, reason: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"hitl: error: the {name} command is unavailable: {reason}", file=sys.stderr)
        return EXIT_ERROR

    return run


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:2] == ["hook", "claude-code"] and not {"-h", "--help"} & set(given):
        # Not through argparse: a usage error must still answer Claude Code with a deny.
        from hitl import hookcli

        return hookcli.main(given[2:])
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
    except Exception as exc:
        # The Redis client is imported by the commands that talk to Redis, not here: `hitl
        # hook`, `--help` and a config error need none of its second of imports. A command
        # that never loaded it cannot have raised its error.
        redis = sys.modules.get("redis")
        if redis is None or not isinstance(exc, redis.RedisError):
            raise
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
