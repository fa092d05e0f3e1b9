"""Visibility is one rule everywhere: the dashboard and `/metrics` show a private
channel's requests to nobody `/hitl` would not show them to.

Alice is an admin, Carol a member of the private channel #secret-ops, Mallory neither.
The web process is the real one (`build_web_app`), the Slack stand-in answers
`conversations.info` and `conversations.members` as Slack does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions
from hitl_sandbox.workspace import TEAM_ID
from pydantic import SecretStr
from slack_sdk import WebClient
from starlette.testclient import TestClient

from bot import dashauth
from bot.dashauth import SESSION_TTL, TokenKind
from bot.gateway.web import WebServer, build_web_app
from bot.main import learn_privacy
from bot.slack.app import build_app
from hitl import Approvals
from hitl.membership import ChannelPrivacy
from tests.conftest import make_settings
from tests.slack.conftest import CHANNEL, SECRET, TOKEN, Bot

SECRET_CHANNEL = "C0SECRET"
MALLORY = "U0MALLORY"
PRIVATE_ACTION = "rotate_payroll_credentials"
PUBLIC_ACTION = "deploy_docs"


@pytest.fixture
def bot(redis_url: str, prefix: str, slack: SlackStandIn) -> Iterator[Bot]:
    """The web process with the Bolt app; Alice is the admin, and the dashboard is open to
    Carol and Mallory too (HITL_DASHBOARD_USERS). No worker: cards need not be posted."""
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=slack.url,
        default_channel=CHANNEL, admins=["U0ALICE"], dashboard_users=["U0ALICE", "U0CAROL", MALLORY],
    )
    approvals = Approvals(settings=settings)
    app = build_app(settings, approvals=approvals, client=WebClient(token=TOKEN, base_url=slack.url))
    server = WebServer(build_web_app(approvals, bolt=app, signing_secret=SECRET), host="127.0.0.1", port=0).start()
    try:
        yield Bot(server.url, slack, approvals, Interactions(slack.workspace))
    finally:
        server.stop()
        approvals.close()


@pytest.fixture
def filed(bot: Bot) -> dict[str, str]:
    """A decided and a waiting request in each of a public and a private channel."""
    ws = bot.slack.workspace
    ws.add_user(MALLORY, "mallory", "Mallory Moss")
    ws.add_channel("secret-ops", SECRET_CHANNEL, is_private=True, members=["U0ALICE", "U0CAROL"])
    learn_privacy(bot.approvals, bot.approvals.settings)  # what `hitl bot` does at start
    a = bot.approvals
    ids = {}
    for name, action, channel in (("public", PUBLIC_ACTION, CHANNEL), ("private", PRIVATE_ACTION, SECRET_CHANNEL)):
        done = a.request(action=action, summary="Decided", channel=channel, mode="gate")
        a.decide(done.id, "approve", by="U0ALICE")
        ids[name] = a.request(action=action, summary="Waiting", channel=channel, mode="gate").id
    return ids


def _panels(bot: Bot, user: str) -> str:
    key = dashauth.signing_key(bot.approvals.settings)
    assert key is not None
    cookie = dashauth.mint(key, TEAM_ID, user, TokenKind.SESSION, SESSION_TTL)
    base = bot.url.removesuffix("/slack/events")
    with httpx.Client(base_url=base, cookies={dashauth.COOKIE: cookie}, timeout=20) as http:
        panels = http.get("/dashboard/panels")
        page = http.get("/dashboard")
    assert panels.status_code == 200 and page.status_code == 200, (panels.text, page.text)
    return json.dumps(panels.json()) + page.text


def test_a_non_member_sees_nothing_of_a_private_channel_on_the_dashboard(bot: Bot, filed: dict[str, str]) -> None:
    seen = _panels(bot, MALLORY)
    for secret in (SECRET_CHANNEL, PRIVATE_ACTION, filed["private"]):
        assert secret not in seen
    # What Mallory may see is there: the public channel's request and its figures.
    assert filed["public"] in seen and PUBLIC_ACTION in seen
    assert "data-testid='pending-total'>1<" in seen


def test_a_member_sees_the_private_request_and_an_admin_sees_every_figure(bot: Bot, filed: dict[str, str]) -> None:
    carol = _panels(bot, "U0CAROL")
    assert filed["private"] in carol and SECRET_CHANNEL in carol
    alice = _panels(bot, "U0ALICE")
    for shown in (SECRET_CHANNEL, PRIVATE_ACTION, filed["private"], filed["public"]):
        assert shown in alice
    assert "data-testid='pending-total'>2<" in alice


def test_metrics_label_a_private_channel_private(bot: Bot, filed: dict[str, str]) -> None:
    base = bot.url.removesuffix("/slack/events")
    text = httpx.get(base + "/metrics", timeout=20).text
    assert SECRET_CHANNEL not in text
    assert f'hitl_pending{{channel="{CHANNEL}",mode="gate"}} 1.0' in text
    assert 'hitl_pending{channel="private",mode="gate"} 1.0' in text


def test_metrics_need_the_token_when_one_is_set(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, metrics_token=SecretStr("scrape-s3cret"))
    with Approvals(settings=settings) as approvals, TestClient(build_web_app(approvals)) as http:
        missing = http.get("/metrics")
        wrong = http.get("/metrics", headers={"Authorization": "Bearer nope"})
        ok = http.get("/metrics", headers={"Authorization": "Bearer scrape-s3cret"})
    assert missing.status_code == 401 and "HITL_METRICS_TOKEN" in missing.text
    assert wrong.status_code == 401
    assert ok.status_code == 200 and "hitl_pending" in ok.text


def test_an_agent_key_sees_nothing_of_the_dashboard(redis_url: str, prefix: str) -> None:
    """An agent's API key has no Slack identity and reads only its own requests: the
    dashboard, which shows everyone's, lets in admin keys only (bot.gateway.dashboard.Gate)."""
    settings = make_settings(redis_url, prefix, api_keys={"agent": SecretStr("agent-key")})
    with Approvals(settings=settings) as approvals:
        ChannelPrivacy(approvals.redis, approvals.keys).put("C0OPS", private=False)  # Slack said public
        public = approvals.request(action="deploy", summary="Deploy", channel="C0OPS", mode="gate")
        hidden = approvals.request(action="drop_table", summary="Drop", channel="C0UNKNOWN", mode="gate")
        with TestClient(build_web_app(approvals)) as http:
            resp = http.get("/dashboard/panels", headers={"Authorization": "Bearer agent-key"})
    assert resp.status_code == 403
    seen = resp.text
    assert "admin key" in seen
    assert public.id not in seen and hidden.id not in seen and "drop_table" not in seen and "C0UNKNOWN" not in seen
