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


def test_since_skips_older_events(approvals: Approvals) -> None:
    approvals.request(action="a", summary="old")
    cut = time.time() + 0.002
    while time.time() < cut + 0.002:  # let the stream's millisecond clock pass the cut
        pass
    approvals.request(action="a", summary="new")
    out = io.StringIO()
    assert export(approvals.redis, approvals.keys, out, since=cut) == 1
    assert json.loads(out.getvalue())["request"]["summary"] == "new"
