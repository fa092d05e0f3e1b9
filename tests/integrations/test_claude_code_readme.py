"""The Claude Code `settings.json` snippets (the command hook in the README, the http hook in
docs/mcp.md) parse and name the real command and route."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from urllib.parse import parse_qs, urlsplit

from bot.gateway.hooks import HOOK_PATH, MAX_WAIT
from hitl import cli, hookcli
from tests.helpers import ROOT


def _snippets_in(path: str, heading: str) -> list[dict]:
    text = (ROOT / path).read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


def _snippets() -> list[dict]:
    """[the README's command hook, docs/mcp.md's http hook]."""
    return [*_snippets_in("README.md", "Claude Code"), *_snippets_in("docs/mcp.md", "Claude Code hooks")]


def _hooks(snippet: dict) -> list[dict]:
    (entry,) = snippet["hooks"]["PreToolUse"]
    assert re.fullmatch(entry["matcher"], "Bash") and re.fullmatch(entry["matcher"], "mcp__github__merge")
    return entry["hooks"]


def test_the_command_hook_snippet_runs_hitl_hook_claude_code() -> None:
    command, _http = _snippets()
    (hook,) = _hooks(command)
    assert hook["type"] == "command"
    argv = shlex.split(hook["command"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[argv[0]] == "hitl.cli:main"  # the console script the package installs
    args = cli.build_parser().parse_args(argv[1:])
    assert args.func is cli._hook_claude_code
    assert hookcli.parse_wait(argv[3:]) < hook["timeout"]
    assert command["env"]["HITL_API_URL"].startswith("https://")


def test_the_http_hook_snippet_posts_to_the_hook_route_with_the_key() -> None:
    _command, http = _snippets()
    (hook,) = _hooks(http)
    url = urlsplit(hook["url"])
    assert hook["type"] == "http" and url.path == HOOK_PATH
    assert float(parse_qs(url.query)["wait"][0]) <= min(MAX_WAIT, hook["timeout"] - 1)
    assert hook["headers"]["Authorization"] == "Bearer $HITL_API_KEY"
    assert hook["allowedEnvVars"] == ["HITL_API_KEY"]
