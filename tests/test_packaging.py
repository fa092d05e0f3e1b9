"""The distributions: what `pip install` puts on a machine, and which way imports run.

`hitl-router` installs exactly three import packages, `hitl`, `bot` and `workers`, and they
depend one way: `hitl` <- `bot` <- `workers`. Inside `bot`, the Slack side (`bot.slack`) and
the HTTP side (`bot.gateway`) do not import each other. The local Slack sandbox is a second
distribution, `hitl-router-sandbox` (sandbox/, import name `hitl_sandbox`), which owns
`hitl dev`: nothing in the product imports it, and the product's wheel does not carry it.
The `hitl` console script finds every subcommand above the core through `hitl.commands`
entry points, never by naming them.
"""

from __future__ import annotations

import ast
import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from hitl import cli
from tests.helpers import ROOT

PACKAGES = ("hitl", "bot", "workers")
SANDBOX = "hitl_sandbox"
SANDBOX_ROOT = ROOT / "sandbox"
# What each package must never import: the layers above it, and the sandbox.
FORBIDDEN = {
    "hitl": ("bot", "workers", SANDBOX, "sandbox"),
    "bot": ("workers", SANDBOX, "sandbox"),
    "workers": (SANDBOX, "sandbox"),
}
# The rooms of `bot`: neither imports the other's internals (what both need sits directly in
# `bot`). The one door: the gateway reads from Slack (the workspace's id for dashboard links,
# user groups and channel privacy for who may see what) through the same Web API client
# factory as the Slack side, `bot.slack.client`, so every call is counted and retried alike.
ROOMS = {"bot.slack": "bot.gateway", "bot.gateway": "bot.slack"}
DOORS = {"bot.gateway": ("bot.slack.client",)}
COMMANDS = {
    "bot": "bot.commands:bot",
    "mcp": "bot.commands:mcp",
    "worker": "workers.commands:worker",
}
SANDBOX_COMMANDS = {"dev": "hitl_sandbox.commands:dev"}
# Functions that import the module named by their first argument.
IMPORTERS = {"import_module", "__import__", "find_spec", "find_loader"}
# A string that names a module (or `module:attribute`, as entry points and RQ job paths do).
MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.\w+)*(:\w+(\.\w+)*)?")
# Not copied into the build directory: local state that must not leak into the wheel.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*cache")


def _build(tmp_path_factory: pytest.TempPathFactory, source: Path, pattern: str) -> Iterator[zipfile.ZipFile]:
    """The wheel `pip install <source>` would install, built offline from a fresh copy of the
    sources (so a stale build/ from an older layout cannot leak into it)."""
    base = tmp_path_factory.mktemp("wheel")
    src, out = base / "src", base / "out"
    shutil.copytree(source, src, ignore=NOT_SOURCES)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--wheel-dir", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob(pattern)
    with zipfile.ZipFile(path) as archive:
        yield archive


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The product: `pip install hitl-router`."""
    yield from _build(tmp_path_factory, ROOT, "hitl_router-*.whl")


@pytest.fixture(scope="module")
def sandbox_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The sandbox: `pip install ./sandbox`."""
    yield from _build(tmp_path_factory, SANDBOX_ROOT, "hitl_router_sandbox-*.whl")


def _tops(archive: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[0] for name in archive.namelist() if not name.split("/", 1)[0].endswith(".dist-info")}


