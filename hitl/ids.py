"""Request ids: short, URL- and RQ-safe, and sortable by creation time."""

from __future__ import annotations

import os
import re
import time

from hitl.errors import RequestNotFound

# Crockford's base32 (no i, l, o, u): easy to read aloud and to type into `/hitl show`.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# 48 bits of milliseconds + 42 random bits = 90 bits = 18 base32 characters.
ID_LENGTH = 18


def new_id() -> str:
    value = (time.time_ns() // 1_000_000) << 42 | int.from_bytes(os.urandom(6)) >> 6
    out = []
    for _ in range(ID_LENGTH):
        value, digit = divmod(value, 32)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


_ID = re.compile(f"^[{_ALPHABET}]{{{ID_LENGTH}}}$")


def is_request_id(text: str) -> bool:
    """Whether `text` has the shape of an id `new_id` makes (anything else names no request)."""
    return bool(_ID.match(text))


def known_shape(request_id: str) -> str:
    """`request_id` when it has the shape of an id; else `RequestNotFound`, exactly as for an
    unknown id.

    Every way in from outside (HTTP, MCP, Slack buttons, the client) passes through the
    stores and the waiter dispatcher, which call this before building a key: a string that
    cannot be an id names no request, and must not name another key either (`<id>:done` is
    the request's done list, whose wrong type made Redis refuse the read).
    """
    if not isinstance(request_id, str) or not is_request_id(request_id):
        raise RequestNotFound(request_id)
    return request_id
