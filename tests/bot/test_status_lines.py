"""The card's status line for every status × mode × shape of state, pinned to the lines
the card showed before `status_line` was split into one function per status
(tests/bot/data/status_lines.json, written once from that version; regenerate only on
purpose with `python -m tests.bot.test_status_lines`)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.slack.blocks.cards import status_line
from hitl.status import Mode, Status
from tests.bot.test_cards import NOW, make

GOLDEN = Path(__file__).parent / "data" / "status_lines.json"

# Shapes of state a status line reads: votes, escalation, deadline (passed, soon, far),
# who decided, a reason, edited parameters, a shadow verdict.
_SHAPES: dict[str, dict[str, Any]] = {
    "bare": {"deadline": None},
    "far": {"deadline": NOW + 3600},
    "soon": {"deadline": NOW + 600},
    "passed": {"deadline": NOW - 5},
    "votes": {"votes": ["U0ALICE"], "quorum": 2, "escalated": 1},
    "decided": {"by": ["U0ALICE"], "decided_at": NOW - 60, "comment": "looks “fine” <!channel>"},
    "edited": {"by": ["U0ALICE"], "decided_at": NOW - 60, "decided_params": {"template": "gentle"}},
    "auto": {"by": [], "decided_at": None, "comment": None},
    "verdict": {"by": ["U0BOB"], "decided_at": NOW - 60, "verdict": "reject", "comment": "too many"},
    "odd-verdict": {"by": ["U0BOB"], "verdict": "maybe"},
}


def _cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for status, mode, shape in itertools.product(Status, Mode, _SHAPES):
        yield f"{status.value}/{mode.value}/{shape}", {"status": status.value, "mode": mode.value, **_SHAPES[shape]}


def _line(fields: dict[str, Any]) -> str:
    return status_line(make(**fields), now=NOW)


def _golden() -> dict[str, str]:
    return dict(json.loads(GOLDEN.read_text()))


@pytest.mark.parametrize(("name", "fields"), list(_cases()), ids=[name for name, _f in _cases()])
def test_the_status_line_is_unchanged(name: str, fields: dict[str, Any]) -> None:
    assert _line(fields) == _golden()[name]


if __name__ == "__main__":
    lines = {name: _line(fields) for name, fields in _cases()}
    GOLDEN.write_text(json.dumps(lines, indent=1, ensure_ascii=False) + "\n")
