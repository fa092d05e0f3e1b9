"""A bad gateway config stops `hitl mcp gateway` at once, with a line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.gateway.mcpgateway import config as gateway_config
from hitl.errors import ConfigError
from tests.helpers import ROOT


@pytest.mark.parametrize(("text", "said"), [
    ("upstreams: {}\n", "name at least one MCP server"),
    ("upstreams:\n  a: {command: [x], url: http://h/mcp}\n", "upstreams.a: give either command"),
    ("upstreams:\n  a: {url: ftp://h}\n", "upstreams.a.url"),
    ("upstreams:\n  a: {url: http://h/mcp, headers: {X: '${HITL_TEST_UNSET_VAR}'}}\n",
     "${HITL_TEST_UNSET_VAR} is not set"),
    ("upstreams:\n  'bad name': {url: http://h/mcp}\n", "upstreams.bad name: a name is 1 to 40"),
])
def test_a_bad_config_is_one_line_naming_the_key(tmp_path: Path, text: str, said: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "hitl.cli", "mcp", "gateway", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 3, done.stderr
    assert said in done.stderr


@pytest.mark.parametrize(("wait", "said"), [
    (0, "wait_seconds: a number of seconds above 0"), (-1, "above 0"), (7200, "at most 3600"),
    ("soon", "a number of seconds"), (True, "a number of seconds"),
])
def test_wait_seconds_must_be_a_sensible_number(wait: object, said: str) -> None:
    upstreams = {"a": {"url": "http://h/mcp"}}
    with pytest.raises(ConfigError, match=said):
        gateway_config.parse({"upstreams": upstreams, "wait_seconds": wait})
    assert gateway_config.parse({"upstreams": upstreams}).wait_seconds == 50  # under 60 s client timeouts
    assert gateway_config.parse({"upstreams": upstreams, "wait_seconds": 5}).wait_seconds == 5
    with pytest.raises(ConfigError, match="optionally wait_seconds"):
        gateway_config.parse({"upstreams": upstreams, "wait": 5})  # a misspelt key is not ignored
