"""Turning untrusted agent text into Slack mrkdwn that can only ever be read, never obeyed.

Everything an agent sends (summary, context, parameters, names) may contain Slack control
sequences (`<!channel>`, `<@U123>`, `<https://evil|click here>`), broadcast words that
text objects auto-parse (`@here`), bidi overrides that reverse the text that follows, or
secrets the reviewer should not see. The helpers here neutralise all of that, and cut text
to Block Kit's limits without splitting an HTML entity or an emoji, so the card builders
can compose blocks without re-checking each string.

Lengths are counted in UTF-16 code units (`units`): that is never less than Python's
`len()` (which slack_sdk checks) and is how JavaScript-based servers count, so a text that
passes here passes both.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from hitl.masking import ELLIPSIS, MASK_MARGIN, mask_text
from hitl.slackids import CHANNEL_ID, GROUP_ID, USER_ID

# Inserted after "@" in "@here" & co so Slack's auto-parser no longer sees the word.
ZWJ = "\u200d"
# Inserted inside "```" found in agent text so it cannot close our code blocks.
ZWSP = "\u200b"

# C0 controls (except tab and newline), DEL, and the bidi embedding/override/isolate
# controls: invisible characters that can reorder what follows them ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_BROADCAST = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)


# --------------------------------------------------------------------------- lengths


def units(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts 2, as Slack's servers count."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fits(text: str, limit: int) -> bool:
    """units(text) <= limit, without encoding a huge string when its length already decides."""
    if len(text) > limit:
        return False
    return len(text) * 2 <= limit or units(text) <= limit


def _is_continuation(text: str, i: int) -> bool:
    """True when text[i] belongs to the grapheme before it (so cutting at i would split it)."""
    ch = text[i]
    if ch in (ZWJ, "\ufe0f", "\ufe0e") or 0x1F3FB <= ord(ch) <= 0x1F3FF:  # joiners, variation, skin tones
        return True
    if unicodedata.combining(ch):
        return True
    return i > 0 and text[i - 1] == ZWJ


def _cut(text: str, limit: int) -> str:
    """Longest prefix within `limit` units that ends on a grapheme and HTML-entity boundary."""
    if limit <= 0:
        return ""
    end = 0
    used = 0
    for ch in text[:limit]:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        end += 1
    if end >= len(text):
        return text
    while end > 0 and _is_continuation(text, end):
        end -= 1
    # Never leave half of "&amp;" / "&lt;" / "&gt;" behind: Slack would show it raw.
    amp = text.rfind("&", max(0, end - 5), end)
    if amp != -1 and ";" not in text[amp:end]:
        end = amp
    return text[:end]


def clean(text: Any) -> str:
    """Normalise newlines and drop control and bidi-override characters (see `_CONTROL`)."""
    text = "" if text is None else str(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return _CONTROL.sub("", text)


def truncate(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """Cut `text` to at most `limit` units, ending with `marker` when anything was removed.

    Cuts on grapheme boundaries so a cut never leaves half an emoji or a dangling accent.
    """
    if _fits(text, limit):
        return text
    room = limit - units(marker)
    if room <= 0:
        return _cut(marker, limit)
    return _cut(text, room).rstrip() + marker


def one_line(text: Any, limit: int | None = None) -> str:
    """Collapse all whitespace (newlines included) to single spaces, for inline use.

    With `limit`, only the part that can show is processed (plus a margin, and "…" when
    something was dropped), so a 100,000-char text costs no more than a short one.
    """
    text = "" if text is None else str(text)
    if limit is not None and len(text) > limit + MASK_MARGIN:
        return " ".join(clean(text[: limit + MASK_MARGIN]).split()) + ELLIPSIS
    return " ".join(clean(text).split())


# --------------------------------------------------------------------------- escaping


def escape(text: Any) -> str:
    """Make agent text inert in mrkdwn: `&<>` as entities, broadcasts defused, controls gone.

    After this, `<!channel>`, `<@U123>`, `<#C1>`, `<!subteam^S1>`, `<url|text>` and
    `<!date^...>` render as the literal characters the agent sent, and "@here" cannot be
    auto-parsed into a broadcast (a zero-width joiner follows the "@").
    """
    out = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + ZWJ, out)


def escape_cut(text: Any, limit: int) -> str:
    """`escape` then cut to `limit` units without breaking an entity; "…" marks a cut."""
    out = escape(text)
    if _fits(out, limit):
        return out
    return _cut(out, max(0, limit - 1)).rstrip() + ELLIPSIS


def code_inline(text: Any, limit: int = 200) -> str:
    """Agent text as `inline code`: escaped, backticks swapped for a look-alike so it cannot close early."""
    body = one_line(text, limit).replace("`", "ˋ") or " "
    return "`" + escape_cut(body, max(1, limit - 2)) + "`"


def quote_block(text: Any, limit: int, *, max_lines: int | None = None) -> tuple[str, bool]:
    """Agent text as a mrkdwn `>` quote, every line prefixed, within `limit` units.

    Quoting every line is what keeps agent text from passing for the card's own lines: a
    summary line reading "✅ Approved by @boss" still sits inside the agent's quote bar.
    Returns (mrkdwn, whether anything was cut).
    """
    lines = clean(text).strip("\n").split("\n")
    cut = False
    if max_lines is not None and len(lines) > max_lines:
        lines, cut = lines[:max_lines], True
    quoted = "\n".join(">" + escape(line) for line in lines)
    if cut or not _fits(quoted, limit):
        quoted, cut = _cut(quoted, max(0, limit - 1)).rstrip() + ELLIPSIS, True
    return quoted, cut


def iter_pieces(escaped: str, limit: int, *, line_overhead: int = 0) -> Iterator[str]:
    """Split already-escaped text into pieces that each fit one block text, lazily.

    Prefers newline boundaries, then a space near the end, and never splits an entity or
    an emoji. `line_overhead` is what the caller adds per line (1 for a ">" quote prefix).
    Works by index, never copying the rest of a huge line, so a 10 MB value costs only the
    pieces actually taken.
    """
    room = max(1, limit - line_overhead)
    current: list[str] = []
    size = 0
    pos = 0
    total = len(escaped)
    while True:
        newline = escaped.find("\n", pos)
        end = total if newline == -1 else newline
        while True:
            if end - pos <= room:
                line = escaped[pos:end]
                if _fits(line, room):
                    break
            # A long line: cut a head off it. If the piece being built has room left, the
            # head fills it (a lone "{" before a huge value would waste a whole block).
            left = limit - size - 1 - line_overhead
            fill = bool(current) and left >= min(200, room)
            take = left if fill else room
            window = escaped[pos : min(end, pos + take + 1)]
            head = _cut(window, take)
            space = head.rfind(" ", max(1, len(head) - 80))
            if space > 0:
                head = head[:space]
            if not head:  # only with absurdly small limits; guarantees progress
                head = window[:1]
            pos += len(head)
            if fill:
                current.append(head)
                yield "\n".join(current)
            else:
                if current:
                    yield "\n".join(current)
                yield head
            current, size = [], 0
        cost = units(line) + line_overhead + (1 if current else 0)
        if current and size + cost > limit:
            yield "\n".join(current)
            current, size = [], 0
            cost = units(line) + line_overhead
        current.append(line)
        size += cost
        if newline == -1:
            break
        pos = newline + 1
    if current:
        yield "\n".join(current)


def split_for_blocks(
    escaped: str, limit: int, *, line_overhead: int = 0, max_pieces: int | None = None
) -> list[str]:
    """The first `max_pieces` (default: all) pieces of `iter_pieces`."""
    return list(islice(iter_pieces(escaped, limit, line_overhead=line_overhead), max_pieces))


def code_block_text(text: Any) -> str:
    """Escape text meant for a ``` code block, breaking any ``` inside it."""
    return escape(str(text).replace("```", "``" + ZWSP + "`"))


def plain(text: Any, limit: int) -> str:
    """Text for a plain_text object built from agent data (header, confirm title).

    plain_text is never parsed for mentions, but escaping costs nothing for the names that
    reach it (action names are validated to [A-Za-z0-9_.:/-]) and keeps it inert anyway.
    """
    return escape_cut(one_line(text, limit), limit)


def inline_text(text: Any, limit: int) -> str:
    """Agent text for one line of mrkdwn: flattened, secrets masked, escaped, cut to `limit`."""
    return escape_cut(mask_text(one_line(text, limit)), limit)


# --------------------------------------------------------------------------- values


def format_value(value: Any, limit: int = 120) -> str:
    """One parameter value, compact: strings as-is on one line, anything else as JSON."""
    if isinstance(value, str):
        text = re.sub(r"[ \t]*\n[ \t]*", " ↵ ", clean(value)) if value else '""'
    elif value is None or isinstance(value, bool | int):
        text = json.dumps(value)
    elif isinstance(value, float):
        text = json.dumps(value) if math.isfinite(value) else str(value)
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    else:
        text = str(value)
    return truncate(text, limit)


def pretty_json(value: Any) -> str:
    """Readable multi-line JSON for modals and the edit box (unicode kept, not \\u-escaped)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- secrets



