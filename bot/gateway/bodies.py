"""Reading request bodies with a size cap and a deadline.

A client that announces a body and then sends it slowly (or never) must not hold the web
process: every body is read within `BODY_TIMEOUT` seconds and under a byte limit, else
the caller answers 408 or 413. Nothing blocks a thread meanwhile (it is all awaited).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

# Seconds a client gets to send a whole request body.
BODY_TIMEOUT = 10.0


class BodyTooLarge(Exception):
    """The body is over the limit (announced or counted)."""


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The whole body; raises `BodyTooLarge`, or `TimeoutError` after `timeout` seconds
    (default `BODY_TIMEOUT`), or starlette's `ClientDisconnect`."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BodyTooLarge

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    return await asyncio.wait_for(collect(), BODY_TIMEOUT if timeout is None else timeout)
