"""`/dashboard`: the live view of the queue and the trust loop, served by the web process.

`GET /dashboard?token=...` (the link `/hitl dashboard` hands out) checks the token, spends
it (a link works once) and swaps it for a session cookie, then redirects to `/dashboard`,
so the token leaves the address bar. `GET /dashboard` is the page; `GET /dashboard/panels` its panels as JSON,
which a small fetch loop on the page asks for every few seconds, so it updates without a
reload. Scripts may send an API key (`Authorization: Bearer`, HITL_API_KEYS) instead.
A refusal is a short page saying what to do, never a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from html import escape

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot import dashauth
from bot.access import Access
from bot.dashauth import COOKIE, SESSION_TTL, Denied, TokenKind
from bot.gateway import panels
from bot.gateway.auth import Authenticator, Refused
from bot.groups import GroupResolver
from hitl.client import Approvals
from hitl.errors import ConfigError
from hitl.membership import ChannelMembers, ChannelPrivacy
from hitl.settings import Settings
from hitl.spent import SpentTokens

log = logging.getLogger(__name__)

DASHBOARD_PATH = "/dashboard"
# Seconds between two refreshes of the page's panels.
REFRESH_SECONDS = 2


class Workspace:
    """The Slack workspace this deployment serves (`auth.test`), asked once and cached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._team: str | None = None
        self._lock = threading.Lock()

    def team(self) -> str | None:
        with self._lock:
            if self._team is None:
                self._team = self._ask()
            return self._team

    def _ask(self) -> str | None:
        from bot.slack.client import web_client

        try:
            return str(web_client(self.settings).auth_test()["team_id"])
        except (ConfigError, SlackApiError, OSError, KeyError) as exc:
            log.warning("dashboard: cannot tell which Slack workspace this is (%s)", exc)
            return None


class Gate:
    """Decides who gets in: a session cookie, a link token, or an API key."""

    def __init__(
        self, settings: Settings, keys: Authenticator, team: Callable[[], str | None], spent: SpentTokens
    ) -> None:
        self.key = dashauth.signing_key(settings)
        self.keys = keys
        self.team = team
        self.allowed = dashauth.allowed_users(settings)
        self.spent = spent

    def claims(self, token: str, kind: TokenKind) -> dashauth.Claims:
        if self.key is None:
            raise Denied("Links are off", "Set HITL_DASHBOARD_SECRET (or SLACK_SIGNING_SECRET) to sign them.")
        claims = dashauth.verify(self.key, token, kind)
        dashauth.admit(claims, self.team(), self.allowed)
        return claims

    def open_link(self, token: str) -> dashauth.Claims:
        """A link's claims, once: checked like any token, then spent in Redis (atomically,
        so of two uses at the same moment one is refused too)."""
        claims = self.claims(token, TokenKind.LINK)
        if not self.spent.spend(claims.jti, claims.exp - time.time()):
            raise dashauth.ALREADY_USED
        return claims

    def who(self, request: Request) -> str:
        """The user id or API key name let in; raises `Denied`."""
        header = request.headers.get("authorization")
        if header:
            try:
                principal = self.keys.authenticate_sync(header)
            except Refused as exc:
                title = "Wrong API key" if exc.status == 401 else "Too many requests"
                raise Denied(title, str(exc), exc.status) from None
            if not principal.admin:  # the dashboard shows every key's requests: operators only
                raise Denied(
                    "Not an admin key",
                    f"API key {principal.name!r} reads only its own requests; the dashboard needs an "
                    "admin key (hitl keys create NAME --admin), or open it from Slack with /hitl dashboard.",
                    403,
                )
            return "key:" + principal.name
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            raise Denied("Open the dashboard from Slack",
                         "Type /hitl dashboard in Slack: it answers with a link only you can see.")
        return self.claims(cookie, TokenKind.SESSION).user


def refusal(denied: Denied) -> HTMLResponse:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hitl-router dashboard</title>"
        f"<style>{_CSS}</style></head><body><main class='refused'>"
        f"<h1 data-testid='refused'>{escape(denied.title)}</h1><p>{escape(denied.detail)}</p>"
        "</main></body></html>"
    )
    return HTMLResponse(body, status_code=denied.status, headers={"cache-control": "no-store"})


class Sights:
    """What each person or key let in may see (`panels.Sight`): HITL_ADMINS and admin API
    keys everything; a Slack user what `/hitl` shows them (bot/access.py)."""

    def __init__(self, approvals: Approvals, slack: Callable[[], WebClient | None]) -> None:
        self.approvals = approvals
        self.slack = slack
        self.privacy = ChannelPrivacy(approvals.redis, approvals.keys)
        self._access: Access | None = None
        self._lock = threading.Lock()

    def access(self) -> Access | None:
        with self._lock:
            client = self.slack() if self._access is None else None
            if self._access is None and client is not None:
                a = self.approvals
                self._access = Access(
                    client, ChannelMembers(a.redis, a.keys), GroupResolver(client, a.redis, a.keys.prefix),
                    a.settings.admins, a.settings.default_channel,
                )
            return self._access

    def _public_only(self) -> panels.Sight:
        client = self.slack()
        return panels.Sight.public_only(
            lambda ch: self.privacy.is_private(ch, client), self.approvals.settings.default_channel
        )

    def of(self, who: str) -> panels.Sight:
        if who.startswith("key:") or who in self.approvals.settings.admins:
            # Only admin keys get past the Gate (bot.gateway.auth): operators, who see everything.
            return panels.Sight.everything()
        access = self.access()
        if access is None:  # no Slack to ask who is in which channel: public channels only
            return self._public_only()
        return panels.Sight.of(access.viewer(who))


