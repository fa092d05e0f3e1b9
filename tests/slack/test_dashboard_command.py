"""`/hitl dashboard` and `/hitl stats` through the real Bolt app: a private signed link
that the same web process accepts (for this workspace and user only), and API keys."""

from __future__ import annotations

import re
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import httpx
from hitl_sandbox import SlackStandIn
from hitl_sandbox.workspace import TEAM_ID
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot import dashauth
from bot.dashauth import TokenKind
from bot.gateway.web import build_web_app
from hitl import Approvals
from hitl.apikeys import ApiKeyStore, Rate
from tests.conftest import make_settings
from tests.slack.conftest import Bot

_LINK = re.compile(r"<(http://[^|>]+/dashboard\?token=[^|>]+)\|")


def _token(text: str) -> str:
    found = _LINK.search(text)
    assert found, text
    query = urllib.parse.urlsplit(found.group(1)).query
    return urllib.parse.parse_qs(query)["token"][0]


def test_dashboard_command_gives_a_link_the_web_process_accepts(bot: Bot) -> None:
    reply = bot.command("dashboard", user="U0ALICE")
    assert reply["response_type"] == "ephemeral"
    assert "valid for 10 minutes" in reply["text"]
    token = _token(reply["text"])
    base = bot.url.removesuffix("/slack/events")
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
        resp = http.get("/dashboard", params={"token": token})
        assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
        assert dashauth.COOKIE in resp.cookies
        page = http.get("/dashboard")
        assert page.status_code == 200 and "Autonomy readiness" in page.text
        panels = http.get("/dashboard/panels").json()
        assert set(panels["panels"]) == {"queue", "decision-time", "readiness", "outcomes", "slack"}
    # Without the session, nothing.
    assert httpx.get(base + "/dashboard/panels", timeout=10).status_code == 401


def test_stats_link_to_the_dashboard_and_non_admins_get_no_link(bot: Bot) -> None:
    req = bot.approvals.request(action="deploy", summary="Deploy")
    bot.approvals.decide(req.id, "approve", by="U0ALICE")
    text = bot.command("stats", user="U0ALICE")["blocks"][0]["text"]["text"]
    assert "Live charts and autonomy readiness on the dashboard" in text
    claims = dashauth.verify(dashauth.signing_key(bot.approvals.settings), _token(text), TokenKind.LINK)
    assert (claims.team, claims.user) == (TEAM_ID, "U0ALICE")
    # HITL_ADMINS is U0ALICE here: Bob may not open the dashboard, so gets no link.
    refused = bot.command("dashboard", user="U0BOB")
    assert "open to the people in HITL_DASHBOARD_USERS" in refused["text"] and "token=" not in refused["text"]
    assert "token=" not in bot.command("stats", user="U0BOB")["blocks"][0]["text"]["text"]


def test_admin_api_keys_open_the_dashboard_panels_and_agent_keys_do_not(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, api_keys={"agent": SecretStr("s3cret-agent")})
    with Approvals(settings=settings) as approvals:
        _, grafana = ApiKeyStore(approvals.redis, approvals.keys).create("grafana", rate=Rate(20), admin=True)
        approvals.request(action="deploy", summary="Deploy", mode="gate")
        with TestClient(build_web_app(approvals)) as http:
            ok = http.get("/dashboard/panels", headers={"Authorization": f"Bearer {grafana}"})
            agent = http.get("/dashboard/panels", headers={"Authorization": "Bearer s3cret-agent"})
            wrong = http.get("/dashboard", headers={"Authorization": "Bearer nope"})
    assert ok.status_code == 200
    assert "data-testid='pending-total'>1<" in ok.json()["panels"]["queue"]
    # An agent's key reads only its own requests; the dashboard shows everyone's.
    assert agent.status_code == 403 and "admin key" in agent.text and "Deploy" not in agent.text
    assert wrong.status_code == 401 and "Wrong API key" in wrong.text and "Traceback" not in wrong.text


def test_a_dashboard_link_opens_the_dashboard_once(bot: Bot) -> None:
    token = _token(bot.command("dashboard", user="U0ALICE")["text"])
    base = bot.url.removesuffix("/slack/events")
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as first:
        assert first.get("/dashboard", params={"token": token}).status_code == 303
        assert first.get("/dashboard").status_code == 200  # the session it started goes on working
    # The same link again (forwarded, pasted, replayed from a log): refused, saying what to do.
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as again:
        resp = again.get("/dashboard", params={"token": token})
        assert resp.status_code == 401 and dashauth.COOKIE not in resp.cookies
        assert "This link was already used" in resp.text and "/hitl dashboard" in resp.text
        assert again.get("/dashboard/panels").status_code == 401


def test_concurrent_uses_of_one_link_let_exactly_one_in(bot: Bot) -> None:
    token = _token(bot.command("dashboard", user="U0ALICE")["text"])
    base = bot.url.removesuffix("/slack/events")
    start = threading.Barrier(8)

    def use(_: int) -> tuple[int, bool]:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
            start.wait()
            resp = http.get("/dashboard", params={"token": token})
            return resp.status_code, dashauth.COOKIE in resp.cookies

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(use, range(8)))
    assert answers == [(303, True)] + [(401, False)] * 7


def _session_cookie(public_url: str | None, slack: SlackStandIn, redis_url: str, prefix: str) -> str:
    """The Set-Cookie header of a link's exchange, reached over plain http (as behind a TLS proxy)."""
    settings = make_settings(
        redis_url, prefix, slack_bot_token="xoxb-test-token", slack_api_url=slack.url,
        dashboard_secret="dashboard-test-secret", public_url=public_url,
    )
    key = dashauth.signing_key(settings)
    assert key is not None
    with Approvals(settings=settings) as approvals, TestClient(build_web_app(approvals)) as http:
        token = dashauth.mint(key, TEAM_ID, "U0ALICE", TokenKind.LINK, 600)
        resp = http.get("/dashboard", params={"token": token}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return resp.headers["set-cookie"]


def test_the_session_cookie_is_secure_when_the_public_url_is_https(
    slack: SlackStandIn, redis_url: str, prefix: str
) -> None:
    behind_tls = _session_cookie("https://hitl.example.com", slack, redis_url, prefix).lower()
    assert "; secure" in behind_tls and "; httponly" in behind_tls and "samesite=lax" in behind_tls
    plain = _session_cookie("http://localhost:3000", slack, redis_url, prefix).lower()
    assert "; secure" not in plain and "; httponly" in plain and "samesite=lax" in plain
