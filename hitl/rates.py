"""A call rate (`20/s`): what HITL_API_RATE and `hitl keys create --rate` are written in.

Its own module because both the settings (which check HITL_API_RATE at load) and the API
keys (whose token bucket it sizes) need it, and settings is imported by nearly everything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# A rate: tokens per second, e.g. "20/s" or "0.5/s".
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*s\s*$")
# The bucket holds this many seconds' worth of calls: short bursts pass, a flood does not.
BURST_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket's refill (`per_second`) and size (`burst`)."""

    per_second: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`N/s` (N > 0, decimals allowed); a ValueError says what is expected."""
        match = _RATE.match(text or "")
        if not match or float(match.group(1)) <= 0:
            raise ValueError(f"{text!r} is not a rate: write calls per second, e.g. 20/s or 0.5/s")
        return cls(float(match.group(1)))

    @property
    def burst(self) -> int:
        return max(1, math.ceil(self.per_second * BURST_SECONDS))

    def __str__(self) -> str:
        # Fixed-point, never "1e+06": the text must parse back (it is stored and shown).
        return f"{self.per_second:.6f}".rstrip("0").rstrip(".") + "/s"
