"""A parent with the worker already imported, forking `hitl worker` processes for the tests.

Starting `python -m hitl.cli worker` spends 1 to 2 s of CPU importing redis, rq, slack_sdk,
pydantic and the product before it does anything, and the suite starts some 200 workers: on a
2-core machine that was a quarter of `make test`. A zygote (as Android's, or gunicorn's preload)
imports all of that once per test process and forks a child per worker. The child is still a
real, separate `hitl worker` process: its own pid and session (so `os.killpg` reaches RQ's
scheduler child too), its own environment, its log file on stdout and stderr, SIGTERM and
SIGKILL as in production. Only the imports are shared, read-only, through fork.

What would differ from a fresh interpreter is module state set at import time from the
environment; nothing in `hitl`, `bot` or `workers` reads the environment at import (settings,
tracing and logging are configured when the command runs), and tests that are about the
process starting itself (`hitl worker --help`, its warnings) still run the console script.

Protocol, one JSON line each way over the zygote's stdin and stdout:
    {"op": "spawn", "argv": [...], "env": {...}, "cwd": "...", "log": "..."} -> {"pid": N}
    {"op": "status", "pid": N} -> {"returncode": int | null}
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


# -- the zygote process ---------------------------------------------------------------------


def _preload() -> None:
    """Everything `hitl worker` imports before it listens."""
    import hitl.cli  # noqa: F401
    import workers.commands
    import workers.runner  # noqa: F401


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the worker process the request describes, then exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(devnull)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["hitl", *request["argv"]]
    code: int = 1
    try:
        from hitl.cli import main

        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # the child reports everything, as an interpreter would
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    _preload()
    if threading.active_count() != 1:
        # fork keeps only the calling thread: a thread started by an import would be lost (and
        # any lock it held stay held) in every worker
        raise SystemExit(f"zygote: imports started threads: {threading.enumerate()}")
    codes: dict[int, int] = {}

    def reap(*_: object) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            codes[pid] = os.waitstatus_to_exitcode(status)

    signal.signal(signal.SIGCHLD, reap)
    reader, writer = sys.stdin.buffer, sys.stdout.buffer
    writer.write(b'{"ready": true}\n')
    writer.flush()
    for line in reader:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict[str, Any] = {"pid": pid}
        else:
            pid = request["pid"]
            reap()
            answer = {"returncode": codes.get(pid)}
        writer.write(json.dumps(answer).encode() + b"\n")
        writer.flush()


# -- the tests' side ------------------------------------------------------------------------


class Zygote:
    """The test process's zygote: started on first use, stopped when the test process exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.zygote"], cwd=ROOT, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                atexit.register(self._proc.kill)
                self._read()
            proc = self._proc
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the test zygote exited ({self._proc.wait()}): see the test's stderr")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def spawn(self, argv: list[str], *, env: dict[str, str], log: str) -> ForkedProcess:
        pid = int(self._ask({"op": "spawn", "argv": argv, "env": env, "cwd": str(ROOT), "log": log})["pid"])
        return ForkedProcess(self, pid, ["hitl", *argv])

    def returncode(self, pid: int) -> int | None:
        code = self._ask({"op": "status", "pid": pid})["returncode"]
        return None if code is None else int(code)


class ForkedProcess:
    """The slice of `subprocess.Popen` the tests use, for a process the zygote forked."""

    def __init__(self, zygote: Zygote, pid: int, args: list[str]) -> None:
        self._zygote = zygote
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.log_path = ""
        # a pidfd names this process, not its number: it becomes readable when the process ends,
        # even though it is the zygote's child and not ours
        self._pidfd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        if self.returncode is None and self._ended(0):
            self.returncode = self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self._ended(timeout):
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode = self._collect()
        return self.returncode

    def _ended(self, timeout: float | None) -> bool:
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        return bool(readable)

    def _collect(self) -> int:
        # ended, so the zygote's SIGCHLD handler reaps it at once; ask until it has
        while (code := self._zygote.returncode(self.pid)) is None:
            select.select([], [], [], 0.001)
        os.close(self._pidfd)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # through the pidfd: never a later process given the same pid
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


ZYGOTE = Zygote()


def spawn_worker(argv: list[str], *, env: dict[str, str], log: IO[bytes]) -> ForkedProcess:
    """A `hitl <argv>` process forked from this test process's zygote, writing to `log`."""
    proc = ZYGOTE.spawn(argv, env=env, log=log.name)
    proc.log_path = log.name
    return proc


if __name__ == "__main__":
    serve()
