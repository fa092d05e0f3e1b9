"""``hitl dev`` as a user runs it: a real process, its terminal output, Ctrl-C / SIGTERM.

No browser needed here: these check the orchestration (everything starts, the address is
printed, the demo agent reports a decision made elsewhere, everything stops, a busy port
is one clear line).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from queue import Empty, Queue

import pytest
from hitl_sandbox.dev import child_env

from hitl import Approvals
from tests.conftest import make_settings
from tests.helpers import ROOT

# Seconds `hitl dev` gets to print its address (it starts a worker process first).
START_TIMEOUT = 30.0


class Terminal:
    """The output of a ``hitl dev`` process, line by line, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: Queue[str | None] = Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """Block until a line matches ``pattern`` (a blocking queue read, no polling)."""
        regex = re.compile(pattern)
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except Empty:
                raise AssertionError(f"no line matching {pattern!r}; got {self.lines}") from None
            if line is None:
                raise AssertionError(f"hitl dev ended before {pattern!r}; output: {self.lines}")
            self.lines.append(line)
            found = regex.search(line)
            if found:
                return found


@pytest.fixture
def dev(redis_url: str, prefix: str) -> Iterator[tuple[subprocess.Popen[str], Terminal]]:
    env = child_env({"REDIS_URL": redis_url, "HITL_REDIS_PREFIX": prefix}, keep_hitl=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl.cli", "dev", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield proc, Terminal(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (the worker leads its own, RQ's scheduler in it)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hitl_dev_runs_the_demo_and_stops_cleanly(
    dev: tuple[subprocess.Popen[str], Terminal], redis_url: str, prefix: str
) -> None:
    proc, terminal = dev
    url = terminal.expect(r"Open the sandbox \(a local Slack\):\s+(http://127\.0\.0\.1:\d+/_sandbox/)").group(1)
    worker_pid = int(terminal.expect(r"Worker\s+pid (\d+)").group(1))
    terminal.expect(r"seeded: 5 tag_ticket requests approved by bob; a promotion proposal waits in #eng-leads")
    with urllib.request.urlopen(url, timeout=5) as page:
        assert page.status == 200
        assert b"hitl-router" in page.read()

    email = terminal.expect(r"send_email \((\w+)\): waiting for approval").group(1)
    with Approvals(settings=make_settings(redis_url, prefix)) as approvals:
        approvals.decide(email, "approve", by="U0ALICE")
    terminal.expect(r"agent: ✅ send_email approved by alice → sending 200 emails")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert "hitl dev: stopped." in terminal.expect(r"hitl dev: stopped\.").group(0)
    assert not _group_alive(worker_pid), "the worker (or its scheduler) outlived hitl dev"
    assert not any("Traceback" in line for line in terminal.lines), terminal.lines


def test_a_busy_port_is_one_clear_line(redis_url: str, prefix: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = child_env({"REDIS_URL": redis_url, "HITL_REDIS_PREFIX": prefix}, keep_hitl=False)
        done = subprocess.run(
            [sys.executable, "-m", "hitl.cli", "dev", "--no-demo", "--port", str(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
        )
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} is already in use" in lines[0]
    assert "--port" in lines[0]
