"""Decision webhook destinations, parsed and compared part by part, never by string prefix.

An agent chooses a request's `callback_url`; a worker POSTs to it. A prefix test on the
text let `/hooks/../admin` through (delivered to `/admin`), let `/hooksEVIL` match
`/hooks`, let an entry without a path admit any port, and let `\\r\\n` reach the sender.
So both the URL and each `HITL_WEBHOOK_ALLOWED` entry are parsed and normalised the same
way (RFC 3986 section 6: case of scheme and host, percent-encoding of unreserved
characters, dot segments), and a URL is allowed when an entry has the same scheme, host
and port (a missing port is the scheme's default) and a path that is a whole-segment
prefix of the URL's path. The sender posts the normalised form, so what was checked is
what is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that never belong in a URL we send: C0 controls, space, DEL, and backslash
# (which some parsers read as "/" and others as part of a segment).
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Percent-encoded characters refused in a path: an encoded "/" or "\" splits segments
# differently for us and for the receiver.
_AMBIGUOUS = frozenset({"%2F", "%5C"})
_HOST = re.compile(r"^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$")


class BadWebhookUrl(ValueError):
    """A URL that cannot be a webhook destination; the message says why, in plain words."""


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    """A normalised http(s) URL: what is compared, and what is sent."""

    scheme: str
    host: str  # lower case; an IPv6 address keeps its brackets
    port: int
    segments: tuple[str, ...]  # the path's segments, dot segments resolved
    query: str
    trailing_slash: bool

    @property
    def path(self) -> str:
        if not self.segments:
            return "/"
        return "/" + "/".join(self.segments) + ("/" if self.trailing_slash else "")

    @property
    def text(self) -> str:
        """The URL as sent: the default port left out, no fragment."""
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.host}{port}{self.path}{query}"

    def within(self, entry: WebhookUrl) -> bool:
        """Same scheme, host and port as `entry`, and a path under the entry's by whole segments."""
        return (
            (self.scheme, self.host, self.port) == (entry.scheme, entry.host, entry.port)
            and self.segments[: len(entry.segments)] == entry.segments
        )


def _normalise_percent(part: str) -> str:
    """Decode percent-encoded unreserved characters, upper-case the rest (RFC 3986 6.2.2.2)."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(one, part)


def _segments(path: str) -> tuple[tuple[str, ...], bool]:
    """The path's segments with "." and ".." resolved (RFC 3986 5.2.4), and whether it ends in "/"."""
    out: list[str] = []
    parts = path.split("/")[1:] if path.startswith("/") else path.split("/")
    trailing = False
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg in (".", ".."):
            if seg == ".." and out:
                out.pop()
            trailing = last
            continue
        if seg == "" and not last:
            continue  # "//" collapses: an empty segment names nothing a receiver would route
        if seg == "":
            trailing = bool(out)
            continue
        out.append(seg)
        trailing = False
    return tuple(out), trailing


def parse(url: str) -> WebhookUrl:
    """Parse and normalise `url`; raises `BadWebhookUrl` saying what to change."""
    if _FORBIDDEN.search(url):
        raise BadWebhookUrl(
            "it contains a space, a backslash or a control character (such as a line break or tab)"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadWebhookUrl("it must start with http:// or https://")
    if "@" in parts.netloc:
        raise BadWebhookUrl("it may not carry a user or password (user@host)")
    if "%" in parts.netloc:
        raise BadWebhookUrl("its host may not be percent-encoded")
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if not host or not _HOST.match(host) or ".." in host:
        raise BadWebhookUrl("it has no valid host name")
    try:
        port = parts.port
    except ValueError:
        raise BadWebhookUrl("its port is not a number from 0 to 65535") from None
    path = _normalise_percent(parts.path)
    if any(code in path.upper() for code in _AMBIGUOUS):
        raise BadWebhookUrl("its path may not contain an encoded / or \\ (%2F, %5C)")
    segments, trailing = _segments(path)
    return WebhookUrl(
        scheme=scheme, host=host, port=DEFAULT_PORTS[scheme] if port is None else port,
        segments=segments, query=_normalise_percent(parts.query), trailing_slash=trailing,
    )


def check(url: str, allowed: Sequence[str]) -> WebhookUrl:
    """The normalised URL when an entry of `allowed` admits it; else `BadWebhookUrl` saying
    why, naming the entries so a person knows what would be accepted."""
    if not allowed:
        raise BadWebhookUrl("no webhook destinations are allowed here; an operator sets HITL_WEBHOOK_ALLOWED")
    target = parse(url)
    if any(target.within(parse(entry)) for entry in allowed):
        return target
    raise BadWebhookUrl(
        f"{target.text} is not under an allowed destination ({', '.join(allowed)}): same scheme, host "
        "and port, and a path under the entry's path; an operator adds destinations to HITL_WEBHOOK_ALLOWED"
    )


__all__ = ["DEFAULT_PORTS", "BadWebhookUrl", "WebhookUrl", "check", "parse"]
