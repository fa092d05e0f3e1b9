"""An idempotency key stands for one request: the same content returns it, other content
is refused and never answered with the earlier decision."""

from __future__ import annotations

import asyncio

import pytest
import redis

from hitl import Approvals, HitlError, IdempotencyConflict, InvalidRequest
from tests.helpers import events


def test_a_key_reused_for_another_action_is_refused_and_no_decision_leaks(
    approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    first = approvals.request(action="delete_record", summary="Delete customer 42", params={"id": 42},
                              idempotency_key="run-7")
    approvals.decide(first.id, "approve", by="U01")
    with pytest.raises(IdempotencyConflict) as caught:
        approvals.request(action="wire_money", summary="Wire $50,000", params={"to": "acct-9"},
                          idempotency_key="run-7")
    err = caught.value
    assert isinstance(err, HitlError) and isinstance(err, InvalidRequest)
    assert err.field == "idempotency_key" and err.request_id == first.id
    assert first.id in str(err) and "delete_record" in str(err)
    assert len([e for e in events(conn, prefix) if e["type"] == "created"]) == 1


@pytest.mark.parametrize("change", [{"summary": "Delete customer 43"}, {"params": {"id": 43}}])
def test_the_same_key_with_other_summary_or_params_is_refused(approvals: Approvals, change: dict) -> None:
    base = {"action": "delete_record", "summary": "Delete customer 42", "params": {"id": 42}}
    first = approvals.request(**base, idempotency_key="k1")
    with pytest.raises(IdempotencyConflict, match=first.id):
        approvals.request(**{**base, **change}, idempotency_key="k1")


def test_the_same_key_and_content_returns_the_existing_request(approvals: Approvals) -> None:
    base = {"action": "delete_record", "summary": "Delete customer 42", "params": {"b": 2, "a": 1}}
    first = approvals.request(**base, idempotency_key="k2")
    approvals.decide(first.id, "approve", by="U01")
    again = approvals.request(**{**base, "params": {"a": 1, "b": 2}}, idempotency_key="k2")
    assert again.id == first.id
    assert again.wait(timeout=2).status == "approved"


def test_the_async_client_refuses_a_conflicting_key_too(approvals: Approvals) -> None:
    first = approvals.request(action="delete_record", summary="Delete customer 42", idempotency_key="k3")
    approvals.decide(first.id, "approve", by="U01")

    async def main() -> str:
        async with approvals.asyncio() as aio:
            same = await aio.request(action="delete_record", summary="Delete customer 42", idempotency_key="k3")
            with pytest.raises(IdempotencyConflict, match="delete_record"):
                await aio.request(action="wire_money", summary="Wire $50,000", idempotency_key="k3")
            return same.id

    assert asyncio.run(main()) == first.id
