"""Item 14: `hitl worker` and `hitl bot` say at start when Redis would lose or evict data."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis

from hitl.durability import Finding, check
from hitl.embedded import free_port
from tests.helpers import ROOT, eventually, hitl_env, signal_group, stop
from tests.private_redis import PrivateRedis

SAFE = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction")

CASES = [
    pytest.param(SAFE, [], id="aof-everysec-noeviction"),
    pytest.param(("--appendonly", "no", "--save", ""), ["Redis persistence is off"], id="no-persistence"),
    pytest.param(("--appendonly", "no", "--save", "900", "1"), ["keeps only RDB snapshots"], id="rdb-only"),
    pytest.param(("--appendonly", "yes", "--appendfsync", "no"), ["appendfsync is no"], id="fsync-no"),
    pytest.param(
        ("--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"), ["maxmemory-policy is allkeys-lru"],
        id="evicting",
    ),
    pytest.param(
        ("--appendonly", "no", "--save", "", "--maxmemory-policy", "volatile-ttl"),
        ["Redis persistence is off", "maxmemory-policy is volatile-ttl"], id="both",
    ),
    pytest.param(("--rename-command", "CONFIG", '""'), ["could not check Redis"], id="config-refused"),
]


def _worker_output(url: str, prefix: str) -> list[str]:
    """The lines a real `hitl worker --burst` logs about Redis durability."""
    done = subprocess.run(
        [sys.executable, "-m", "hitl.cli", "worker", "--burst"], env=hitl_env(url, prefix), cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stderr.splitlines() if "hitl.durability" in line]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_worker_warns_once_per_problem(prefix: str, args: tuple[str, ...], expected: list[str]) -> None:
    with PrivateRedis(*args) as server:
        lines = _worker_output(server.url, prefix)
    assert len(lines) == len(expected), lines
    for line, text in zip(lines, expected, strict=True):
        assert text in line and "hitl worker:" in line
        level = "INFO" if "could not check" in text else "WARNING"
        assert f" {level} " in line
        if level == "WARNING":
            assert " set " in line  # says what to set


def test_config_refused_is_reported_not_raised() -> None:
    with PrivateRedis("--rename-command", "CONFIG", '""') as server:
        conn = redis.Redis.from_url(server.url)
        try:
            assert [r.finding for r in check(conn, "test")] == [Finding.UNCHECKED]
        finally:
            conn.close()


def test_bot_warns_at_start(prefix: str) -> None:
    with PrivateRedis("--appendonly", "no", "--save", "") as server:
        log = Path(tempfile.mkdtemp(prefix="hitl-bot-")) / "bot.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hitl.cli", "bot", "--port", str(free_port())],
                env=hitl_env(server.url, prefix, SLACK_SIGNING_SECRET="s", SLACK_BOT_TOKEN="xoxb-test"),
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            eventually(lambda: proc.poll() is not None or "listening" in log.read_text(), 30, "the bot to start")
        finally:
            stop(proc)
            signal_group(proc, 9)
    lines = [line for line in log.read_text().splitlines() if "hitl.durability" in line]
    assert len(lines) == 1 and "hitl bot: Redis persistence is off" in lines[0], log.read_text()
