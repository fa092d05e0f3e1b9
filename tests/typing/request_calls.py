"""Calls a type checker must accept, and mistakes it must flag: `tests/test_client_symmetry.py`
runs mypy on this file and expects an error on exactly the lines marked ``# error``.

Never imported: it exists to be type-checked (the request() fields are
`**fields: Unpack[hitl.fields.RequestFields]`, PEP 692).
"""

from __future__ import annotations

from datetime import timedelta

from hitl import Approvals, AsyncApprovals, Mode, Risk
from hitl.remote import AsyncHttpApprovals, HttpApprovals


def sync_calls(a: Approvals, h: HttpApprovals) -> None:
    a.request(action="a", summary="s")
    a.request(action="a", summary="s", risk="high", mode=Mode.GATE, timeout=timedelta(minutes=5))
    a.request(action="a", summary="s", risk=Risk.LOW, approvers=("U01",), params={"n": 1}, quorum=2)
    h.request(action="a", summary="s", window=30.0, callback_url="https://hooks.example/x")
    a.request_batch("plan", [{"action": "a", "summary": "s"}], channel="#ops", idempotency_key="k")
    a.require_approval(action="a", confidence=0.9, requested_by="U02")
    a.request(action="a", summary="s", timeoutt=3)  # error
    h.request(action="a", summary="s", quorum="two")  # error
    a.request(summary="s")  # error
    a.request(action="a", summary="s", approvers=[1], confidence=None)  # error
    a.request_batch("plan", [], params={})  # error
    h.require_approval(idempotency_key="k")  # error


async def async_calls(a: AsyncApprovals, h: AsyncHttpApprovals) -> None:
    await a.request(action="a", summary="s", reversible=False, run_id="r1")
    await h.request(action="a", summary="s", context="why", agent="bot")
    await a.request(action="a", summary="s", reversible="no")  # error
    await h.request_batch("plan", [], run_idd="r")  # error
