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
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice, pairwise
from typing import Any

from hitl.slackids import CHANNEL_ID, GROUP_ID, USER_ID

# What a masked secret looks like on a card and in the edit box.
MASK = "••••••"
# Marker appended to anything cut short.
ELLIPSIS = "…"
# Inserted after "@" in "@here" & co so Slack's auto-parser no longer sees the word.
ZWJ = "\u200d"
# Extra characters kept past a cut before masking, so a secret that starts before the cut
# is still long enough for its pattern to recognise it (the patterns need a few dozen).
MASK_MARGIN = 512
# Inserted inside "```" found in agent text so it cannot close our code blocks.
ZWSP = "\u200b"

# C0 controls (except tab and newline), DEL, and the bidi embedding/override/isolate
# controls: invisible characters that can reorder what follows them ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_BROADCAST = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)

# Keys whose values are secrets whatever they hold, matched by the key's TOKENS (split on
# "_", "-", ".", spaces and camelCase), never by substring: "key" must not catch "monkey"
# or "keyboard_layout", "pin" not "spinach", "auth" not "author".
# A token that is, starts with or ends with one of these words marks a secret
# ("passwords", "newpassword", "tokens", "secretsManager" too):
_SECRET_STEMS = (
    "password", "passwd", "passphrase", "passcode", "secret", "token", "credential",
    "cookie", "session", "private", "authorization", "apikey", "accesskey", "secretkey",
    "privatekey", "signingkey", "sshkey", "signature", "bearer",
)
# Short words that mark a secret only as a whole token ("db_pass", "ssh_key", "otp").
_SECRET_WORDS = frozenset({"pass", "pwd", "pw", "key", "pin", "otp", "totp", "auth", "jwt", "mfa", "pat"})
# "key" names a lookup key, not a secret, after these words ("sort_key", "idempotency_key").
_PLAIN_KEY_KINDS = frozenset({
    "primary", "foreign", "sort", "partition", "cache", "idempotency", "object", "s3",
    "routing", "lookup", "dedup", "dedupe", "map", "hash", "row", "group", "i18n",
    "translation", "public", "hotkey", "shortcut",
})
_KEY_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$|[^A-Za-z0-9])|[A-Z]?[a-z]+|[0-9]+|[A-Z]+")

# Values that are secrets by their shape, wherever they appear. Each is replaced by MASK,
# keeping any prefix in group 1 so the reviewer still sees what kind of thing it was.
_SECRET_SHAPES: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)"
    ),
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{8,}"),  # Slack bot/user/... tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{8,}"),  # Slack app-level tokens
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI, Anthropic (sk-ant-...) and similar
    re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{8,}"),  # Stripe secret / restricted keys
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}"),  # GitLab
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"),  # Google API keys
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"\bnpm_[A-Za-z0-9]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"),  # JWTs, base64 JSON
    re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
    # "Bearer <token>" / "Basic <base64>": keep the scheme, hide the credential. The
    # lookahead wants a digit or symbol so "Basic authentication" is left alone.
    re.compile(r"(\b(?:Bearer|Basic)\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/-]{8,}=*", re.I),
    # user:password@ in URLs: keep the user and the host.
    re.compile(r"(://[^/\s:@]+:)[^@\s/]+(?=@)"),
    # password=..., token: ... inside query strings, DSNs, command lines.
    re.compile(
        r"(\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*[=:]\s*)[^\s&,;'\"]+",
        re.I,
    ),
)


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


def key_tokens(key: str) -> list[str]:
    """A parameter name's words, lower-cased: "dbPass-v2.SSH_key" -> db, pass, v, 2, ssh, key."""
    return [t.lower() for t in _KEY_TOKEN.findall(key)]


def is_secret_key(key: Any) -> bool:
    """True when a parameter name says its value is a secret (password, db_pass, ssh_key, ...).

    Decided on the name's tokens (`key_tokens`): a token equal to a short secret word, or
    one starting or ending with a longer one. So `signing_key`, `passphrase`, `pin` and
    `otp` are secrets; `author`, `keyboard_layout`, `spinach` and `sort_key` are not.
    """
    if not isinstance(key, str):
        return False
    tokens = key_tokens(key)
    for i, token in enumerate(tokens):
        if token in _SECRET_WORDS:
            if token == "key" and i > 0 and tokens[i - 1] in _PLAIN_KEY_KINDS:
                continue
            return True
        if any(token.startswith(stem) or token.endswith(stem) for stem in _SECRET_STEMS):
            return True
    # "apiKey", "accessKey": two tokens that together name a secret.
    joined = "".join(tokens)
    return any(stem in joined for stem in ("apikey", "accesskey", "privatekey", "secretkey"))


# Long runs of base64/URL-safe characters: candidates for a random secret (see `_is_random`).
_LONG_RUN = re.compile(r"(?<![A-Za-z0-9+=_-])[A-Za-z0-9+=_-]{32,}(?![A-Za-z0-9+=_-])")
# Bits per character above which a long mixed-case-and-digit run is taken for a secret.
# Random base64 of 32+ chars scores about 4.5-5; identifiers and words stay well below 4.
ENTROPY_THRESHOLD = 4.0
# Share of characters where upper/lower/digit alternates, below which a run reads as words.
CLASS_CHANGE_RATE = 0.3


