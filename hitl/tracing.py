"""OpenTelemetry traces: one approval, agent to Slack to agent, as one trace.

Only `opentelemetry-api` is a dependency: without an SDK every span here is a no-op and
costs next to nothing. `hitl-router[otel]` adds the SDK and the OTLP exporter, set up by
`setup()` from the standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER`...).

The trace crosses processes through Redis: `request()` stores the caller's W3C trace
context (`traceparent`, and `tracestate` when set) with the request, and every later
step (the card post in a worker, the click in the bot, the transition, the webhook, the
waiter's wake) is a child of that stored context; the transition is a child of the
click when a person decided. A caller that is not traced gets a new trace whose root is
the `hitl.request` span. Spans whose parent is only known afterwards (the transition's,
the wake's, the traced caller's `hitl.request`) are built on a background thread every
0.1 s, so no decision or wake waits for span bookkeeping (`flush()` before exiting).

Span names: `hitl.request`, `hitl.card.post`, `hitl.click`, `hitl.transition`,
`hitl.webhook`, `hitl.wake`.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACER_NAME = "hitl"
# What a request stores is W3C trace context, whatever OTEL_PROPAGATORS says for HTTP.
_W3C = TraceContextTextMapPropagator()


class SpanName:
    """The spans of one approval's trace."""

    REQUEST = "hitl.request"
    CARD_POST = "hitl.card.post"
    CLICK = "hitl.click"
    TRANSITION = "hitl.transition"
    WEBHOOK = "hitl.webhook"
    WAKE = "hitl.wake"


