"""`hitl audit export` writes every event as JSON Lines, with original and edited params."""

from __future__ import annotations

import io
import json
import time

from hitl import Approvals
from hitl.audit import export


def test_export_has_who_what_when_and_both_param_versions(approvals: Approvals) -> None:
    req = approvals.request(action="send_email", summary="s", params={"to": 200}, requested_by="U09")
    approvals.decide(req.id, "approve", by="U01", params={"to": 20}, comment="fewer")
    out = io.StringIO()
    assert export(approvals.redis, approvals.keys, out) == 2
    created, decided = (json.loads(line) for line in out.getvalue().splitlines())
    assert created["type"] == "created" and created["request"]["params"] == {"to": 200}
    assert created["request"]["requested_by"] == "U09"
    assert decided["type"] == "decided" and decided["by"] == ["U01"] and decided["params"] == {"to": 20}
    assert decided["status"] == "approved" and decided["comment"] == "fewer"
    assert created["at"] <= decided["at"] <= time.time()


def test_since_keeps_exactly_the_events_from_the_cut_on(approvals: Approvals) -> None:
    for n in range(60):  # spread over several milliseconds
        approvals.request(action="a", summary=f"r{n}")
    stamps = [int(eid.decode().split("-")[0]) for eid, _ in approvals.redis.xrange(approvals.keys.events)]
    cut_ms = stamps[len(stamps) // 2]  # a stream id's milliseconds: the cut lands on a real event
    out = io.StringIO()
    count = export(approvals.redis, approvals.keys, out, since=cut_ms / 1000)
    assert count == sum(1 for s in stamps if s >= cut_ms) and 0 < count < len(stamps)
    assert all(json.loads(line)["at"] >= cut_ms / 1000 for line in out.getvalue().splitlines())
