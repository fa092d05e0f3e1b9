"""`hitl dev` makes an API key and prints a curl line that works as printed."""

from __future__ import annotations

import re
import shlex
import subprocess

from bot.sandbox.dev import banner, running_stack
from hitl.embedded import free_port
from hitl.settings import Settings


def test_dev_prints_a_key_and_a_working_curl_line(redis_url: str, prefix: str) -> None:
    with running_stack(port=free_port(), redis_url=redis_url, prefix=prefix, isolated=True) as stack:
        text = banner(stack, demo=False)
        line = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("curl "))
        assert stack.api_key in line
        out = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=30, check=True).stdout
        rid = re.search(r'"id":"([0-9a-z]+)"', out.replace(" ", ""))
        assert rid, out
        req = stack.approvals.store.get(rid.group(1))
    assert req.summary == "Deploy v1.2"
    assert req.via == "dev"


def test_dev_stays_on_loopback_whatever_hitl_host_says(redis_url: str, prefix: str) -> None:
    """HITL_HOST is for `hitl bot`; the sandbox signs Slack requests as anyone and prints its key."""
    settings = Settings(_env_file=None, host="0.0.0.0")  # type: ignore[call-arg]
    with running_stack(port=free_port(), redis_url=redis_url, prefix=prefix, isolated=True, settings=settings) as stack:
        assert stack.bot.sock.getsockname()[0] == "127.0.0.1"
        assert stack.stand_in.url.startswith("http://127.0.0.1:")
