"""The TypeScript package (`clients/typescript`, `@hitl-router/client`) against the real product.

One `npm ci` (skipped while node_modules matches package-lock.json), one `tsc`, one
`node --test` run of the package's own tests, against `hitl bot`'s web process, a worker and
the Slack stand-in (`tests.remote.conftest.product`). A reviewer thread clicks each card as
the request's `run_id` says (see clients/typescript/test/support.ts): approve, approve with an
edit, reject with a reason, or nothing (expire, hold). The generated types are checked
against the document the server serves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.slack.blocks import cards, views
from hitl.queries import pending
from tests.helpers import ROOT
from tests.remote.conftest import AGENT_KEY, Stack, product

PACKAGE = ROOT / "clients" / "typescript"
NODE_HELP = (
    "Node 20+ and npm are needed for the TypeScript client's tests: `make test` installs them "
    "with apt-get (Debian's nodejs and npm) when apt-get can run; else install Node 20+ yourself"
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found. {NODE_HELP}")
    return found


def _run(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(args, cwd=PACKAGE, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:  # say which of node's tests was still running
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        raise AssertionError(f"{' '.join(args)} still running after {timeout} s:\n{out[-6000:]}") from None
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout


def _npm_ci(npm: str) -> None:
    """`npm ci` once per change of package-lock.json (its copy in node_modules says which)."""
    lock, installed = PACKAGE / "package-lock.json", PACKAGE / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    _run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")


class Reviewer:
    """Clicks each pending card as its `run_id` says, until stopped."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.done: set[str] = set()
        self.errors: list[str] = []
        self.refused: list[str] = []  # submissions the bot refused (and retried), for the failure message
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="reviewer", daemon=True)

    def _decide(self, rid: str, directive: str) -> None:
        bot = self.stack.bot
        verb, _, rest = directive.partition(" ")
        if verb not in ("approve", "edit", "reject"):
            return  # expire, hold: nobody clicks
        bot.card(rid, timeout=30)
        if verb == "approve":
            status, body = bot.click(rid, cards.ACTION_APPROVE, user="U0ALICE")
        elif verb == "edit":
            bot.click(rid, cards.ACTION_EDIT, user="U0ALICE")
            view = bot.open_view("U0ALICE", views.VIEW_EDIT)
            status, body = bot.interact(bot.interactions.submit(view.id, {"params": json.dumps(json.loads(rest))}))
        else:
            bot.click(rid, cards.ACTION_REJECT, user="U0BOB")
            view = bot.open_view("U0BOB", views.VIEW_REJECT)
            status, body = bot.interact(bot.interactions.submit(view.id, {"reason": rest}))
        if status != 200:
            self.errors.append(f"{directive} on {rid}: {status} {body}")
        elif '"errors"' in body:  # the modal answered with an error and stays open: nothing was decided
            self.refused.append(f"{directive} on {rid}: {body}")
            self.done.discard(rid)  # the next pass clicks again, as a person would

    def _loop(self) -> None:
        while not self.stopping.wait(0.1):  # polls: the store offers no event for "a request was filed"
            for req in pending(self.stack.approvals.store, limit=100):
                if req.id in self.done:
                    continue
                self.done.add(req.id)
                try:
                    self._decide(req.id, req.run_id or "hold")
                except Exception as exc:  # reported by the test, not lost in the thread
                    self.errors.append(f"{req.run_id} on {req.id}: {exc!r}")


@pytest.fixture
def stack(redis_url: str, prefix: str) -> Iterator[Stack]:
    with product(redis_url, prefix) as running:
        yield running


# A clean clone runs `npm ci` first (from the registry, up to 600 s), then tsc, then the
# package's tests (up to 300 s): seen in CI, the suite's 120 s per test stopped it mid-run.
@pytest.mark.timeout(1200)
def test_the_typescript_client_builds_is_current_and_passes_against_the_real_bot(stack: Stack, tmp_path: Path) -> None:
    node, npm = _tool("node"), _tool("npm")
    major = int(_run(node, "--version").strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.skip(f"node {major} is too old. {NODE_HELP}")
    _npm_ci(npm)

    # The committed document and types are what the server serves and openapi-typescript makes.
    document = httpx.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    committed = json.loads((PACKAGE / "openapi.json").read_text())
    assert committed == document, "clients/typescript/openapi.json is stale: see docs/typescript.md (Regenerating)"
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    bin_dir = PACKAGE / "node_modules" / ".bin"
    _run(str(bin_dir / "openapi-typescript"), str(tmp_path / "openapi.json"), "-o", str(tmp_path / "schema.ts"))
    assert (tmp_path / "schema.ts").read_text() == (PACKAGE / "src" / "schema.ts").read_text(), (
        "clients/typescript/src/schema.ts is stale: run `npm run generate` there"
    )

    _run(str(bin_dir / "tsc"), "-p", "tsconfig.json")

    reviewer = Reviewer(stack)
    reviewer.thread.start()
    env = {**os.environ, "HITL_API_URL": stack.api_url, "HITL_API_KEY": AGENT_KEY}
    try:
        tests = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "dist" / "test").glob("*.test.js"))
        try:
            out = _run(node, "--test", "--test-concurrency=1", *tests, env=env, timeout=300)
        except AssertionError as exc:  # what the reviewer saw is most of the diagnosis
            waiting = [(r.id, r.run_id, r.status.value) for r in pending(stack.approvals.store, limit=20)]
            raise AssertionError(f"{exc}\nreviewer errors: {reviewer.errors}\nrefused: {reviewer.refused}\nstill pending: {waiting}") from None
    finally:
        reviewer.stopping.set()
        reviewer.thread.join(timeout=30)
    assert reviewer.errors == []
    assert "# fail 0" in out and "# pass 13" in out, out[-3000:]
