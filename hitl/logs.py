"""Log lines: human-readable by default, one JSON object per line with HITL_LOG_FORMAT=json.

JSON lines carry `ts`, `level`, `logger`, `message` and, where known, `request_id`,
`action` and `trace_id`, so a log pipeline can join them with traces and the audit.
The request id and action come from `log_context(...)` (set around the work on one
request: a click, a card sync, a timer) or from a call's `extra=`; the trace id from the
current OpenTelemetry span, else from `log_context(trace_id=...)` (the request's stored
trace, where no span is current: a card sync in the delivery loop).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from hitl import tracing

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields a record may carry (from `log_context` or `extra=`) that JSON lines include.
CONTEXT_FIELDS = ("request_id", "action")

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("hitl_log_context", default={})  # noqa: B039


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Attach request id / action / trace id to every line logged inside (this thread or
    task); fields given as None are left out."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if value:
                out[name] = str(value)
        trace_id = getattr(record, "trace_id", None) or tracing.current_trace_id() or bound.get("trace_id")
        if trace_id:
            out["trace_id"] = trace_id
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    """Set up the root logger in `fmt` ("text" or "json"), replacing earlier handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
