"""Where a request shows in Slack is its own record (`CardPlacement`), not part of the
public `Request` that agents, the HTTP API and MCP see; the bot and the workers read it
with `Store.get_placed` / `get_many_placed`, from the same READ reply as the request."""

from __future__ import annotations

import json

from bot.gateway.mcp import _view
from hitl import Approvals
from hitl.keys import Keys
from hitl.models import CardPlacement, Request
from hitl.placement import Placement, Shown
from hitl.views import RequestView

PLACEMENT_FIELDS = {"card_channel", "card_ts", "digest", "mirrors"}


def test_the_public_request_and_its_views_carry_no_slack_placement(
    approvals: Approvals, conn, prefix
) -> None:
    placement = Placement(conn, Keys(prefix))
    handle = approvals.request(action="a", summary="s")
    placement.record_card(handle.id, "C0CARDS", "1700000000.000100", Shown.of(handle.fetch()))
    placement.add_mirror(handle.id, "C0MIRROR", "1700000000.000200")
    req = handle.fetch()
    assert not PLACEMENT_FIELDS & set(Request.model_fields)
    for shown in (req.model_dump(mode="json"), RequestView.of(req).model_dump(mode="json"), _view(req)):
        assert not PLACEMENT_FIELDS & set(shown)
        text = json.dumps(shown)
        assert "1700000000.000100" not in text and "C0MIRROR" not in text


def test_the_placement_record_reads_back_what_placement_wrote(approvals: Approvals, conn, prefix) -> None:
    keys = Keys(prefix)
    placement = Placement(conn, keys)
    carded, listed, unposted = (approvals.request(action="a", summary=f"s{i}") for i in range(3))
    placement.record_card(carded.id, "C1", "1.0", Shown.of(carded.fetch()))
    placement.add_mirror(carded.id, "C2", "2.0")
    digest = placement.record_digest("C3", "3.0", [Shown.of(listed.fetch())])

    placed = approvals.store.get_placed(carded.id)
    assert placed.req == carded.fetch()
    assert placed.card == CardPlacement(channel="C1", ts="1.0", digest=None, mirrors=[("C2", "2.0")])
    assert approvals.store.get_placed(listed.id).card == CardPlacement(channel="C3", ts="3.0", digest=digest)
    assert digest == keys.digest("C3", "3.0")
    assert approvals.store.get_placed(unposted.id).card == CardPlacement()

    many = approvals.store.get_many_placed([unposted.id, "no-such-id", carded.id])
    assert [(p.req.id, p.card.ts) for p in many] == [(unposted.id, None), (carded.id, "1.0")]
