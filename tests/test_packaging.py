"""The distribution: what `pip install .` puts on a machine, and which way imports run.

`hitl-router` installs exactly three import packages, `hitl`, `bot` and `workers` (the local
Slack sandbox is `bot.sandbox`, with its page's static files), and they depend one way:
`hitl` <- `bot` <- `workers`. The `hitl` console script finds the subcommands of `bot` and
`workers` through their `hitl.commands` entry points, never by naming them.
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
# What each package must never import: the layers above it.
FORBIDDEN = {"hitl": ("bot", "workers", "sandbox"), "bot": ("workers",), "workers": ()}
COMMANDS = {
    "bot": "bot.commands:bot",
    "dev": "bot.commands:dev",
    "mcp": "bot.commands:mcp",
    "worker": "workers.commands:worker",
}
# Functions that import the module named by their first argument.
IMPORTERS = {"import_module", "__import__", "find_spec", "find_loader"}
# A string that names a module (or `module:attribute`, as entry points and RQ job paths do).
MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.\w+)*(:\w+(\.\w+)*)?")
# Not copied into the build directory: local state that must not leak into the wheel.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel `pip install .` would install, built offline from a copy of the sources
    (a fresh copy, so a stale build/ from an older layout cannot leak into it)."""
    base = tmp_path_factory.mktemp("wheel")
    src, out = base / "src", base / "out"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--wheel-dir", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("hitl_router-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_the_wheel_installs_exactly_hitl_bot_and_workers(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist() if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == set(PACKAGES)
    assert not [name for name in wheel.namelist() if name.startswith(("sandbox/", "tests/", "bench/"))]


def test_the_wheel_carries_the_sandbox_and_its_static_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    static = sorted(p.name for p in (ROOT / "bot" / "sandbox" / "static").iterdir() if p.is_file())
    assert static, "the sandbox page has static files"
    for name in static:
        assert f"bot/sandbox/static/{name}" in names
    assert {"bot/sandbox/__init__.py", "bot/sandbox/__main__.py", "bot/sandbox/page.py"} <= names


def test_the_wheel_declares_the_hitl_subcommands_as_entry_points(wheel: zipfile.ZipFile) -> None:
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parsed = configparser.ConfigParser()
    parsed.read_string(wheel.read(meta).decode())
    assert dict(parsed["hitl.commands"]) == COMMANDS
    assert dict(parsed["console_scripts"]) == {"hitl": "hitl.cli:main"}


# -- the console script finds its subcommands through the entry points ----------------------


def test_the_installed_entry_points_give_hitl_its_subcommands() -> None:
    assert {entry.name: entry.value for entry in cli.plugin_commands()} == COMMANDS
    help_text = cli.build_parser().format_help()
    for name in ("request", "policy", "audit", *COMMANDS):
        assert name in help_text


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


def test_python_m_bot_sandbox_runs_the_stand_in() -> None:
    shown = subprocess.run([sys.executable, "-m", "bot.sandbox", "--help"], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "--port" in shown.stdout


# -- imports run one way: hitl <- bot <- workers --------------------------------------------


def imported_names(path: Path, module: str, *, spelled: bool = True) -> Iterator[tuple[int, str]]:
    """Every module `path` imports, with its line: import statements anywhere (lazy ones in
    functions too, relative ones resolved), the argument of importlib's import functions, and
    (`spelled`) any string that spells a dotted module path (entry points, RQ job names)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
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


def layering_violations(root: Path) -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            for line, name in sorted(set(imported_names(path, module))):
                top = name.split(".", 1)[0]
                if top in forbidden:
                    found.append(f"{path.relative_to(root)}:{line}: {package} must not import {name}")
    return found


def test_imports_run_one_way() -> None:
    assert layering_violations(ROOT) == []


def test_nothing_imports_the_old_top_level_sandbox() -> None:
    """The sandbox is `bot.sandbox` (`python -m bot.sandbox`); a branch written before the
    move that imports `sandbox` is named here, file and line, instead of failing on import."""
    stale = []
    for folder in ("hitl", "bot", "workers", "tests", "bench", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found = imported_names(path, module, spelled=False)
            stale += [f"{path.relative_to(ROOT)}:{line}: {name}" for line, name in found if name == "sandbox"
                      or name.startswith("sandbox.")]
    assert stale == [], "these import `sandbox`, which is `bot.sandbox` now"


def test_importing_every_core_module_loads_neither_bot_nor_workers() -> None:
    """The same rule at run time: whatever `hitl` imports, directly or through a library."""
    probe = (
        "import pkgutil, sys, hitl\n"
        "for m in pkgutil.walk_packages(hitl.__path__, 'hitl.'):\n"
        "    __import__(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('bot', 'workers', 'sandbox')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("package", "source", "culprit"),
    [
        ("hitl", "import bot.app\n", "bot.app"),
        ("hitl", "from workers import runner\n", "workers"),
        ("hitl", "def run():\n    from bot.main import run\n    run()\n", "bot.main"),
        ("hitl", "import importlib\nimportlib.import_module('workers.runner')\n", "workers.runner"),
        ("hitl", "import importlib.util\nimportlib.util.find_spec('bot.mcp')\n", "bot.mcp"),
        ("hitl", "JOB = 'workers.timers:fire'\n", "workers.timers"),
        ("hitl", "from sandbox.dev import run\n", "sandbox.dev"),
        ("bot", "from workers.cards import sync\n", "workers.cards"),
        ("bot", "def f():\n    __import__('workers.queues')\n", "workers.queues"),
    ],
)
def test_the_layering_check_catches_each_kind_of_import(
    tmp_path: Path, package: str, source: str, culprit: str
) -> None:
    for name in PACKAGES:
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
    (tmp_path / "workers" / "ok.py").write_text("import bot.cards\nfrom hitl import keys\n")
    assert layering_violations(tmp_path) == []
