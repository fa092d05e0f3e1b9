"""OpenTelemetry traces: one approval, agent to Slack to agent, as one trace.

Only `opentelemetry-api` is a dependency: without an SDK every span here is a no-op and
costs next to nothing. `hitl-router[otel]` adds the SDK and the OTLP exporter, set up by
`setup()` from the standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER`...).

The trace crosses processes through Redis: `request()` stores the W3C trace context
(`traceparent`, and `tracestate` when set) of its `hitl.request` span with the request,
and every later step (the card post in a worker, the click in the bot, the transition,
the webhook, the waiter's wake) starts its span as a child of that stored context.

Span names: `hitl.request`, `hitl.card.post`, `hitl.click`, `hitl.transition`,
`hitl.webhook`, `hitl.wake`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

log = logging.getLogger(__name__)

TRACER_NAME = "hitl"


class SpanName:
    """The spans of one approval's trace."""

    REQUEST = "hitl.request"
    CARD_POST = "hitl.card.post"
    CLICK = "hitl.click"
    TRANSITION = "hitl.transition"
    WEBHOOK = "hitl.webhook"
    WAKE = "hitl.wake"


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def enabled() -> bool:
    """Whether an SDK is installed as the tracer provider (else spans are no-ops, and
    work done only to feed them, such as reading a stored context, is skipped)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers; empty when no span is recording."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    out: dict[str, str] = {}
    propagate.inject(out)
    return out


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits), for log lines; None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def span(
    name: str, parent: Mapping[str, str] | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[trace.Span]:
    """A span named `name`: a child of the current span, else of the stored `parent`
    context (a request's `trace`), else a new trace."""
    ctx = None
    if parent and not trace.get_current_span().get_span_context().is_valid:
        ctx = propagate.extract(dict(parent))
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer().start_as_current_span(name, context=ctx, attributes=attrs) as current:
        yield current


def start_span(
    name: str,
    parent: Mapping[str, str] | None,
    attributes: Mapping[str, Any] | None = None,
    start_time: int | None = None,
) -> trace.Span:
    """A span to end later (`span.end()`), a child of the stored `parent` context;
    `start_time` in ns since the epoch (default now)."""
    ctx = propagate.extract(dict(parent)) if parent else otel_context.get_current()
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    return tracer().start_span(name, context=ctx, attributes=attrs, start_time=start_time)


def record(
    name: str, parent: Mapping[str, str] | None, start_ns: int, attributes: Mapping[str, Any] | None = None
) -> None:
    """A span that already happened (from `start_ns` to now): a child of the current span,
    else of the stored `parent` context. For steps whose parent context is only learnt
    from their own result (a transition returns the request's stored trace)."""
    if not enabled():
        return
    ctx = None if trace.get_current_span().get_span_context().is_valid or not parent else parent
    start_span(name, ctx, attributes, start_time=start_ns).end()


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
    log.info("tracing: %s spans exported (%s)", name, wanted)
    return True


def _otlp_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
