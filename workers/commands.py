"""The `worker` subcommand of the `hitl` console script.

pyproject.toml declares `worker` here as a `hitl.commands` entry point; `hitl.cli` calls it
with its subparsers, and it adds its own, so the core never imports `workers`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hitl import tracing
from hitl.settings import load_settings

if TYPE_CHECKING:
    from hitl.cli import Subcommands


def worker(commands: Subcommands) -> None:
    """`hitl worker`: the timer ticker, card delivery, webhooks, maintenance and an RQ worker."""
    parser = commands.add_parser(
        "worker", help="run the timers, card delivery, webhooks and an RQ worker (no RQ scheduler)"
    )
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--fork", action="store_true", help="run each job in a forked work horse")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    tracing.setup("hitl-worker")  # before the worker's modules load, as `hitl worker` always did
    from workers.runner import run

    run(load_settings(), burst=args.burst, fork=args.fork)
    return 0
