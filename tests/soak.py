"""`make soak`: run the whole suite N times and report every test whose outcome differs.

A suite that fails one run in three keeps good work from landing and teaches everyone to
rerun instead of read, so flakiness is measured here rather than discovered in CI. Each
run writes JUnit XML (pytest's own `--junitxml`); this script reads the files back and
prints, per test, the outcome of every run, for the tests that did not pass every time.
A test skipped in every run (the manifest-schema tests in a clone with no `shared/` beside
it) is listed apart: the same answer every time is not a flake.

    python -m tests.soak --runs 5              # as `make soak` does
    python -m tests.soak --runs 5 --shuffle    # pytest-randomly order, a new seed per run
    python -m tests.soak --runs 3 -- tests/slack -k delivery

Exit status: 0 when every run exited 0 and no test's outcome failed or differed between
runs (steady skips allowed), 1 otherwise. Not collected by pytest
(its name does not start with `test_`).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    MISSING = "missing"  # collected in another run, absent from this one (a crash, a timeout)


def outcomes(junit: Path) -> dict[str, Outcome]:
    """Each test case's outcome in one JUnit XML file, by `classname::name`."""
    found: dict[str, Outcome] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("error") is not None:
            found[name] = Outcome.ERROR
        elif case.find("failure") is not None:
            found[name] = Outcome.FAILED
        elif case.find("skipped") is not None:
            found[name] = Outcome.SKIPPED
        else:
            found[name] = Outcome.PASSED
    return found


def _table(runs: Sequence[dict[str, Outcome]]) -> dict[str, list[Outcome]]:
    table: dict[str, list[Outcome]] = defaultdict(list)
    for name in sorted(set().union(*runs)) if runs else []:
        for run in runs:
            table[name].append(run.get(name, Outcome.MISSING))
    return table


def unstable(runs: Sequence[dict[str, Outcome]]) -> dict[str, list[Outcome]]:
    """The tests that failed, erred or went missing in some run, or whose outcome differed
    between runs, with their outcome per run."""
    return {
        name: seen for name, seen in _table(runs).items()
        if len(set(seen)) > 1 or seen[0] not in (Outcome.PASSED, Outcome.SKIPPED)
    }


def steadily_skipped(runs: Sequence[dict[str, Outcome]]) -> list[str]:
    """The tests skipped in every run: not flaky, but worth seeing (they proved nothing)."""
    return [name for name, seen in _table(runs).items() if set(seen) == {Outcome.SKIPPED}]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="how many times to run the suite (default 5)")
    p.add_argument("--shuffle", action="store_true", help="shuffle the order (pytest-randomly), new seed per run")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest after `--`")
    args = p.parse_args(argv)
    runs: list[dict[str, Outcome]] = []
    codes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="hitl-soak-") as tmp:
        for n in range(1, args.runs + 1):
            junit = Path(tmp) / f"run-{n}.xml"
            # pytest-randomly shuffles whenever it is installed; `make test` keeps file order.
            seed = random.randrange(1, 2**31)
            order = [f"--randomly-seed={seed}"] if args.shuffle else ["-p", "no:randomly"]
            cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", f"--junitxml={junit}", *order, *args.pytest_args]
            print(f"soak: run {n}/{args.runs}: {' '.join(cmd[2:])}", flush=True)
            t0 = time.monotonic()
            code = subprocess.run(cmd, cwd=ROOT, check=False).returncode
            codes.append(code)
            print(f"soak: run {n} exited {code} after {time.monotonic() - t0:.0f} s", flush=True)
            if junit.exists():
                runs.append(outcomes(junit))
            else:
                print(f"soak: run {n} wrote no report (pytest exit {code})", flush=True)
                runs.append({})
    bad = unstable(runs)
    total = len(set().union(*runs)) if runs else 0
    skipped = steadily_skipped(runs)
    for name in skipped:
        print(f"soak: skipped in every run (the same answer each time, see -rs for why): {name}")
    if not bad and all(code == 0 for code in codes):
        print(f"soak: {args.runs} runs, {total} tests, every test gave the same answer every run"
              f" ({total - len(skipped)} passed every run, {len(skipped)} skipped every run)")
        return 0
    if not bad:
        print(f"soak: no test's outcome differed, but a run exited non-zero: {codes}")
        return 1
    print(f"soak: {len(bad)} of {total} tests did not pass every run:")
    for name, seen in bad.items():
        print(f"  {name}: {' '.join(o.value for o in seen)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
