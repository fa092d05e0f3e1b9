"""The framework adapters with only an API key: no Redis anywhere in the agent's process.

The agent process is killed after its approved tool ran; the new process re-attaches over
HTTP, does not run the tool again, tells the model the outcome is unknown, and the card
says so (the execution record goes through `POST /v1/requests/{id}/execution`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.slack.blocks import cards
from hitl.queries import pending
from hitl.status import ExecutionState
from tests.helpers import ROOT, eventually
from tests.integrations.agent_process import ARGS, HANG_AFTER_TOOL
from tests.remote.conftest import Stack, agent_env
from tests.slack.conftest import card_text


def agent(stack: Stack, kind: str, phase: str, folder: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = agent_env(stack.api_url, PYTHONPATH=str(ROOT), **extra)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.agent_process", kind, phase, str(folder)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kind", ["openai", "lg-node"])
def test_an_agent_with_only_an_api_key_runs_an_approved_tool_at_most_once(
    kind: str, stack: Stack, tmp_path: Path
) -> None:
    first = agent(stack, kind, "start", tmp_path, **{HANG_AFTER_TOOL: "1"})
    log = tmp_path / "tool.log"
    try:
        (req,) = eventually(lambda: pending(stack.approvals.store), 60, "the agent to file its request")
        stack.bot.card(req.id, timeout=30)
        status, body = stack.bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
        assert status == 200, body
        eventually(lambda: log.exists() and log.read_text().strip(), 60, "the approved tool to run")
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert req.via == "billing-agent"
    assert stack.approvals.get(req.id).fetch().execution is ExecutionState.STARTED

    second = agent(stack, kind, "resume", tmp_path)
    out, err = second.communicate(timeout=90)
    assert second.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])["result"]
    assert "Outcome unknown: check before retrying" in result
    assert [json.loads(line) for line in log.read_text().splitlines()] == [ARGS]
    assert stack.approvals.get(req.id).fetch().execution is ExecutionState.UNKNOWN
    stack.bot.card_when(req.id, lambda m: "Outcome unknown: check before retrying" in card_text(m), timeout=30)
