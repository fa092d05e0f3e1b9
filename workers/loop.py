"""The start/stop every background loop of `hitl worker` shares.

A loop runs one or more daemon threads until its stop event is set. `stop()` sets the
event, wakes whatever the threads wait on (`_wake`), then joins each thread for at most
`join_timeout` seconds: a thread stuck in a slow call must not hold the process's exit
forever (its work comes back by lease). Both `start()` and `stop()` are idempotent, so the
runner may stop a loop that a failed start left half started, or stop it twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Self

# One thread of a loop: its name and what it runs.
ThreadSpec = tuple[str, Callable[[], None]]


class Loop:
    """Base of the worker's background loops: subclasses list their threads in `_threads`."""

    name = "loop"
    # Seconds `stop()` waits for each thread.
    join_timeout = 5.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._started: list[threading.Thread] = []

    def _threads(self) -> list[ThreadSpec]:
        """(thread name, target) for each thread the loop runs."""
        raise NotImplementedError

    def _wake(self) -> None:
        """Called by `stop()` after the stop event is set: wake threads that wait on
        something other than the event (a condition, a queue)."""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> Self:
        if self._started:
            return self
        self._started = [
            threading.Thread(target=target, name=name, daemon=True) for name, target in self._threads()
        ]
        for thread in self._started:
            thread.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        for thread in self._started:
            thread.join(self.join_timeout)
