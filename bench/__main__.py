"""`python -m bench`: every benchmark in sequence, each in its own process, then a summary.

Each benchmark's output is shown as it runs; the summary lists PASS, MISS or ERROR per
benchmark. Exit status 0 unless one broke; `--strict` also makes a MISS exit 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence

from bench.common import EXIT_MISS, ROOT, table

BENCHMARKS = (
    "enqueue", "wake", "waiters", "timers", "memory", "slack", "burst", "gateway", "gateway_mcp", "load",
    "observability", "labels",
)
# Hard stop per benchmark (seconds): each is bounded on its own, this is a backstop.
TIMEOUT = 180


def run_one(name: str) -> tuple[str, float]:
    print(f"\n{'=' * 30} bench.{name} {'=' * 30}", flush=True)
    t0 = time.monotonic()
    try:
        code = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", "--strict"], cwd=ROOT, timeout=TIMEOUT, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        return f"ERROR (killed after {TIMEOUT} s)", time.monotonic() - t0
    result = {0: "PASS", EXIT_MISS: "MISS"}.get(code, f"ERROR (exit {code})")
    return result, time.monotonic() - t0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description="Run every hitl-router benchmark.")
    p.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    p.add_argument("only", nargs="*", metavar="NAME", help=f"run only these, of {', '.join(BENCHMARKS)}")
    args = p.parse_args(argv)
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results = [(name, *run_one(name)) for name in (args.only or BENCHMARKS)]
    print()
    table(["benchmark", "result", "seconds"], [[n, r, f"{s:.1f}"] for n, r, s in results])
    if any(r.startswith("ERROR") for _, r, _ in results):
        return 2
    if args.strict and any(r == "MISS" for _, r, _ in results):
        return EXIT_MISS
    return 0


if __name__ == "__main__":
    sys.exit(main())
