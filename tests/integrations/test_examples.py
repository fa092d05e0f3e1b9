"""Every example in examples/ runs against the scripted models and says what it should,
including the output the guides show for it (tests/test_docs.py leaves those runs to this file)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hitl import Approvals
from tests.helpers import ROOT, events, hitl_env
from tests.test_docs import shown_output

EXAMPLES = {
    "examples.langgraph_agent": (
        "--self-approve",
        ["[slack] card: send_email", "[tool] send_email(to='billing@example.com'", "sent to billing@example.com"],
    ),
    "examples.openai_agents_run": (
        "--self-reject",
        ["[slack] card: delete_record", "[model] final: Rejected by U0ALICE: that customer has an open invoice"],
    ),
    "examples.pydantic_ai_agent": (
        "--self-approve",
        ["[slack] card: refund", "[tool] refund(order='A-17', amount=300)", "[model] final: refunded 300 on A-17"],
    ),
    "examples.google_adk_agent": (
        "--self-approve",
        ["[slack] card: transfer", "[tool] transfer(account='ACME-1', amount=100)", "[model] final: transferred 100 to ACME-1"],
    ),
}


@pytest.mark.parametrize("module", sorted(EXAMPLES))
def test_example_runs(module: str, redis_url: str, prefix: str, approvals: Approvals) -> None:
    """Run against a Redis where another agent's request already waits (as `make demo`'s
    email to 200 customers did): the stand-in reviewer decides only its own run's request."""
    flag, expected = EXAMPLES[module]
    theirs = approvals.request(action="send_email", summary="Email 200 customers", params={"to": "all"})
    env = hitl_env(redis_url, prefix, PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, flag], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the example never got its own decision; the other request is {theirs.status()}: {exc.stdout!r}")
    assert done.returncode == 0, done.stderr
    for line in expected:
        assert line in done.stdout, done.stdout
    for command in shown_output(module, flag):  # what docs/frameworks.md says this run prints
        for line in command.expected:
            assert line in done.stdout, f"{command}: expected {line!r} in:\n{done.stdout}"
    assert "[tool] delete_record" not in done.stdout
    assert theirs.status() == "pending" and theirs.id not in done.stdout
    # It says where it files, so nobody points it at a Redis they did not mean to.
    assert f"[hitl] Redis {redis_url} (prefix {prefix!r})" in done.stdout.splitlines()[0]
    ours = [e["id"] for e in events(approvals.redis, prefix) if e["type"] == "decided"]
    assert len(ours) == 1 and ours[0] != theirs.id
