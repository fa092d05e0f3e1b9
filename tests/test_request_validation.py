"""Bad input to `request()` is one clear error naming the field, and nothing is stored."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest

from hitl import Approvals, InvalidRequest
from hitl.fields import REQUIRED, RequestFields, names
from tests.helpers import ROOT, hitl_env


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
    # Arguments by name in a mapping (a JSON body): every mistake, missing and unknown names too.
    entries = [lambda: approvals.request_from(kwargs)]
    if {"action", "summary"} <= kwargs.keys() and kwargs.keys() <= _TYPED:
        entries.append(lambda: approvals.request(**kwargs))  # the typed call: bad values
    for call in entries:
        with pytest.raises(InvalidRequest) as info:
            call()
        assert info.value.field == field
        assert str(info.value).startswith(f"{field}: ")
        assert words in str(info.value)
    assert _stored(approvals) == 0


_TYPED = {*REQUIRED, *names(RequestFields)}  # what the typed call declares


@pytest.mark.parametrize(("kwargs", "name"), [({"summary": "s"}, "action"), ({"action": "a", "summary": "s", "colour": "red"}, "colour")])
def test_the_typed_call_names_a_missing_or_unknown_argument(approvals: Approvals, kwargs, name) -> None:
    """`request()` spells out its arguments: a missing or unknown one is Python's TypeError
    naming it (a type checker flags it before the code runs), and nothing is stored."""
    with pytest.raises(TypeError, match=f"'{name}'"):
        approvals.request(**kwargs)
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


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize("depth", [33, 5_000])
def test_params_nested_too_deep_are_refused_naming_params(approvals: Approvals, depth: int) -> None:
    with pytest.raises(InvalidRequest) as info:
        approvals.request(action="a", summary="s", params=_nested(depth))
    assert info.value.field == "params"
    assert "deeper than 32 levels" in str(info.value)
    assert _stored(approvals) == 0


def test_params_at_the_depth_cap_are_kept(approvals: Approvals) -> None:
    deep = {"list": [[[{"x": 1}]]], "nested": _nested(31)}
    assert approvals.request(action="a", summary="s", params=deep).fetch().params == deep


@pytest.mark.parametrize(
    ("field", "value"),
    [("timeout", 1e12), ("window", 30 * 86400 + 1), ("timeout", timedelta(days=31))],
)
def test_durations_over_30_days_are_refused(approvals: Approvals, field: str, value) -> None:
    with pytest.raises(InvalidRequest) as info:
        approvals.request(action="a", summary="s", mode="override", **{field: value})
    assert info.value.field == field
    assert "30 days" in str(info.value)
    assert _stored(approvals) == 0


def test_a_30_day_timeout_is_accepted(approvals: Approvals) -> None:
    assert approvals.request(action="a", summary="s", timeout=timedelta(days=30)).fetch().timeout == 30 * 86400


def test_a_comment_over_the_cap_is_refused_and_the_request_stays_pending(approvals: Approvals) -> None:
    handle = approvals.request(action="a", summary="s")
    with pytest.raises(InvalidRequest) as info:
        approvals.decide(handle.id, "reject", by="U0ALICE", comment="x" * (5 * 1024 * 1024))
    assert info.value.field == "comment"
    assert "the limit is 3,000" in str(info.value)
    assert handle.status() == "pending"
    approvals.decide(handle.id, "reject", by="U0ALICE", comment="y" * 3_000)
    assert handle.fetch().comment == "y" * 3_000


def test_edited_params_nested_too_deep_are_refused(approvals: Approvals) -> None:
    handle = approvals.request(action="a", summary="s")
    with pytest.raises(InvalidRequest) as info:
        approvals.decide(handle.id, "approve", by="U0ALICE", params=_nested(5_000))
    assert info.value.field == "params"
    assert handle.status() == "pending"


@pytest.mark.parametrize("who", ["dave", "U0BOB> <!channel>", "<@U0BOB>", "dave@", "C0APPROVALS"])
def test_requested_by_must_be_a_user_id_or_an_email(approvals: Approvals, who: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        approvals.request(action="a", summary="s", requested_by=who)
    assert info.value.field == "requested_by"
    assert "Slack user id" in str(info.value)
    assert _stored(approvals) == 0


async def _async_comment(approvals: Approvals, rid: str) -> None:
    async with approvals.asyncio() as aio:
        await aio.decide(rid, "reject", by="U0ALICE", comment="x" * 3_001)


def test_the_async_client_caps_comments_too(approvals: Approvals) -> None:
    handle = approvals.request(action="a", summary="s")
    with pytest.raises(InvalidRequest) as info:
        asyncio.run(_async_comment(approvals, handle.id))
    assert info.value.field == "comment"
    assert handle.status() == "pending"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--timeout", "1e12"], "timeout"),
        (["--mode", "override", "--window", "2592001"], "window"),
        (["--approver", "U0BOB> <!channel> <https://evil.example|login"], "approvers"),
        (["--requested-by", "dave"], "requested_by"),
        (["--param", "p=" + "[" * 40 + "]" * 40], "params"),
    ],
)
def test_cli_request_refusals_are_one_line_and_exit_3(redis_url, prefix, approvals: Approvals, args, field) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hitl.cli", "request", "--action", "a", "--summary", "s", *args],
        env=hitl_env(redis_url, prefix), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"hitl: error: {field}: ")
    assert _stored(approvals) == 0
