"""The docs site builds in strict mode, lists every page, and every command it marks
runnable runs here.

A command is marked runnable by an HTML comment `<!-- runnable -->` on the line before a
```` ```console ```` block (invisible on GitHub and in MkDocs). In such a block each `$ ` line
is a command, run by bash from a copy of the repository's top (so files a command writes
land in a temporary directory) against this test's Redis and key prefix; the lines after
it, up to the next `$ `, are output it must print (each line a substring, `...` skipped).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, hitl_env

DOCS = ROOT / "docs"
MARKER = "<!-- runnable -->"


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str
    expected: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _blocks(path: Path) -> list[list[tuple[int, str]]]:
    """Every runnable console block of a page, as (line number, text) lines."""
    lines = path.read_text().splitlines()
    blocks: list[list[tuple[int, str]]] = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        assert i + 1 < len(lines) and lines[i + 1].strip() == "```console", (
            f"{path.name}:{i + 1}: {MARKER} must be followed by a ```console block"
        )
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        blocks.append([(j + 1, lines[j]) for j in range(i + 2, end)])
    return blocks


def runnable_blocks() -> list[list[Command]]:
    """Every runnable block's commands, in order: a block's commands share one Redis prefix,
    so a later one sees what an earlier one did (a key created, then listed)."""
    found: list[list[Command]] = []
    for path in sorted([*DOCS.glob("*.md"), ROOT / "README.md"]):
        for block in _blocks(path):
            assert block and block[0][1].startswith("$ "), f"{path.name}: a runnable block starts with `$ `"
            commands: list[Command] = []
            for number, text in block:
                if text.startswith("$ "):
                    commands.append(Command(path.name, number, text[2:], ()))
                elif text.strip() and text.strip() != "...":
                    last = commands[-1]
                    commands[-1] = Command(last.page, last.line, last.text, (*last.expected, text.strip()))
            found.append(commands)
    return found


BLOCKS = runnable_blocks()
# A block that only runs one of examples/: tests/integrations/test_examples.py runs each example
# once and checks both its own claims and the guide's shown output (`shown_output` below), as
# each run costs seconds of CPU importing an agent framework.
EXAMPLE_RUN = re.compile(r"python -m (examples\.\w+) (--[\w-]+)")


def example_run(block: list[Command]) -> tuple[str, str] | None:
    """The (module, flag) of a block that is exactly one example's run, else None."""
    match = EXAMPLE_RUN.fullmatch(block[0].text) if len(block) == 1 else None
    return (match[1], match[2]) if match else None


def shown_output(module: str, flag: str) -> list[Command]:
    """The guides' runnable commands that run `module` with `flag`, each with its shown output."""
    return [block[0] for block in BLOCKS if example_run(block) == (module, flag)]


SHELL_BLOCKS = [block for block in BLOCKS if example_run(block) is None]


def test_guides_mark_their_commands_runnable() -> None:
    commands = [c for block in BLOCKS for c in block]
    assert len(commands) >= 20, [str(c) for c in commands]
    assert {"README.md", "policy.md", "http-api.md", "operations.md", "frameworks.md"} <= {c.page for c in commands}


def test_every_example_a_guide_runs_is_run_by_the_examples_test() -> None:
    from tests.integrations.test_examples import EXAMPLES

    shown = {run for block in BLOCKS if (run := example_run(block))}
    assert shown, "the frameworks guide shows its examples' runs"
    assert shown <= {(module, flag) for module, (flag, _) in EXAMPLES.items()}, shown


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda block: f"{block[0].page}:{block[0].line}")
def test_runnable_block(block: list[Command], redis_url: str, prefix: str, tmp_path: Path) -> None:
    for name in ("docs", "examples", "manifest.yml"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = hitl_env(redis_url, prefix, PYTHONPATH=str(ROOT))
    # `hitl` and `python` are the test environment's own.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for command in block:
        done = subprocess.run(
            ["bash", "-c", command.text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output}"
        for line in command.expected:
            assert line in output, f"{command}: expected {line!r} in:\n{output}"


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True and config["theme"]["name"] == "material"
    nav = _nav_pages(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "architecture" / "index.html").exists()


def test_readme_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    broken = []
    for target in targets:
        if target.startswith(("http://", "https://", "#")):
            continue
        path, _, anchor = target.partition("#")
        if not (ROOT / path).exists():
            broken.append(target)
        elif anchor and path.endswith(".md"):
            headings = re.findall(r"(?m)^#+ (.+)$", (ROOT / path).read_text())
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            if anchor not in slugs:
                broken.append(target)
    assert broken == []


def test_the_policy_page_shows_the_file_its_commands_use() -> None:
    page = (DOCS / "policy.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", page, re.S)
    assert block and block.group(1) == (DOCS / "examples" / "policy.yaml").read_text()