# A provider used instead of the global one (`use_provider`), and the tracer of each.
_override: trace.TracerProvider | None = None
_tracers: dict[int, trace.Tracer] = {}


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Trace with `provider` instead of the global one (None: the global one again).

    OpenTelemetry sets its global provider once per process; benchmarks and tests that
    compare tracing on and off in one process switch here instead."""
    global _override
    _override = provider


def _provider() -> trace.TracerProvider:
    return _override if _override is not None else trace.get_tracer_provider()


def tracer() -> trace.Tracer:
    provider = _provider()
    found = _tracers.get(id(provider))
    if found is None:
        found = _tracers[id(provider)] = provider.get_tracer(TRACER_NAME)
    return found


def enabled() -> bool:
    """Whether an SDK is installed as the tracer provider (else spans are no-ops, and
    work done only to feed them is skipped)."""
    return not isinstance(_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers; empty when no span is recording."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    out: dict[str, str] = {}
    _W3C.inject(out)
    return out


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits), for log lines; None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def stored_trace_id(stored: Mapping[str, str] | None) -> str | None:
    """The trace id (32 hex digits) of a request's stored context, for log lines written
    where no span is current (a card sync, a timer); None when nothing was stored."""
    parts = (stored or {}).get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextmanager
def span(
    name: str, parent: Mapping[str, str] | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[trace.Span]:
    """A span named `name`: a child of the current span, else of the stored `parent`
    context (a request's `trace`), else a new trace."""
    ctx = None
    if parent and not trace.get_current_span().get_span_context().is_valid:
        ctx = _W3C.extract(dict(parent))
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer().start_as_current_span(name, context=ctx, attributes=attrs) as current:
        yield current


def begin(name: str, attributes: Mapping[str, Any] | None = None) -> trace.Span | None:
    """Start a span (a child of the current one) without making it current; None when
    tracing is off. End it with `finish`. Cheaper than `span()` on hot paths."""
    if not enabled():
        return None
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    return tracer().start_span(name, attributes=attrs)


def carrier_of(span: trace.Span) -> dict[str, str]:
    """The W3C trace context (traceparent) pointing at `span`, for storing with a request."""
    out: dict[str, str] = {}
    _W3C.inject(out, context=trace.set_span_in_context(span))
    return out


def finish(
    span: trace.Span | None, attributes: Mapping[str, Any] | None = None, error: str | None = None
) -> None:
    """End a span from `begin` now (its end is handed to the recorder, off the caller's path)."""
    if span is None:
        return
    for key, value in (attributes or {}).items():
        span.set_attribute(key, value)
    if error:
        span.set_status(trace.Status(trace.StatusCode.ERROR, error))
    end = time.time_ns()
    _recorder().put(lambda: span.end(end_time=end))


class RequestTrace:
    """The trace context `request()` stores: the caller's, when the caller is traced (then
    every later step is a child of the caller's span, and `hitl.request` is recorded off
    the hot path); else a new `hitl.request` span's, which starts the approval's trace.
    Nothing when tracing is off."""

    def __init__(self, attributes: Mapping[str, Any] | None = None) -> None:
        self.started = time.time_ns()
        self.attributes = dict(attributes or {})
        self.span: trace.Span | None = None
        self.carrier: dict[str, str] = {}
        if not enabled():
            return
        self.carrier = carrier()
        if not self.carrier:
            self.span = begin(SpanName.REQUEST, self.attributes)
            self.carrier = carrier_of(self.span) if self.span is not None else {}

    def stamp(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store the context in the request document."""
        if self.carrier:
            doc["trace"] = self.carrier
        return doc

    def done(self, attributes: Mapping[str, Any] | None = None, error: BaseException | None = None) -> None:
        """The request is stored (or failed with `error`): record its span."""
        if not self.carrier:
            return
        attrs = {**self.attributes, **(attributes or {})}
        if self.span is not None:
            finish(self.span, attrs, f"{type(error).__name__}: {error}" if error else None)
        else:
            record(SpanName.REQUEST, None, self.started, attrs)


def record(
    name: str,
    parent: Mapping[str, str] | None,
    start_ns: int,
    attributes: Mapping[str, Any] | None = None,
    *,
    stored_first: bool = False,
) -> None:
    """A span that already happened (from `start_ns` to now): a child of the current span,
    else of the stored `parent` context. For steps whose parent context is only learnt
    from their own result (a transition returns the request's stored trace, a wait the
    request). `stored_first`: `parent` wins over the current span (a wake belongs to the
    request's trace, whatever the waiting code is tracing).

    The span is built later, in batches, on a background thread (spans are exported in
    batches anyway), so a decision or a wake never waits for it.
    """
    if not enabled():
        return
    current = trace.get_current_span().get_span_context().is_valid
    use_stored = bool(parent) and (stored_first or not current)
    ctx = None if use_stored else otel_context.get_current()
    carrier = dict(parent or {})
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    end = time.time_ns()

    def build() -> None:
        context = _W3C.extract(carrier) if ctx is None else ctx
        tracer().start_span(name, context=context, attributes=attrs, start_time=start_ns).end(end_time=end)

    _recorder().put(build)


# How often the recorder builds the spans handed to `record` and ends those `finish`ed.
RECORD_INTERVAL = 0.1


class _Recorder(threading.Thread):
    """Runs span work handed over by `record` and `finish`, every RECORD_INTERVAL, off the
    callers' path (a decision, a wake, a request never wait for span bookkeeping)."""

    def __init__(self) -> None:
        super().__init__(name="hitl-span-recorder", daemon=True)
        self.queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.kick = threading.Event()
        self.cycles = 0
        self.cycled = threading.Condition()

    def put(self, work: Callable[[], None]) -> None:
        self.queue.put(work)

    def run(self) -> None:
        while True:
            self.kick.wait(RECORD_INTERVAL)
            self.kick.clear()
            while True:
                try:
                    work = self.queue.get_nowait()
                except queue.Empty:
                    break
                try:
                    work()
                except Exception:  # a span lost must never take the recorder down
                    log.exception("could not record a span")
            with self.cycled:
                self.cycles += 1
                self.cycled.notify_all()

    def drain(self, timeout: float) -> bool:
        """Do everything handed over so far, now; False if that took over `timeout`."""
        with self.cycled:
            target = self.cycles + 2  # a cycle already running may have missed the latest
            while self.cycles < target:
                self.kick.set()
                if not self.cycled.wait(timeout):
                    return False
        return True


_RECORDER: _Recorder | None = None
_RECORDER_LOCK = threading.Lock()


def _recorder() -> _Recorder:
    global _RECORDER
    with _RECORDER_LOCK:
        if _RECORDER is None or not _RECORDER.is_alive():
            _RECORDER = _Recorder()
            _RECORDER.start()
        return _RECORDER


def flush(timeout: float = 5.0) -> bool:
    """Build every span `record` was given (tests, and before a process exits)."""
    return _RECORDER.drain(timeout) if _RECORDER is not None and _RECORDER.is_alive() else True


def setup(service_name: str) -> bool:
    """Install the SDK with the OTLP exporter when `hitl-router[otel]` is installed and
    `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_TRACES_EXPORTER`) asks for it; True if done.

    `OTEL_SERVICE_NAME` wins over `service_name` (hitl-bot, hitl-worker...)."""
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "otlp" if _otlp_configured() else "none")
    if wanted == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OTEL_* is set but the SDK is missing: pip install 'hitl-router[otel]'")
        return False
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    exporter = ConsoleSpanExporter() if wanted == "console" else OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # registered first, so runs after the flush below
    atexit.register(flush)
    log.info("tracing: %s spans exported (%s)", name, wanted)
    return True


def _otlp_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
