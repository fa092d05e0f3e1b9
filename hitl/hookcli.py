"""`hitl hook claude-code`: Claude Code's command hook, answered by reviewers in Slack.

Claude Code runs the command with the hook event on standard input and reads the decision
from standard output (exit 0). This command only relays: it posts the event to the web
process's `POST /v1/hooks/claude-code` with `HITL_API_KEY`, where the policy is checked
(`bot.gateway.hooks`; the machine running Claude Code holds no Redis credentials and no
policy), and prints the answer.

It fails closed. Claude Code treats a hook that exits with any code but 0 or 2, or prints
no JSON, as a non-blocking error and runs the tool; so every failure here (no key, the
server down, a refused key, malformed input, a bad argument) is printed as a deny whose
reason says what to fix, with exit 0. Only when even that cannot be written does the
command exit 2, Claude Code's "block", with the reason on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import IO, Any

import httpx

from hitl import claude_code
from hitl.claude_code import HookEvent
from hitl.errors import ConfigError, InvalidRequest
from hitl.settings import load_settings

HOOK_PATH = "/v1/hooks/claude-code"
# Default and longest wait (seconds): under Claude Code's default 60 s hook timeout.
DEFAULT_WAIT, MAX_WAIT = 55.0, 60.0
# Kept for the HTTP round trip beyond the server's own hold (seconds).
TRANSPORT_MARGIN = 4.0
# Largest event read from standard input.
MAX_EVENT = 1024 * 1024
# Claude Code's exit code for "block this tool call" (reason on stderr).
EXIT_BLOCK = 2


def parse_wait(argv: Sequence[str]) -> float:
    """`--wait SECONDS` from the command's own arguments; `InvalidRequest` for anything else
    (not argparse's exit: an unusable argument must still answer deny)."""
    parser = argparse.ArgumentParser(prog="hitl hook claude-code", add_help=False, exit_on_error=False)
    parser.add_argument("--wait", default=str(DEFAULT_WAIT))
    try:
        args, unknown = parser.parse_known_args(list(argv))
    except argparse.ArgumentError as exc:
        raise InvalidRequest("--wait", str(exc)) from None
    if unknown:
        raise InvalidRequest("arguments", f"unknown {' '.join(unknown)!r}; only --wait SECONDS is accepted")
    try:
        wait = float(args.wait)
    except ValueError:
        raise InvalidRequest("--wait", f"{args.wait!r} is not a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidRequest("--wait", f"must be between 0 and {MAX_WAIT:g} seconds, got {args.wait}")
    return wait


def relay(raw: bytes, wait: float, *, api_url: str | None, api_key: str | None) -> dict[str, Any]:
    """The hook output for the event `raw`: the server's answer, or a deny saying what failed."""
    event = claude_code.event_name(raw)
    try:
        claude_code.parse_event(raw)  # the person sees a bad event's problem without a round trip
    except InvalidRequest as exc:
        return claude_code.fail_closed(event, f"bad hook event on standard input: {exc}")
    if not api_url or not api_key:
        return claude_code.fail_closed(
            event, "set HITL_API_URL (the hitl web process) and HITL_API_KEY (from `hitl keys create`) "
            "in the environment Claude Code runs hooks in",
        )
    url = f"{api_url}{HOOK_PATH}"
    try:
        response = httpx.post(
            url, content=raw, params={"wait": f"{wait:g}"},
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=httpx.Timeout(10.0, read=wait + TRANSPORT_MARGIN),
        )
    except httpx.TimeoutException:
        return claude_code.fail_closed(
            event, f"{url} did not answer within {wait + TRANSPORT_MARGIN:g} s; any request it filed stays "
            "pending in Slack, and the same call made again re-attaches to it",
        )
    except httpx.HTTPError as exc:
        problem = f"could not reach hitl at {url} ({exc}); is `hitl bot` running?"
        return claude_code.fail_closed(event, problem)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 401:
        return claude_code.fail_closed(
            event, f"the hitl API refused HITL_API_KEY ({_error(body)}): check the key (`hitl keys list`)"
        )
    if response.status_code != 200 or not isinstance(body, dict):
        return claude_code.fail_closed(event, f"{url} answered {response.status_code} ({_error(body)})")
    body.pop("error", None)
    return body


def _error(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return "no error message"


def run(argv: Sequence[str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """The whole command: read, relay, print; deny on every failure."""
    event = HookEvent.PRE_TOOL_USE
    try:
        raw = stdin.read(MAX_EVENT + 1)
        event = claude_code.event_name(raw)
        if len(raw) > MAX_EVENT:
            answer = claude_code.fail_closed(event, f"the hook event is over {MAX_EVENT:,} bytes")
        else:
            wait = parse_wait(argv)
            settings = load_settings()
            key = settings.api_key.get_secret_value() if settings.api_key else None
            answer = relay(raw, wait, api_url=settings.api_url, api_key=key)
    except (InvalidRequest, ConfigError) as exc:
        answer = claude_code.fail_closed(event, str(exc))
    except Exception as exc:  # fail closed: nothing that goes wrong here may let the tool run
        answer = claude_code.fail_closed(event, f"{type(exc).__name__}: {exc}")
    try:
        stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        stdout.flush()
    except OSError as exc:
        stderr.write(f"{claude_code.FAIL_CLOSED}: could not write the answer ({exc})\n")
        return EXIT_BLOCK
    return 0


def main(argv: Sequence[str]) -> int:
    return run(argv, sys.stdin.buffer, sys.stdout, sys.stderr)


__all__ = ["DEFAULT_WAIT", "MAX_WAIT", "main", "parse_wait", "relay", "run"]