# --------------------------------------------------------------------------- mentions, dates


def is_user_id(value: Any) -> bool:
    return isinstance(value, str) and bool(USER_ID.match(value))


def user_ref(user: Any) -> str:
    """A Slack user mention when `user` is a user id, else the escaped text (never a ping)."""
    if is_user_id(user):
        return f"<@{user}>"
    return escape_cut(one_line(user, 80), 80) if user else "someone"


def approver_ref(who: Any) -> str:
    """A user (`<@U…>`) or user-group (`<!subteam^S…>`) mention, else the escaped text."""
    if isinstance(who, str) and GROUP_ID.match(who):
        return f"<!subteam^{who}>"
    return user_ref(who)


def channel_ref(channel: Any) -> str:
    """A channel link for a channel id, else the escaped name ("#agent-approvals")."""
    if isinstance(channel, str) and CHANNEL_ID.match(channel):
        return f"<#{channel}>"
    return escape_cut(one_line(channel, 80), 80) if channel else "no channel"


def people(users: list[str], limit: int = 10) -> str:
    """Comma-separated mentions of up to `limit` people, "+N more" after that."""
    refs = [user_ref(u) for u in users[:limit]]
    if len(users) > limit:
        refs.append(f"+{len(users) - limit} more")
    return ", ".join(refs) if refs else "someone"


def utc_text(ts: float) -> str:
    """A fixed UTC rendering, for fallbacks where Slack cannot localise."""
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "an unknown time"


def slack_date(ts: float | None, fmt: str = "{date_short_pretty} at {time}") -> str:
    """`<!date^…>`: each reader sees the time in their own time zone; UTC as the fallback."""
    if ts is None or not isinstance(ts, int | float) or not math.isfinite(ts):
        return "an unknown time"
    fallback = utc_text(ts)
    if fallback == "an unknown time":
        return fallback
    return f"<!date^{int(ts)}^{fmt}|{fallback}>"
