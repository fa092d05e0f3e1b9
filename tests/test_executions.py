"""Executions: an approved tool call starts at most once, across processes and re-runs."""

from __future__ import annotations

import asyncio

import pytest
import redis

from bot.slack.blocks import cards
from hitl import Approvals, ExecutionRefused, ExecutionState, RequestNotFound
from hitl.keys import timer_member
from hitl.status import EventType
from tests.helpers import events


def approved(approvals: Approvals) -> str:
    handle = approvals.request(action="send_email", summary="Email everyone", params={"to": "all"})
    approvals.decide(handle.id, "approve", by="U0ALICE")
    return handle.id


def test_a_second_start_is_refused_and_marks_the_outcome_unknown(
    approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    rid = approved(approvals)
    assert approvals.start_execution(rid) is True
    assert approvals.get(rid).fetch().execution is ExecutionState.STARTED
    conn.zrem(f"{prefix}:timers", timer_member(rid, "sync"))
    assert approvals.start_execution(rid) is False
    req = approvals.get(rid).fetch()
    assert req.execution is ExecutionState.UNKNOWN
    assert conn.zscore(f"{prefix}:timers", timer_member(rid, "sync")) is not None  # the card re-syncs
    assert approvals.start_execution(rid) is False
    types = [e["type"] for e in events(conn, prefix, rid)]
    assert types.count(EventType.EXECUTION_STARTED) == 1 and types.count(EventType.OUTCOME_UNKNOWN) == 1
    text = str(cards.build_card(req)[1])
    assert "Outcome unknown: check before retrying" in text


def test_a_finished_call_is_not_started_again_and_is_not_unknown(approvals: Approvals, conn: redis.Redis, prefix: str) -> None:
    rid = approved(approvals)
    assert approvals.start_execution(rid)
    approvals.finish_execution(rid, ok=False)
    assert approvals.start_execution(rid) is False
    assert approvals.get(rid).fetch().execution is ExecutionState.FAILED
    (finished,) = [e for e in events(conn, prefix, rid) if e["type"] == EventType.EXECUTION_FINISHED]
    assert finished["ok"] == "0"
    assert "Outcome unknown" not in str(cards.build_card(approvals.get(rid).fetch())[1])


def test_only_a_decision_that_lets_the_agent_act_can_start(approvals: Approvals) -> None:
    pending = approvals.request(action="send_email", summary="s", params={})
    with pytest.raises(ExecutionRefused) as err:
        approvals.start_execution(pending.id)
    assert err.value.reason == "not_approved" and "pending" in str(err.value)
    rejected = approvals.request(action="send_email", summary="s2", params={})
    approvals.decide(rejected.id, "reject", by="U0ALICE", comment="no")
    with pytest.raises(ExecutionRefused):
        approvals.start_execution(rejected.id)
    auto = approvals.request(action="log_line", summary="s3", params={}, mode="auto")
    assert approvals.start_execution(auto.id) is True
    with pytest.raises(ExecutionRefused):
        approvals.finish_execution(pending.id)
    with pytest.raises(RequestNotFound):
        approvals.start_execution("nope")


def test_the_asyncio_client_shares_the_record(approvals: Approvals) -> None:
    rid = approved(approvals)

    async def twice() -> list[bool]:
        async with approvals.asyncio() as aio:
            first = await aio.start_execution(rid)
            second = await aio.start_execution(rid)
            await aio.finish_execution(rid)
            return [first, second]

    assert asyncio.run(twice()) == [True, False]
    assert approvals.get(rid).fetch().execution is ExecutionState.FINISHED


def test_concurrent_starts_let_exactly_one_run(approvals: Approvals) -> None:
    rid = approved(approvals)

    async def race() -> list[bool]:
        async with approvals.asyncio() as aio:
            return list(await asyncio.gather(*(aio.start_execution(rid) for _ in range(20))))

    assert sorted(asyncio.run(race())) == [False] * 19 + [True]


def test_the_finish_keeps_the_tools_result_masked_and_capped_in_the_audit_log(
    approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    rid = approved(approvals)
    assert approvals.start_execution(rid)
    answer = {
        "stdout": "connected with xoxb-1234567890-abcdefghijkl as bot",
        "password": "hunter2",
        "rows": [f"row {i}: " + "x" * 200 for i in range(400)],  # about 80 KiB
    }
    approvals.finish_execution(rid, result=answer)
    (finished,) = [e for e in events(conn, prefix, rid) if e["type"] == EventType.EXECUTION_FINISHED]
    kept = finished["result"]
    assert len(kept) <= 4096 and "more items" in kept  # cut, and says so
    assert "xoxb-1234567890" not in kept and "hunter2" not in kept and "••••••" in kept
    assert "connected with" in kept and "row 0: " in kept  # the rest stays readable
    plain = approved(approvals)
    assert approvals.start_execution(plain)
    approvals.finish_execution(plain)
    (bare,) = [e for e in events(conn, prefix, plain) if e["type"] == EventType.EXECUTION_FINISHED]
    assert "result" not in bare  # no result given, none invented


def test_a_result_nested_deeper_than_any_encoder_recurses_is_kept_cut(
    approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    """An upstream's answer is not bounded like params; 5,000 levels would exhaust the stack
    of the recursive clip, mask and encode, and the finish (so the at-most-once record) with it."""
    rid = approved(approvals)
    assert approvals.start_execution(rid)
    deep: list[object] = ["bottom"]
    for _ in range(5_000):
        deep = [deep]
    approvals.finish_execution(rid, result={"rows": deep})
    assert approvals.get(rid).fetch().execution is ExecutionState.FINISHED
    (finished,) = [e for e in events(conn, prefix, rid) if e["type"] == EventType.EXECUTION_FINISHED]
    assert "nested deeper than 32 levels" in finished["result"] and "bottom" not in finished["result"]
