"""The shape of stream replies as the core reads them: bytes, as a client without
`decode_responses` returns them.

redis-py types stream replies for every client configuration at once (str or bytes keys,
maybe-nil replies), so a reader casts its reply once, to one of these, and the rest of the
code is checked against what Redis really sends.
"""

from __future__ import annotations

Fields = dict[bytes, bytes]
# One entry: its id and its field/value pairs (XRANGE, XREVRANGE, XAUTOCLAIM).
Entry = tuple[bytes, Fields]
# XREAD / XREADGROUP: per stream read, its name and its entries.
StreamReply = list[tuple[bytes, list[Entry]]]
