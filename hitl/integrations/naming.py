"""Every name the adapters invent, built in one place: their idempotency keys.

Idempotency keys must be the same on every re-run of the same pause (so a re-run
re-attaches to its request) and different for every distinct pause (so a loop that asks
twice gets two requests). Long or odd parts are hashed to stay within the 200 characters
`RequestInput.idempotency_key` allows.
"""

from __future__ import annotations

import hashlib

# Longest idempotency key the client accepts (hitl.models.RequestInput).
MAX_KEY_CHARS = 200


def idempotency_key(framework: str, *parts: object) -> str:
    """A stable key for one pause: ``{framework}:{part}:{part}...``, hashed when too long."""
    key = ":".join([framework, *(str(p) for p in parts)])
    if len(key) <= MAX_KEY_CHARS:
        return key
    return f"{framework}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def item_key(base: str, index: int) -> str:
    """The key of the `index`-th request of a pause that files several (a plan's steps)."""
    return idempotency_key("item", base, index) if len(base) + 12 > MAX_KEY_CHARS else f"{base}:{index}"