def _no_slack() -> WebClient | None:
    return None


def dashboard_routes(
    approvals: Approvals,
    keys: Authenticator,
    team: Callable[[], str | None] | None = None,
    slack: Callable[[], WebClient | None] = _no_slack,
) -> list[Route]:
    """The dashboard's routes, to mount on the web app. `slack()` gives the Slack client
    that answers channel membership and privacy (None: public channels only for non-admins)."""
    spent = SpentTokens(approvals.redis, approvals.keys)
    gate = Gate(approvals.settings, keys, team or Workspace(approvals.settings).team, spent)
    sights = Sights(approvals, slack)

    def board_for(request: Request) -> panels.Board:
        return panels.collect(approvals, sights.of(gate.who(request)))

    async def page(request: Request) -> Response:
        token = request.query_params.get("token")
        try:
            if token:
                claims = await run_in_threadpool(gate.open_link, token)
                resp = RedirectResponse(DASHBOARD_PATH, status_code=303)
                assert gate.key is not None
                session = dashauth.mint(gate.key, claims.team, claims.user, TokenKind.SESSION, SESSION_TTL)
                resp.set_cookie(
                    COOKIE, session, max_age=SESSION_TTL, path=DASHBOARD_PATH, httponly=True, samesite="lax",
                    secure=dashauth.secure_cookie(approvals.settings, request.url.scheme),
                )
                return resp
            board = await run_in_threadpool(board_for, request)
        except Denied as denied:
            return refusal(denied)
        except redis.RedisError as exc:
            return refusal(Denied("Redis is unreachable", f"The dashboard reads Redis: {exc}", 503))
        return HTMLResponse(_page(panels.render(board), board.now), headers={"cache-control": "no-store"})

    async def panel_data(request: Request) -> Response:
        try:
            board = await run_in_threadpool(board_for, request)
        except Denied as denied:
            return JSONResponse({"error": denied.title, "detail": denied.detail}, denied.status)
        except redis.RedisError as exc:
            return JSONResponse({"error": "Redis is unreachable", "detail": str(exc)}, 503)
        body = {"updated": _stamp(board.now), "panels": panels.render(board)}
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return [
        Route(DASHBOARD_PATH, page, methods=["GET"]),
        Route(DASHBOARD_PATH + "/panels", panel_data, methods=["GET"]),
    ]


def _stamp(now: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(now))


def _page(rendered: dict[str, str], now: float) -> str:
    sections = "".join(f"<section id='{p}' class='panel'>{part}</section>" for p, part in rendered.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>hitl-router dashboard</title><style>{_CSS}</style></head><body>"
        "<header><h1>hitl-router</h1><span class='muted'>live · updated "
        f"<span id='updated' data-testid='updated'>{_stamp(now)}</span></span></header>"
        f"<main class='grid'>{sections}</main><script>{_JS % (REFRESH_SECONDS * 1000)}</script></body></html>"
    )


_JS = """
const shown = new Map();
async function refresh() {
  try {
    const resp = await fetch('/dashboard/panels', {credentials: 'same-origin', cache: 'no-store'});
    if (resp.status === 401 || resp.status === 403) { location.reload(); return; }
    const data = await resp.json();
    for (const [id, html] of Object.entries(data.panels)) {
      const el = document.getElementById(id);
      if (el && shown.get(id) !== html) { el.innerHTML = html; shown.set(id, html); }
    }
    document.getElementById('updated').textContent = data.updated;
  } catch (err) {
    document.getElementById('updated').textContent = 'connection lost, retrying';
  }
}
setInterval(refresh, %d);
"""

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f8f8f8;color:#1d1c1d}
header{display:flex;align-items:baseline;gap:1rem;padding:.8rem 1.5rem;background:#4a154b;color:#fff}
header h1{font-size:1.2rem;margin:0} header .muted{color:#ddd}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1rem;padding:1rem}
.panel{background:#fff;border:1px solid #e2e2e2;border-radius:8px;padding:.8rem 1rem;overflow:auto}
h2{font-size:1.05rem;margin:.2rem 0 .6rem} h3{font-size:.95rem;margin:.2rem 0 .4rem}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0;min-width:40%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eee} .num{text-align:right}
.cols{display:flex;gap:1rem;flex-wrap:wrap;align-items:flex-start}
.big{font-size:1.6rem;margin:.2rem 0} .muted{color:#8d8d8d} .alert{color:#b2102f;font-weight:600}
.ok{color:#007a5a;font-weight:600} code{font-size:.8rem}
.actions{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.8rem}
.action{border:1px solid #eee;border-radius:6px;padding:.5rem .7rem}
.crit{display:grid;grid-template-columns:1fr auto;gap:0 .4rem;font-size:.8rem;margin:.25rem 0}
.crit progress{grid-column:1/3;width:100%;height:.6rem;accent-color:#e01e5a}
.crit.met progress{accent-color:#2eb67d} .crit.info progress{accent-color:#1264a3}
.crit .shown{text-align:right;color:#616061}
.why{margin:.2rem 0;padding-left:1.2rem;font-size:.8rem}
.stats{display:flex;gap:1.2rem;flex-wrap:wrap} .stat{display:flex;flex-direction:column}
.stat .num{font-size:1.4rem;text-align:left}
.chart svg{width:100%;height:auto}
.refused{max-width:36rem;margin:4rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;
border:1px solid #e2e2e2}
"""
