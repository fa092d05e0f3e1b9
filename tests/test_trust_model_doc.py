"""docs/trust-model.md names, for every rule, the test that holds it: each name must be a
test that exists, so the document cannot drift from the suite it cites."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

DOC = ROOT / "docs" / "trust-model.md"
# `tests/x.py::name` (or `x.py::name`, a file name unique under tests/) starts a reference;
# `::other` after it in the same cell names another test of that file. A name may carry a
# parametrize suffix (`name[case]`).
FILE_REF = re.compile(r"`([\w/]+\.py)(?:::(\w+)[^`]*)?`")
SAME_FILE_REF = re.compile(r"`::(\w+)[^`]*`")


def _cited() -> list[tuple[str, str | None]]:
    """(file, test name or None) for every file the rule tables cite (the code that
    enforces a rule, and the tests that hold it), in order."""
    cited: list[tuple[str, str | None]] = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            continue
        for cell in line.split("|"):
            current: str | None = None
            for match in re.finditer(f"{FILE_REF.pattern}|{SAME_FILE_REF.pattern}", cell):
                if match.group(1):
                    current = match.group(1)
                    cited.append((current, match.group(2)))
                else:
                    assert current, f"{match.group(0)} in {cell.strip()!r} follows no test file"
                    cited.append((current, match.group(3)))
    return cited


def _resolve(file: str) -> Path | None:
    """The cited file: a path from the repo's top, or a file name unique in its package."""
    path = ROOT / file
    if path.exists():
        return path
    tops = ["tests"] if Path(file).name.startswith("test_") else ["hitl", "bot", "workers"]
    found = [p for top in tops for p in (ROOT / top).rglob(file)]
    return found[0] if len(found) == 1 else None


# A function definition at any indent. Read with a pattern, not `ast.parse`: on CPython 3.11
# an `ast.parse` that runs while another thread of the process compiles code
# (a test's server thread importing a module) can fail with "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905); it did here once under load.
DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)


def _tests_in(path: Path) -> set[str]:
    return set(DEF.findall(path.read_text()))


def test_every_file_and_test_the_trust_model_cites_exists() -> None:
    cited = _cited()
    assert len(cited) > 50, "the trust model should cite the tests that hold its rules"
    missing = []
    for file, name in cited:
        path = _resolve(file)
        if path is None:
            missing.append(file)
        elif name and name not in _tests_in(path):
            missing.append(f"{file}::{name}")
    assert missing == [], f"docs/trust-model.md cites files or tests that do not exist: {missing}"
