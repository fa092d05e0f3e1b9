"""Paused agent runs, kept where they survive the agent's process dying.

The OpenAI Agents adapter (`hitl.integrations.openai_agents`) stores the serialized
`RunState` of a run waiting on approvals, one entry per run id. It is the agent's own
history, not a decision: the decisions are read from the requests, never from this state.

`RunStates` keeps it in Redis (key in `hitl.keys`, expiring with the retention period), for
a client that holds a Redis connection. `FileRunStates` keeps it in a directory, for an
agent that talks to hitl over HTTP and holds no Redis credentials.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import redis

from hitl.errors import ConfigError
from hitl.keys import Keys


class RunStateStore(Protocol):
    """Where a paused run's state (JSON bytes) is kept between processes."""

    def save(self, run_id: str, data: bytes) -> None: ...
    def load(self, run_id: str) -> bytes | None: ...
    def delete(self, run_id: str) -> None: ...


class RunStates:
    """Owns one Redis string per paused run: its state as JSON bytes."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl: int) -> None:
        self.redis = client
        self.keys = keys
        self.ttl = ttl

    @classmethod
    def of(cls, approvals: Any) -> RunStates:
        """The Redis store of a client's own connection; a client without one (the HTTP
        transport) is told to pass a `FileRunStates` instead."""
        client = getattr(approvals, "redis", None)
        if not isinstance(client, redis.Redis):
            raise ConfigError(
                "this client holds no Redis connection: pass states=FileRunStates(directory) to keep "
                "paused runs on the agent's side"
            )
        return cls(client, approvals.keys, int(approvals.settings.retention))

    def save(self, run_id: str, data: bytes) -> None:
        self.redis.set(self.keys.run_state(run_id), data, ex=self.ttl)

    def load(self, run_id: str) -> bytes | None:
        raw = self.redis.get(self.keys.run_state(run_id))
        if raw is None:
            return None
        return raw if isinstance(raw, bytes) else str(raw).encode()

    def delete(self, run_id: str) -> None:
        self.redis.delete(self.keys.run_state(run_id))


class FileRunStates:
    """One file per paused run in `directory` (created if missing), written atomically."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, run_id: str) -> Path:
        return self.directory / f"{hashlib.sha256(run_id.encode()).hexdigest()}.json"

    def save(self, run_id: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(run_id))

    def load(self, run_id: str) -> bytes | None:
        try:
            return self._path(run_id).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, run_id: str) -> None:
        self._path(run_id).unlink(missing_ok=True)
