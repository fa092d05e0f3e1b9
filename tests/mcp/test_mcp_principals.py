"""/mcp enforces the same principals as /v1 (issue 15, item 3): the key's name is `via` on
what it files, a key sees and cancels only its own requests (anyone else's id is the same
error as an unknown one), action patterns hold, and the card names the filing key.

Each agent is the MCP SDK's client with one bearer key, nothing more."""

from __future__ import annotations

import asyncio
import json

from hitl import Approvals
from hitl.apikeys import ApiKeyStore, Rate
from hitl.settings import Settings
from tests.helpers import events, eventually
from tests.mcp.conftest import API_KEY, Answer, call, serve
from tests.slack.conftest import Bot, bot, card_text, slack  # noqa: F401 - the Slack fixtures, reused here

OTHER_KEY = "s3cret-other-agent"
KEYS = {API_KEY: "agent-one", OTHER_KEY: "agent-two"}
PRIVATE = {
    "action": "export_payroll", "summary": "Export the payroll of every employee", "channel": "C0SECRET",
    "params": {"salary_table": "hr.salaries"}, "mode": "gate", "wait_seconds": 0,
}


def created_via(approvals: Approvals, request_id: str) -> str | None:
    docs = [json.loads(e["doc"]) for e in events(approvals.redis, approvals.keys.prefix, request_id)
            if e["type"] == "created"]
    return docs[0]["via"]


def test_mcp_requests_record_the_key_name_as_via(settings: Settings, approvals: Approvals) -> None:
    async def scenario() -> tuple[dict, dict]:
        with serve(settings, KEYS) as server:
            async with server.client(API_KEY) as client:
                filed = (await call(client, "request_approval", action="deploy", summary="Deploy", wait_seconds=0)).json
                asked = asyncio.ensure_future(call(
                    client, "permission_prompt", tool_name="Bash", input={"command": "ls"}, wait_seconds=3,
                ))
                # Decide the permission prompt's request once it exists.
                def prompt_id() -> list[str]:
                    ids = [i.decode() for i in approvals.redis.zrange(approvals.keys.pending, 0, -1)]
                    return [i for i in ids if i != filed["id"]]

                prompt = await asyncio.to_thread(eventually, prompt_id, 10, "the prompt's request")
                approvals.decide(prompt[0], "approve", by="U0ALICE")
                return filed, {"answer": (await asked).json, "id": prompt[0]}

    filed, prompt = asyncio.run(scenario())
    assert prompt["answer"]["behavior"] == "allow"
    for rid in (filed["id"], prompt["id"]):
        assert approvals.store.get(rid).via == "agent-one"
        assert created_via(approvals, rid) == "agent-one"


def test_mcp_another_keys_request_is_the_same_error_as_an_unknown_id(
    settings: Settings, approvals: Approvals
) -> None:
    async def scenario() -> tuple[str, dict[str, Answer], dict[str, Answer]]:
        with serve(settings, KEYS) as server:
            async with server.client(API_KEY) as a:
                rid = (await call(a, "request_approval", **PRIVATE)).json["id"]
            fake = "r" + "0" * (len(rid) - 1)
            theirs, unknown = {}, {}
            async with server.client(OTHER_KEY) as b:
                for tool, extra in (("get_approval", {}), ("await_approval", {"wait_seconds": 1}),
                                    ("cancel_approval", {})):
                    theirs[tool] = await call(b, tool, id=rid, **extra)
                    unknown[tool] = await call(b, tool, id=fake, **extra)
            return rid, theirs, unknown

    rid, theirs, unknown = asyncio.run(scenario())
    fake = "r" + "0" * (len(rid) - 1)
    for tool, answer in theirs.items():
        assert answer.error, (tool, answer.text)
        assert answer.text == unknown[tool].text.replace(fake, rid), tool
        assert "payroll" not in answer.text and "C0SECRET" not in answer.text
    assert approvals.store.get(rid).status.value == "pending"  # B's cancel did nothing


def test_mcp_admin_key_reads_every_request(settings: Settings, approvals: Approvals) -> None:
    _, admin_secret = ApiKeyStore(approvals.redis, approvals.keys).create("ops", rate=Rate(20), admin=True)

    async def scenario() -> Answer:
        with serve(settings, KEYS) as server:
            async with server.client(API_KEY) as a:
                rid = (await call(a, "request_approval", **PRIVATE)).json["id"]
            async with server.client(admin_secret) as admin:
                return await call(admin, "get_approval", id=rid)

    assert asyncio.run(scenario()).json["summary"] == PRIVATE["summary"]


def test_mcp_action_outside_the_keys_patterns_is_a_tool_error(settings: Settings, approvals: Approvals) -> None:
    _, secret = ApiKeyStore(approvals.redis, approvals.keys).create("billing-agent", rate=Rate(20), actions=["send_*"])

    async def scenario() -> tuple[Answer, Answer, Answer]:
        with serve(settings, {}) as server:
            async with server.client(secret) as agent:
                refused = await call(agent, "request_approval", action="delete_user", summary="x", wait_seconds=0)
                prompt = await call(agent, "permission_prompt", tool_name="Bash", input={"command": "rm"},
                                    wait_seconds=0)
                allowed = await call(agent, "request_approval", action="send_invoice", summary="x", wait_seconds=0)
                return refused, prompt, allowed

    refused, prompt, allowed = asyncio.run(scenario())
    assert refused.error and "action" in refused.text and "delete_user" in refused.text
    assert "billing-agent" in refused.text
    assert prompt.error and "'Bash'" in prompt.text
    assert approvals.store.get(allowed.json["id"]).via == "billing-agent"
    assert approvals.redis.zcard(approvals.keys.pending) == 1  # nothing refused was filed


def test_the_card_names_the_key_that_filed_it(bot: Bot) -> None:  # noqa: F811
    async def scenario() -> str:
        with serve(bot.approvals.settings, {API_KEY: "billing-agent"}) as server:
            async with server.client(API_KEY) as client:
                return (await call(client, "request_approval", action="send_invoice", summary="Invoice ACME",
                                   wait_seconds=0)).json["id"]

    rid = asyncio.run(scenario())
    card = bot.card(rid)
    texts = [e.get("text") for b in card.blocks or [] if b.get("type") == "context" for e in b["elements"]]
    assert "filed by agent key `billing-agent`" in texts, card_text(card)
