"""Values as redis-py returns them: bytes (the clients do not decode responses, since
some values are binary), sometimes ints or strs from Lua. One conversion for all."""

from __future__ import annotations


def as_str(value: object) -> str:
    """A Redis reply value as text: bytes decoded as UTF-8, anything else through str()."""
    return value.decode() if isinstance(value, bytes) else str(value)
