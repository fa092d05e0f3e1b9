"""The README's "Guard your MCP servers" config: the YAML loads, and the MCP config's
command starts a gateway that serves (with the test upstream in place of the README's)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bot.gateway.mcpgateway.config import HttpUpstream, StdioUpstream, parse
from tests.helpers import ROOT, hitl_env
from tests.mcpgateway.conftest import UpstreamLog, call, stdio_upstream

SECTION = (ROOT / "README.md").read_text().split("## Guard your MCP servers", 1)[1].split("\n## ", 1)[0]


def _block(lang: str) -> str:
    match = re.search(rf"```{lang}\n(.*?)```", SECTION, re.S)
    assert match, f"the section has a {lang} block"
    return match.group(1)


def test_the_readme_gateway_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETS_TOKEN", "t0k")
    config = parse(yaml.safe_load(_block("yaml")))
    files, tickets = config.upstreams["files"], config.upstreams["tickets"]
    assert isinstance(files, StdioUpstream) and files.command[0] == "npx"
    assert isinstance(tickets, HttpUpstream) and tickets.headers == {"Authorization": "Bearer t0k"}


@pytest.mark.usefixtures("policy")
def test_the_readme_mcp_config_runs_the_gateway(
    redis_url: str, prefix: str, tmp_path: Path, received: UpstreamLog
) -> None:
    server = json.loads(_block("json"))["mcpServers"]["guarded"]
    args = list(server["args"])
    assert args[:3] == ["mcp", "gateway", "--config"]
    config = tmp_path / args[3]
    config.write_text(yaml.safe_dump({"upstreams": {"up": stdio_upstream(received)}}))
    args[3] = str(config)
    command = shutil.which(server["command"], path=str(Path(sys.executable).parent))
    assert command, "the hitl console script is installed next to this Python"

    async def scenario() -> str:
        params = StdioServerParameters(command=command, args=args, env=hitl_env(redis_url, prefix), cwd=ROOT)
        async with Client(params, read_timeout_seconds=60) as client:
            return (await call(client, "echo", text="from the README")).text

    assert asyncio.run(scenario()) == "echo: from the README"