def _entry_points(archive: zipfile.ZipFile) -> configparser.ConfigParser:
    (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parsed = configparser.ConfigParser()
    parsed.read_string(archive.read(meta).decode())
    return parsed


def test_the_wheel_installs_exactly_hitl_bot_and_workers(wheel: zipfile.ZipFile) -> None:
    assert _tops(wheel) == set(PACKAGES)
    assert not [name for name in wheel.namelist() if name.startswith(("sandbox/", "tests/", "bench/"))]


def test_the_product_wheel_carries_no_stand_in_no_page_and_no_hitl_dev(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert not [n for n in names if SANDBOX in n or "/static/" in n or n.endswith((".js", ".html", ".css"))]
    assert not [n for n in names if re.search(r"(webapi|workspace|demo_agent|blockcheck)\.py$", n)]
    assert "dev" not in _entry_points(wheel)["hitl.commands"]


def test_the_sandbox_wheel_carries_the_stand_in_its_page_and_hitl_dev(sandbox_wheel: zipfile.ZipFile) -> None:
    names = set(sandbox_wheel.namelist())
    assert _tops(sandbox_wheel) == {SANDBOX}
    static = sorted(p.name for p in (SANDBOX_ROOT / SANDBOX / "static").iterdir() if p.is_file())
    assert static, "the sandbox page has static files"
    for name in static:
        assert f"{SANDBOX}/static/{name}" in names
    assert {f"{SANDBOX}/__init__.py", f"{SANDBOX}/__main__.py", f"{SANDBOX}/webapi.py", f"{SANDBOX}/dev.py"} <= names
    assert dict(_entry_points(sandbox_wheel)["hitl.commands"]) == SANDBOX_COMMANDS


def test_the_wheel_declares_the_hitl_subcommands_as_entry_points(wheel: zipfile.ZipFile) -> None:
    parsed = _entry_points(wheel)
    assert dict(parsed["hitl.commands"]) == COMMANDS
    assert dict(parsed["console_scripts"]) == {"hitl": "hitl.cli:main"}


# -- the console script finds its subcommands through the entry points ----------------------


def test_the_installed_entry_points_give_hitl_its_subcommands() -> None:
    """Here both distributions are installed (`make venv`), so `hitl dev` is there too."""
    assert {entry.name: entry.value for entry in cli.plugin_commands()} == COMMANDS | SANDBOX_COMMANDS
    help_text = cli.build_parser().format_help()
    for name in ("request", "policy", "audit", *COMMANDS, *SANDBOX_COMMANDS):
        assert name in help_text


def test_without_the_sandbox_hitl_dev_says_where_it_comes_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    product_only = [entry for entry in cli.plugin_commands() if entry.name not in SANDBOX_COMMANDS]
    monkeypatch.setattr(cli, "plugin_commands", lambda: product_only)
    with pytest.raises(SystemExit) as done:
        cli.main(["dev"])
    assert done.value.code == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "pip install -e sandbox" in err and "make demo" in err


def test_a_subcommand_that_cannot_load_says_why_and_the_rest_still_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = EntryPoint(name="broken", value="no_such_module.commands:broken", group=cli.COMMANDS_GROUP)
    monkeypatch.setattr(cli, "plugin_commands", lambda: [broken])
    assert cli.main(["broken"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "the broken command is unavailable" in err and "no_such_module" in err
    with pytest.raises(SystemExit) as done:
        cli.main(["policy", "check", "--help"])
    assert done.value.code == 0


def test_without_the_entry_points_hitl_says_to_install_the_distribution(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "plugin_commands", list)
    with pytest.raises(SystemExit) as done:
        cli.main(["worker"])
    assert done.value.code == cli.EXIT_ERROR
    assert "pip install -e ." in capsys.readouterr().err


def test_python_m_hitl_sandbox_runs_the_stand_in() -> None:
    shown = subprocess.run([sys.executable, "-m", "hitl_sandbox", "--help"], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "--port" in shown.stdout


# -- imports run one way: hitl <- bot <- workers --------------------------------------------


def _parse(path: Path) -> ast.Module:
    """`ast.parse`, tried again when CPython 3.11 trips over another thread's compile.

    On 3.11 the AST converter's recursion counter is shared by the threads of a process, so a
    parse that runs while a test's server thread compiles code can fail with "SystemError: AST
    constructor recursion depth mismatch" (python/cpython#106905); it did here once under load.
    The failure is transient and says nothing about the file, so a second try answers."""
    text = path.read_text(encoding="utf-8")
    for _ in range(AST_TRIES - 1):
        try:
            return ast.parse(text, filename=str(path))
        except SystemError:
            continue
    return ast.parse(text, filename=str(path))


# Tries of `_parse` before a SystemError is let through.
AST_TRIES = 3


def imported_names(path: Path, module: str, *, spelled: bool = True) -> Iterator[tuple[int, str]]:
    """Every module `path` imports, with its line: import statements anywhere (lazy ones in
    functions too, relative ones resolved), the argument of importlib's import functions, and
    (`spelled`) any string that spells a dotted module path (entry points, RQ job names)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in IMPORTERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value
        elif spelled and isinstance(node, ast.Constant) and isinstance(node.value, str) and _module_path(node.value):
            yield node.lineno, node.value.partition(":")[0]


def _module_path(text: str) -> bool:
    return "." in text and MODULE_PATH.fullmatch(text) is not None


def _modules(root: Path, package: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((root / package).rglob("*.py")):
        yield path, ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layering_violations(root: Path) -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path, module in _modules(root, package):
            for line, name in sorted(set(imported_names(path, module))):
                top = name.split(".", 1)[0]
                if top in forbidden:
                    found.append(f"{path.relative_to(root)}:{line}: {package} must not import {name}")
    for room, other in ROOMS.items():
        for path, module in _modules(root, room.replace(".", "/")):
            for line, name in sorted(set(imported_names(path, module))):
                if _within(name, other) and not any(_within(name, door) for door in DOORS.get(room, ())):
                    found.append(f"{path.relative_to(root)}:{line}: {room} must not import {name}")
    return found


def test_imports_run_one_way() -> None:
    assert layering_violations(ROOT) == []


def test_nothing_imports_the_sandbox_under_an_old_name() -> None:
    """The sandbox was `sandbox`, then `bot.sandbox`; it is `hitl_sandbox` now. A branch written
    before a move that still imports an old name is named here, file and line, instead of
    failing on import."""
    stale = []
    for folder in ("hitl", "bot", "workers", "tests", "bench", "examples", "sandbox/hitl_sandbox"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found = imported_names(path, module, spelled=False)
            stale += [f"{path.relative_to(ROOT)}:{line}: {name}" for line, name in found
                      if (_within(name, "sandbox") and not module.startswith("sandbox."))
                      or _within(name, "bot.sandbox")]
    assert stale == [], "these import `sandbox` or `bot.sandbox`, which is `hitl_sandbox` now"


def test_importing_every_core_module_loads_neither_bot_nor_workers() -> None:
    """The same rule at run time: whatever `hitl` imports, directly or through a library."""
    probe = (
        "import pkgutil, sys, hitl\n"
        "for m in pkgutil.walk_packages(hitl.__path__, 'hitl.'):\n"
        "    __import__(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('bot', 'workers', 'sandbox', 'hitl_sandbox')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("package", "source", "culprit"),
    [
        ("hitl", "import bot.slack.app\n", "bot.slack.app"),
        ("hitl", "from workers import runner\n", "workers"),
        ("hitl", "def run():\n    from bot.main import run\n    run()\n", "bot.main"),
        ("hitl", "import importlib\nimportlib.import_module('workers.runner')\n", "workers.runner"),
        ("hitl", "import importlib.util\nimportlib.util.find_spec('bot.gateway.mcp')\n", "bot.gateway.mcp"),
        ("hitl", "JOB = 'workers.timers:fire'\n", "workers.timers"),
        ("hitl", "from sandbox.dev import run\n", "sandbox.dev"),
        ("bot", "from workers.delivery import DeliveryLoop\n", "workers.delivery"),
        ("bot", "def f():\n    __import__('workers.queues')\n", "workers.queues"),
        ("bot", "from hitl_sandbox import SlackStandIn\n", "hitl_sandbox"),
        ("workers", "import hitl_sandbox.dev\n", "hitl_sandbox.dev"),
        ("bot/slack", "from bot.gateway.web import WebServer\n", "bot.gateway.web"),
        ("bot/gateway", "from bot.slack import delivery\n", "bot.slack"),
        ("bot/gateway", "from ..slack.blocks import cards\n", "bot.slack.blocks"),
        ("bot/gateway", "from bot.slack.client import web_client\nfrom bot.slack.app import build_app\n", "bot.slack.app"),
    ],
)
def test_the_layering_check_catches_each_kind_of_import(
    tmp_path: Path, package: str, source: str, culprit: str
) -> None:
    for name in (*PACKAGES, "bot/slack", "bot/gateway"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / package / "sneaky.py").write_text(source)
    found = layering_violations(tmp_path)
    assert any(f"must not import {culprit}" in line for line in found), found
    assert all(line.startswith(f"{package}/sneaky.py:") for line in found), found


def test_the_layering_check_allows_the_downward_imports(tmp_path: Path) -> None:
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "bot" / "ok.py").write_text("from hitl.client import Approvals\nfrom . import ok\n")
    (tmp_path / "bot" / "main.py").write_text("from bot.slack import app\nfrom bot.gateway import web\n")
    (tmp_path / "workers" / "ok.py").write_text("import bot.slack.blocks.cards\nfrom hitl import keys\n")
    assert layering_violations(tmp_path) == []
