"""Secrets kept off every surface a person or an agent can read: cards, modals, the audit log.

Shared by the Slack cards (`bot.slack.blocks`), which mask parameters before a reviewer
sees them, and by the MCP gateway (`bot.gateway.mcpgateway`), which masks an upstream's
result before the audit log keeps it. It lives in `hitl` because both are `bot`, and one
concern may not import another's internals.

A value is masked whole when its key names a secret (`is_secret_key`, decided on the key's
words, not substrings), and any string is scanned for secret *shapes* (Slack and cloud
tokens, JWTs, private keys, URL passwords, long random runs), masked in place so the rest
stays readable. Big values are clipped first (`clip_json`): masking megabytes is slow.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from itertools import pairwise
from typing import Any

from hitl.models import MAX_PARAMS_DEPTH

# What a masked secret looks like on a card and in the edit box.
MASK = "••••••"
# Marker appended to anything cut short.
ELLIPSIS = "…"
# Extra characters kept past a cut before masking, so a secret that starts before the cut
# is still long enough for its pattern to recognise it (the patterns need a few dozen).
MASK_MARGIN = 512

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


def clip_json(value: Any, budget: int, depth: int = MAX_PARAMS_DEPTH) -> Any:
    """A display copy of `value` whose JSON is roughly at most `budget` chars.

    Long strings are cut (keeping a margin so secrets across the cut are still masked
    afterwards), and containers stop early with a "…" entry saying how much is left. Used
    before masking and pretty-printing, both of which are slow on megabytes. Containers
    nested more than `depth` levels become a "…" note: a tool's result is not bounded like
    `params`, and masking and encoding recurse.
    """
    budget = max(budget, 64)
    if isinstance(value, dict | list | tuple) and depth <= 0:
        return f"{ELLIPSIS} nested deeper than {MAX_PARAMS_DEPTH} levels"
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
            out[k] = clipped = clip_json(v, budget - used, depth - 1)
            used += compact_size(clipped) + len(str(k)) + 6
        return out
    if isinstance(value, list | tuple):
        items: list[Any] = []
        used = 0
        for i, v in enumerate(value):
            if used > budget:
                items.append(f"{ELLIPSIS} {len(value) - i} more items")
                break
            items.append(clipped := clip_json(v, budget - used, depth - 1))
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



# Longest result of a tool call the audit log keeps, as compact JSON (characters).
RESULT_CHARS = 4096


def result_text(value: Any, limit: int = RESULT_CHARS) -> str:
    """A tool call's result as the audit log keeps it: compact JSON of at most `limit`
    characters, clipped first (`clip_json`), then masked (`mask_value`), so neither a secret
    the tool printed nor a megabyte listing reaches the log."""
    kept = mask_value(None, clip_json(value, limit))
    text = json.dumps(kept, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