def shannon_entropy(text: str) -> float:
    """Bits per character of `text`'s own character distribution."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _is_random(run: str) -> bool:
    """A long run that looks generated: mixed case and digits, high entropy.

    Pure hex (commit ids, SHA-256 digests) and UUIDs are kept on purpose: reviewers need
    them to check a deploy, and they are rarely secrets; a hex secret under a secret-named
    key is masked by its key anyway.
    """
    has_mix = all(any(test(c) for c in run) for test in (str.isupper, str.islower, str.isdigit))
    return has_mix and _class_changes(run) >= CLASS_CHANGE_RATE and shannon_entropy(run) >= ENTROPY_THRESHOLD


def _class_changes(run: str) -> float:
    """How often the character class (upper, lower, digit, other) changes, per character,
    not counting upper-to-lower (the start of a capitalised word).

    Random base64 changes class this way about 5 times in 10; CamelCase or snake_case
    words change only where a word ends (about 1 in 5), so identifiers are left alone.
    """
    classes = ["u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "o" for c in run]
    pairs = pairwise(classes)
    return sum(a != b and (a, b) != ("u", "l") for a, b in pairs) / len(run)


def _mask_random(match: re.Match[str]) -> str:
    return MASK if _is_random(match.group(0)) else match.group(0)


def mask_text(text: str) -> str:
    """Replace secret-shaped substrings (tokens, keys, JWTs, URL passwords) with MASK."""
    for pattern in _SECRET_SHAPES:
        text = pattern.sub(r"\g<1>" + MASK if pattern.groups else MASK, text)
    return _LONG_RUN.sub(_mask_random, text)


def masked_head(text: Any, limit: int) -> str:
    """`mask_text` over only the part of `text` that can show within `limit` chars.

    Scanning a 100,000-char summary for secrets in order to show 300 chars of it is wasted
    work; the margin keeps a secret that straddles the cut recognisable, so it is masked.
    """
    text = "" if text is None else str(text)
    if len(text) > limit + MASK_MARGIN:
        text = text[: limit + MASK_MARGIN] + ELLIPSIS
    return mask_text(text)


def mask_value(key: Any, value: Any) -> Any:
    """One value masked as `mask_params` would mask it under `key` (None: no key)."""
    # A boolean or null under a secret-looking key ("use_auth": true) reveals nothing.
    if is_secret_key(key) and not (value is None or isinstance(value, bool)):
        return MASK
    if isinstance(value, dict):
        return {k: mask_value(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(None, v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def compact_size(value: Any) -> int:
    """Length of `value` as compact JSON, computed by the C encoder (no indent): cheap."""
    return len(json.dumps(value, ensure_ascii=False, default=str))


def clip_json(value: Any, budget: int) -> Any:
    """A display copy of `value` whose JSON is roughly at most `budget` chars.

    Long strings are cut (keeping a margin so secrets across the cut are still masked
    afterwards), and containers stop early with a "…" entry saying how much is left. Used
    before masking and pretty-printing, both of which are slow on megabytes.
    """
    budget = max(budget, 64)
    if isinstance(value, str):
        if len(value) <= budget + MASK_MARGIN:
            return value
        return value[: budget + MASK_MARGIN] + ELLIPSIS
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        used = 0
        for i, (k, v) in enumerate(value.items()):
            if used > budget:
                out[ELLIPSIS] = f"{len(value) - i} more keys"
                break
            out[k] = clipped = clip_json(v, budget - used)
            used += compact_size(clipped) + len(str(k)) + 6
        return out
    if isinstance(value, list | tuple):
        items: list[Any] = []
        used = 0
        for i, v in enumerate(value):
            if used > budget:
                items.append(f"{ELLIPSIS} {len(value) - i} more items")
                break
            items.append(clipped := clip_json(v, budget - used))
            used += compact_size(clipped) + 2
        return items
    return value


def mask_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of `params` fit for a card: secret values become MASK, keys are kept.

    A value is masked whole when its key looks like a secret (at any depth); any string is
    also scanned for secret shapes (xoxb-, sk-, ghp_, AKIA..., Bearer ..., eyJ... JWTs,
    user:password@ URLs), which are masked in place so the rest stays readable.
    """
    return {k: mask_value(k, v) for k, v in params.items()}


_MISSING = object()


def _where(path: str) -> str:
    return f'"{path}"' if path else "the parameters"


def restore_masked(edited: Any, original: Any, path: str = "") -> Any:
    """Put the stored secrets back where a reviewer left the mask untouched.

    The edit box never shows secrets in clear, so an unchanged MASK means "keep what is
    stored". A value the reviewer typed over the mask wins. A MASK with nothing stored
    behind it, a partially masked string the reviewer changed, or a list holding masked
    items whose length changed is ambiguous: it raises ValueError with what to do.
    """
    if isinstance(edited, str) and MASK in edited:
        if edited == MASK and original is not _MISSING:
            return original
        if isinstance(original, str) and edited == mask_text(original):
            return original
        if original is _MISSING:
            raise ValueError(
                f"{_where(path)} is {MASK}, which stands for a hidden value, but nothing is stored "
                "there. Type the real value or remove it."
            )
        raise ValueError(
            f"{_where(path)} contains hidden parts ({MASK}) and was changed around them. "
            f"Leave it exactly as shown to keep it, or retype the whole value without {MASK}."
        )
    if isinstance(edited, dict):
        base = original if isinstance(original, dict) else {}
        return {
            k: restore_masked(v, base.get(k, _MISSING), f"{path}.{k}" if path else str(k))
            for k, v in edited.items()
        }
    if isinstance(edited, list):
        base_list = original if isinstance(original, list) else []
        if len(edited) != len(base_list) and MASK in json.dumps(edited, ensure_ascii=False):
            raise ValueError(
                f"{_where(path)} is a list with hidden items ({MASK}) and its length changed, so it "
                f"is unclear which hidden item is which. Keep the list's items in place, or retype "
                f"every item without {MASK}."
            )
        return [
            restore_masked(v, base_list[i] if i < len(base_list) else _MISSING, f"{path}[{i}]")
            for i, v in enumerate(edited)
        ]
    return edited


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
