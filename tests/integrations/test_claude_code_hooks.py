"""Claude Code hooks against the whole product: `hitl hook claude-code` as Claude Code runs it
(a process with the event on stdin, HITL_API_URL and HITL_API_KEY, no Redis) and the `http`
hook at POST /v1/hooks/claude-code, decided by reviewers clicking cards in the Slack stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from bot.slack.blocks import cards, views
from hitl.apikeys import ApiKeyStore, Rate
from hitl.claude_code import FAIL_CLOSED
from tests.helpers import ROOT, events, eventually, publish_policy
from tests.remote.conftest import AGENT_KEY, Stack, agent_env, stack  # noqa: F401 - the product, as a fixture
from tests.slack.conftest import CHANNEL

PUSH = {"command": "git push --force origin main"}


def event(tool: str = "Bash", tool_input: dict[str, Any] | None = None, *, name: str = "PreToolUse",
          tool_use_id: str = "toolu_01", session: str = "sess-1") -> dict[str, Any]:
    """A hook event as Claude Code sends it."""
    return {
        "session_id": session, "transcript_path": "/tmp/t.jsonl", "cwd": "/work/app",
        "permission_mode": "default", "hook_event_name": name, "tool_name": tool,
        "tool_input": PUSH if tool_input is None else tool_input, "tool_use_id": tool_use_id,
    }


def start_hook(s: Stack, payload: dict[str, Any] | str, *args: str, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl.cli", "hook", "claude-code", *args], env=agent_env(s.api_url, **env), cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(payload if isinstance(payload, str) else json.dumps(payload))
    proc.stdin.close()
    proc.stdin = None  # sent; communicate() then only reads the answer
    return proc


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The hook's answer: exit 0 and one JSON object on stdout (what Claude Code reads)."""
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return json.loads(out)


def run_hook(s: Stack, payload: dict[str, Any] | str, *args: str, **env: str) -> dict[str, Any]:
    return finish(start_hook(s, payload, *args, **env))


def pending_ids(s: Stack) -> list[str]:
    return [i.decode() for i in s.approvals.redis.zrange(s.approvals.keys.pending, 0, -1)]


def first_pending(s: Stack) -> str:
    return eventually(lambda: pending_ids(s), 20, "a pending request")[0]


def created(s: Stack) -> list[str]:
    return [e["id"] for e in events(s.approvals.redis, s.approvals.keys.prefix) if e["type"] == "created"]


def cards_posted(s: Stack, request_id: str) -> int:
    return sum(
        ((m.metadata or {}).get("event_payload") or {}).get("id") == request_id
        for m in s.bot.slack.workspace.messages(CHANNEL, include_replies=False)
    )


