"""Every example in examples/ runs against the scripted models and says what it should."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, hitl_env

EXAMPLES = {
    "examples.langgraph_agent": (
        "--self-approve",
        ["[slack] card: send_email", "[tool] send_email(to='billing@example.com'", "sent to billing@example.com"],
    ),
    "examples.openai_agents_run": (
        "--self-reject",
        ["[slack] card: delete_record", "[model] final: Rejected by U0ALICE: that customer has an open invoice"],
    ),
}


@pytest.mark.parametrize("module", sorted(EXAMPLES))
def test_example_runs(module: str, redis_url: str, prefix: str) -> None:
    flag, expected = EXAMPLES[module]
    env = hitl_env(redis_url, prefix, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", module, flag], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for line in expected:
        assert line in done.stdout, done.stdout
    assert "[tool] delete_record" not in done.stdout
