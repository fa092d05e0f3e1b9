"""HITL_LOG_FORMAT=json: one JSON object per line, with request id, action and trace id."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT, hitl_env

# A child process logs as `hitl` would: configured from the environment, inside the
# context a click or a card sync sets, inside a span.
_CODE = """
import logging
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from hitl import logs
from hitl.settings import load_settings
trace.set_tracer_provider(TracerProvider())
logs.configure(load_settings().log_format)
log = logging.getLogger("bot.slack.delivery")
log.info("plain line")
with trace.get_tracer("t").start_as_current_span("s") as span:
    with logs.log_context(request_id="06abc", action="deploy"):
        log.warning("card for %s not delivered: %s", "06abc", "channel_not_found")
    print("TRACE", format(span.get_span_context().trace_id, "032x"), flush=True)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("boom")
"""


def run(redis_url: str, prefix: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CODE], env=hitl_env(redis_url, prefix, **env), cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=True,
    )


def test_json_lines_carry_request_action_and_trace(redis_url: str, prefix: str) -> None:
    out = run(redis_url, prefix, HITL_LOG_FORMAT="json")
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [x["message"] for x in lines] == [
        "plain line", "card for 06abc not delivered: channel_not_found", "boom",
    ]
    plain, failed, boom = lines
    assert plain["level"] == "info" and plain["logger"] == "bot.slack.delivery"
    assert "request_id" not in plain and "trace_id" not in plain
    trace_id = out.stdout.split()[1]
    assert failed == {
        "ts": failed["ts"], "level": "warning", "logger": "bot.slack.delivery",
        "message": "card for 06abc not delivered: channel_not_found",
        "request_id": "06abc", "action": "deploy", "trace_id": trace_id,
    }
    assert failed["ts"].endswith("+00:00")
    assert "ZeroDivisionError" in boom["error"]


def test_default_stays_human_readable(redis_url: str, prefix: str) -> None:
    out = run(redis_url, prefix)
    first = out.stderr.splitlines()[0]
    assert first.endswith("INFO bot.slack.delivery: plain line")
    assert not first.startswith("{")


def test_a_bad_format_names_the_variable(redis_url: str, prefix: str) -> None:
    env = hitl_env(redis_url, prefix, HITL_LOG_FORMAT="xml")
    out = subprocess.run(
        [sys.executable, "-m", "hitl.cli", "request", "--action", "deploy", "--summary", "Deploy"], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 3
    assert out.stderr.startswith("hitl: configuration error: HITL_LOG_FORMAT:")
