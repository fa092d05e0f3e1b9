"""Who may open the dashboard: short-lived signed links from `/hitl dashboard`, then a
cookie session; or an API key (HITL_API_KEYS, as a bearer) for scripts.

A token is `base64url(claims JSON) "." base64url(HMAC-SHA256)`. Claims: `team` and `user`
(from the signed slash command that asked for it), `kind` ("link", usable once within 10
minutes, to start a session; or "session", the cookie), `exp` (epoch seconds), `jti` (a
random id: the web process spends a link's in Redis, `hitl.spent`, so a second use, even a
concurrent one, is refused). The key
is HITL_DASHBOARD_SECRET, else derived from SLACK_SIGNING_SECRET, so nobody without the
server's secret can make one. On arrival a token must be unexpired, of the right kind,
for this workspace (the bot's own `auth.test` team) and for a user allowed in
(HITL_DASHBOARD_USERS, else HITL_ADMINS, else anyone in the workspace).

The session cookie is HttpOnly and SameSite=Lax, and Secure whenever the browser reaches us
over https: the request's own scheme, or HITL_PUBLIC_URL behind a TLS-terminating proxy
(which talks plain http to us, so the scheme alone would leave the cookie unmarked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from hitl.settings import Settings

# A link from `/hitl dashboard` works this long (seconds).
LINK_TTL = 600
# A session cookie lasts this long (seconds).
SESSION_TTL = 8 * 3600
COOKIE = "hitl_dashboard"


class TokenKind(StrEnum):
    LINK = "link"
    SESSION = "session"


class Denied(Exception):
    """Why a token (or its absence) does not let someone in: shown on the refusal page."""

    def __init__(self, title: str, detail: str, status: int = 401) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.status = status  # 401: sign in again; 403: this person or workspace may not


@dataclass(frozen=True)
class Claims:
    team: str
    user: str
    kind: TokenKind
    exp: float
    jti: str = ""  # a link's single-use id (sessions minted before links had one carry none)


def signing_key(settings: Settings) -> bytes | None:
    """HITL_DASHBOARD_SECRET, else a key derived from SLACK_SIGNING_SECRET (never the
    signing secret itself); None when neither is set (then only API keys get in)."""
    own = settings.secret("dashboard_secret")
    if own:
        return own.encode()
    signing = settings.secret("slack_signing_secret")
    if signing:
        return hmac.new(signing.encode(), b"hitl-router dashboard tokens", hashlib.sha256).digest()
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(key: bytes, team: str, user: str, kind: TokenKind, ttl: float, now: float | None = None) -> str:
    claims = {
        "team": team, "user": user, "kind": kind.value, "exp": int((now or time.time()) + ttl),
        "jti": secrets.token_urlsafe(16),
    }
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def verify(key: bytes, token: str, kind: TokenKind, now: float | None = None) -> Claims:
    """The token's claims, or `Denied` saying what is wrong with it."""
    body, _, sig = token.strip().partition(".")
    try:
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        good = bool(body) and hmac.compare_digest(_unb64(sig), expected)
        raw = json.loads(_unb64(body)) if good else None
    except (ValueError, TypeError):
        good, raw = False, None
    if not good or not isinstance(raw, dict):
        raise Denied("This link is not valid", "It was not made by this hitl-router. Type /hitl dashboard in "
                     "Slack for a new one.")
    try:
        jti = str(raw.get("jti") or "")
        claims = Claims(str(raw["team"]), str(raw["user"]), TokenKind(raw["kind"]), float(raw["exp"]), jti)
    except (KeyError, ValueError, TypeError):
        raise Denied("This link is not valid", "Type /hitl dashboard in Slack for a new one.") from None
    if claims.kind is not kind or (kind is TokenKind.LINK and not claims.jti):
        raise Denied("This link is not valid", "Type /hitl dashboard in Slack for a new one.")
    if claims.exp <= (now or time.time()):
        what = "link" if kind is TokenKind.LINK else "session"
        raise Denied(f"This {what} has expired",
                     "Dashboard links work for 10 minutes. Type /hitl dashboard in Slack for a new one.")
    return claims


def allowed_users(settings: Settings) -> frozenset[str]:
    """Who may open the dashboard; empty means anyone in the workspace."""
    return frozenset(settings.dashboard_users or settings.admins)


def admit(claims: Claims, team: str | None, allowed: frozenset[str]) -> None:
    """Refuse a token for another workspace, or for a user who may not look."""
    if team is None or claims.team != team:
        raise Denied("Wrong workspace", "This link was made for another Slack workspace than the one this "
                     "hitl-router serves.", 403)
    if allowed and claims.user not in allowed:
        raise Denied("Not for you", "The dashboard is open to the people in HITL_DASHBOARD_USERS (or "
                     "HITL_ADMINS); ask one of them.", 403)


# Shown for the second use of a link.
ALREADY_USED = Denied(
    "This link was already used",
    "Each dashboard link opens the dashboard once, for the person who asked for it. Type "
    "/hitl dashboard in Slack for a new one.",
)


def secure_cookie(settings: Settings, scheme: str) -> bool:
    """Whether the session cookie must be `Secure`: the browser came over https, directly
    or through the TLS proxy HITL_PUBLIC_URL names."""
    return scheme == "https" or (settings.public_url or "").lower().startswith("https://")
