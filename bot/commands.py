"""The `bot` and `mcp` subcommands of the `hitl` console script.

pyproject.toml declares each function here as a `hitl.commands` entry point; `hitl.cli` calls
it with its subparsers, and it adds its own. The core thus never imports `bot`. Each command
imports what it runs only when run: `hitl request` needs neither Bolt nor the MCP SDK.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hitl import tracing
from hitl.settings import load_settings

if TYPE_CHECKING:
    from hitl.cli import Subcommands


def bot(commands: Subcommands) -> None:
    """`hitl bot`: the Slack app and the web process (HTTP API, /mcp)."""
    parser = commands.add_parser("bot", help="run the Slack app: Socket Mode with SLACK_APP_TOKEN, else HTTP")
    parser.add_argument("--port", type=int, help="HTTP port (default $PORT or 3000)")
    parser.add_argument("--host", help="address to listen on (default $HITL_HOST or 0.0.0.0)")
    parser.set_defaults(func=_run_bot)


def mcp(commands: Subcommands) -> None:
    """`hitl mcp`: the MCP server on stdio; `hitl mcp gateway --config FILE`: the gateway."""
    parser = commands.add_parser(
        "mcp", help="the MCP server on stdio (for Claude Code, Claude Desktop, Cursor)"
    )
    parser.set_defaults(func=_run_mcp)
    sub = parser.add_subparsers(dest="mcp_command", metavar="{gateway}")
    gateway = sub.add_parser(
        "gateway", help="an MCP server in front of other MCP servers: every tool call through the policy"
    )
    gateway.add_argument(
        "--config", required=True, metavar="FILE", help="the gateway's YAML file (upstreams)"
    )
    gateway.set_defaults(func=_run_gateway)


def _run_bot(args: argparse.Namespace) -> int:
    tracing.setup("hitl-bot")  # before the app's modules load, as `hitl bot` always did
    from bot.main import run

    # Flags win over the environment, and are checked like it (a bad --host names HITL_HOST).
    overrides = {name: value for name, value in (("port", args.port), ("host", args.host)) if value}
    run(load_settings(**overrides))
    return 0


def _run_mcp(args: argparse.Namespace) -> int:
    from bot.gateway.mcp import run_stdio

    run_stdio(load_settings())
    return 0


def _run_gateway(args: argparse.Namespace) -> int:
    from bot.gateway.mcpgateway import config

    # A bad file is one line within a few hundred milliseconds, before the MCP SDK, the
    # Redis client and the upstreams load (seconds of CPU that a typo should not cost).
    loaded = config.load(args.config)
    from bot.gateway.mcpgateway.server import run_stdio

    run_stdio(loaded, load_settings())
    return 0
