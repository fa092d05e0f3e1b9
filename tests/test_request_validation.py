"""Bad input to `request()` is one clear error naming the field, and nothing is stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hitl import Approvals, InvalidRequest


def _stored(approvals: Approvals) -> int:
    return len(list(approvals.redis.scan_iter(match=f"{approvals.keys.prefix}:req:*")))


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"summary": "s"}, "action", "required"),
        ({"action": "a"}, "summary", "required"),
        ({"action": "a", "summary": "   "}, "summary", "at least 1"),
        ({"action": "a", "summary": "s", "mode": "yolo"}, "mode", "'yolo' is not one of"),
        ({"action": "a", "summary": "s", "confidence": 1.5}, "confidence", "less than or equal to 1"),
        ({"action": "a", "summary": "s", "confidence": -0.1}, "confidence", "greater than or equal to 0"),
        ({"action": "a", "summary": "s", "params": {"when": object()}}, "params", "JSON-serialisable"),
        ({"action": "a", "summary": "s", "params": {"x": float("nan")}}, "params", "JSON-serialisable"),
        ({"action": "a", "summary": "s", "params": {"blob": "x" * 300_000}}, "params", "the limit is 262,144"),
        ({"action": "a", "summary": "s", "timeout": -5}, "timeout", "positive"),
        ({"action": "a", "summary": "s", "window": "soon"}, "window", "number of seconds"),
        ({"action": "a", "summary": "s", "quorum": 0}, "quorum", "greater than or equal to 1"),
        ({"action": "bad action!", "summary": "s"}, "action", "only contain letters"),
        ({"action": "a", "summary": "s", "colour": "red"}, "colour", "not a known argument"),
    ],
)
def test_invalid_request_names_the_field(approvals: Approvals, kwargs, field, words) -> None:
    with pytest.raises(InvalidRequest) as info:
        approvals.request(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert words in str(info.value)
    assert _stored(approvals) == 0


def test_timeout_accepts_timedelta(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s", timeout=timedelta(minutes=5))
    stored = req.fetch()
    assert stored.timeout == 300
    assert stored.deadline == pytest.approx(stored.created_at + 300, abs=0.01)


def test_params_at_the_cap_are_accepted_and_kept_whole(approvals: Approvals) -> None:
    big = {"body": "é" * 100_000}  # 200 KB of UTF-8: under the cap
    req = approvals.request(action="a", summary="s", params=big)
    assert req.fetch().params == big
