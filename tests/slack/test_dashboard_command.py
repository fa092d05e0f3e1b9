"""`/hitl dashboard` and `/hitl stats` through the real Bolt app: a private signed link
that the same web process accepts (for this workspace and user only), and API keys."""

from __future__ import annotations

import re
import urllib.parse

import httpx
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot import dashauth
from bot.dashauth import TokenKind
from bot.sandbox.workspace import TEAM_ID
from bot.web import build_web_app
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