def decision(answer: dict[str, Any]) -> tuple[str, str]:
    out = answer["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    return out["permissionDecision"], out.get("permissionDecisionReason", "")


def test_a_reviewers_edit_is_allowed_with_the_updated_input(stack: Stack) -> None:  # noqa: F811
    hook = start_hook(stack, event())
    rid = first_pending(stack)
    stack.bot.card(rid)
    stack.bot.click(rid, cards.ACTION_EDIT, user="U0ALICE")
    view = stack.bot.open_view("U0ALICE", views.VIEW_EDIT)
    edited = {"command": "git push origin main"}
    status, _ = stack.bot.interact(stack.bot.interactions.submit(view.id, {"params": json.dumps(edited)}))
    assert status == 200
    answer = finish(hook)
    assert answer["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert answer["hookSpecificOutput"]["updatedInput"] == edited
    req = stack.approvals.store.get(rid)
    assert req.action == "claude-code.Bash" and req.via == "billing-agent" and req.params == PUSH
    assert req.execution is not None  # handed to Claude Code: the approval is used up


def test_a_rejection_is_a_deny_with_the_reviewers_reason(stack: Stack) -> None:  # noqa: F811
    hook = start_hook(stack, event("Write", {"file_path": "/etc/hosts", "content": "x"}))
    rid = first_pending(stack)
    stack.bot.card(rid)
    stack.bot.click(rid, cards.ACTION_REJECT, user="U0BOB")
    view = stack.bot.open_view("U0BOB", views.VIEW_REJECT)
    status, _ = stack.bot.interact(stack.bot.interactions.submit(view.id, {"reason": "not the hosts file"}))
    assert status == 200
    verdict, reason = decision(finish(hook))
    assert verdict == "deny" and "not the hosts file" in reason and "U0BOB" in reason


def test_a_timeout_denies_still_pending_and_the_repeat_re_attaches(stack: Stack) -> None:  # noqa: F811
    verdict, reason = decision(run_hook(stack, event(tool_use_id="toolu_01"), "--wait", "1"))
    (rid,) = created(stack)
    assert verdict == "deny"
    assert f"no decision yet (request {rid} is still pending in Slack)" in reason
    assert stack.approvals.store.get(rid).status == "pending"  # never withdrawn
    stack.bot.card(rid)
    status, _ = stack.bot.click(rid, cards.ACTION_APPROVE, "U0ALICE")
    assert status == 200
    # The model makes the same call again: a new tool_use_id, the same session, tool and input.
    again = run_hook(stack, event(tool_use_id="toolu_02"), "--wait", "5")
    assert again["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert "updatedInput" not in again["hookSpecificOutput"]  # not edited: Claude Code keeps its input
    assert created(stack) == [rid] and cards_posted(stack, rid) == 1
    # Once used, the same command later in the session asks again: never allowed twice on one approval.
    verdict, reason = decision(run_hook(stack, event(tool_use_id="toolu_03"), "--wait", "0"))
    assert verdict == "deny" and "still pending" in reason and len(created(stack)) == 2


def test_an_auto_mode_tool_is_allowed_at_once(stack: Stack) -> None:  # noqa: F811
    publish_policy(stack.approvals, "actions:\n  claude-code.Read: {mode: auto}\n")
    answer = run_hook(stack, event("Read", {"file_path": "/work/app/README.md"}), "--wait", "30")
    assert answer["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert pending_ids(stack) == []


def test_permission_request_events_answer_in_their_own_format(stack: Stack) -> None:  # noqa: F811
    payload = event(name="PermissionRequest")
    del payload["tool_use_id"]  # PermissionRequest carries none
    hook = start_hook(stack, payload)
    rid = first_pending(stack)
    stack.bot.card(rid)
    stack.bot.click(rid, cards.ACTION_APPROVE, "U0ALICE")
    assert finish(hook) == {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                                                   "decision": {"behavior": "allow"}}}


def test_the_http_hook_with_a_bad_key_is_401_and_the_command_hook_denies(stack: Stack) -> None:  # noqa: F811
    url = f"{stack.api_url}/v1/hooks/claude-code"
    response = httpx.post(url, json=event(), headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["hookSpecificOutput"]["permissionDecision"] == "deny"
    verdict, reason = decision(run_hook(stack, event(), HITL_API_KEY="wrong"))
    assert verdict == "deny" and "refused HITL_API_KEY" in reason and FAIL_CLOSED in reason
    assert created(stack) == []


def test_the_http_hook_decides_like_the_command(stack: Stack) -> None:  # noqa: F811
    url = f"{stack.api_url}/v1/hooks/claude-code"
    headers = {"Authorization": f"Bearer {AGENT_KEY}"}
    answer = httpx.post(url, json=event(), params={"wait": "0"}, headers=headers, timeout=10)
    assert answer.status_code == 200
    (rid,) = created(stack)
    verdict, reason = decision(answer.json())
    assert verdict == "deny" and f"request {rid} is still pending" in reason
    bad = httpx.post(url, content=b"{not json", headers=headers, timeout=10)
    assert bad.status_code == 200 and decision(bad.json())[0] == "deny"  # Claude Code ignores non-2xx


@pytest.mark.parametrize(
    ("stdin", "env", "says"),
    [
        ("{not json", {}, "bad hook event"),
        (json.dumps({"hook_event_name": "Stop"}), {}, "PreToolUse and PermissionRequest"),
        (json.dumps(event()), {"HITL_API_URL": "http://127.0.0.1:9"}, "is `hitl bot` running?"),
    ],
)
def test_every_error_path_denies_with_a_message_a_person_can_act_on(
    stack: Stack, stdin: str, env: dict[str, str], says: str  # noqa: F811
) -> None:
    verdict, reason = decision(run_hook(stack, stdin, **env))
    assert verdict == "deny" and FAIL_CLOSED in reason and says in reason


def test_a_bad_argument_still_answers_deny(stack: Stack) -> None:  # noqa: F811
    verdict, reason = decision(run_hook(stack, event(), "--wait", "forever"))
    assert verdict == "deny" and "--wait" in reason


def test_a_hook_killed_by_claude_codes_timeout_leaves_the_request_pending(stack: Stack) -> None:  # noqa: F811
    hook = start_hook(stack, event(), "--wait", "50")
    rid = first_pending(stack)
    hook.kill()  # Claude Code's own hook timeout ends the process mid-wait
    hook.wait(10)
    assert stack.approvals.store.get(rid).status == "pending"
    stack.bot.card(rid)
    status, _ = stack.bot.click(rid, cards.ACTION_APPROVE, "U0ALICE")
    assert status == 200
    again = run_hook(stack, event(tool_use_id="toolu_09"), "--wait", "5")
    assert again["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert created(stack) == [rid] and cards_posted(stack, rid) == 1


def test_a_shadow_mode_tool_leaves_the_choice_to_claude_codes_own_prompt(stack: Stack) -> None:  # noqa: F811
    publish_policy(stack.approvals, "actions:\n  claude-code.Bash: {mode: shadow}\n")
    verdict, reason = decision(run_hook(stack, event(), "--wait", "30"))
    assert verdict == "ask" and "shadow" in reason


def test_a_tool_outside_the_keys_actions_is_denied_and_nothing_is_filed(stack: Stack) -> None:  # noqa: F811
    _, secret = ApiKeyStore(stack.approvals.redis, stack.approvals.keys).create(
        "reader", rate=Rate(20), actions=["claude-code.Read"]
    )
    verdict, reason = decision(run_hook(stack, event(), HITL_API_KEY=secret))
    assert verdict == "deny" and FAIL_CLOSED in reason and "claude-code.Bash" in reason
    assert created(stack) == []
