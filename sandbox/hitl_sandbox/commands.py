"""`hitl dev`: the subcommand this distribution adds to the `hitl` console script.

It is declared as a `hitl.commands` entry point in sandbox/pyproject.toml, so `hitl dev`
exists only where the sandbox is installed (`make demo`, `make test`), never in a
production install of `hitl-router`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hitl.cli import Subcommands


def dev(commands: Subcommands) -> None:
    """`hitl dev`: the whole product on one machine, around the local Slack sandbox."""
    parser = commands.add_parser(
        "dev", help="the whole product on this machine: Redis, Slack sandbox page, bot, worker, demo agent"
    )
    parser.add_argument("--port", type=int, default=8080, help="port of the sandbox page (default 8080)")
    parser.add_argument("--bot-port", type=int, default=0, help="port of the bot (default: any free)")
    parser.add_argument("--no-demo", action="store_true", help="do not start the demo agent")
    parser.set_defaults(func=_run_dev)


def _run_dev(args: argparse.Namespace) -> int:
    from hitl_sandbox.dev import run

    return int(run(port=args.port, demo=not args.no_demo, bot_port=args.bot_port, verbose=args.verbose))
