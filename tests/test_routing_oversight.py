"""Request arguments may only add oversight: every field the policy sets, one by one.

Issue 8 item 1: an agent passing `approvers=[]`, approvers it controls or a channel it
controls used to replace the policy's. Each test files through `Approvals.request` against
a real Redis and reads back what was stored.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.slack.blocks import cards
from hitl import Approvals, InvalidRequest
from hitl.errors import NotAllowed
from hitl.status import Status
from tests.conftest import make_settings
from tests.helpers import publish_policy

POLICY = """
defaults: {channel: "#agent-approvals", timeout: 1h}
actions:
  delete_record: {mode: gate, approvers: [U0ALICE, S0DATAOWNERS], quorum: 2}
  rotate_keys: {mode: gate, approvers: [U0ALICE, U0BOB, U0CAROL], quorum: 2}
  send_email: {mode: override, window: 10m}
  deploy:
    mode: gate
    escalation:
      - {after: 10m, notify: [U0ONCALL]}
"""


@pytest.fixture
def routed(redis_url: str, prefix: str) -> Iterator[Approvals]:
    with Approvals(settings=make_settings(redis_url, prefix)) as client:
        publish_policy(client, POLICY)
        yield client


@pytest.fixture
def open_policy(redis_url: str, prefix: str) -> Iterator[Approvals]:
    """No policy file, no default channel: the request's own arguments decide."""
    with Approvals(settings=make_settings(redis_url, prefix, default_channel="#fallback")) as client:
        yield client


def _stored(approvals: Approvals) -> int:
    return len(list(approvals.redis.scan_iter(match=f"{approvals.keys.prefix}:req:*")))


@pytest.mark.parametrize(
    ("approvers", "words"),
    [
        ([], "name at least one approver, or leave it out to use the policy's"),
        (["U0EVIL"], "U0EVIL not among the policy's approvers"),
        (["U0ALICE"], "can never meet the quorum of 2"),
    ],
)
def test_approvers_may_not_widen_or_empty_the_policy(routed: Approvals, approvers, words) -> None:
    with pytest.raises(InvalidRequest) as info:
        routed.request(action="delete_record", summary="s", approvers=approvers)
    assert info.value.field == "approvers"
    assert words in str(info.value)
    assert _stored(routed) == 0


def test_a_refusal_says_which_approvers_are_allowed(routed: Approvals) -> None:
    with pytest.raises(InvalidRequest, match="choose from U0ALICE, S0DATAOWNERS"):
        routed.request(action="delete_record", summary="s", approvers=["U0ALICE", "U0EVIL"])


def test_approvers_may_narrow_to_a_subset_that_meets_quorum(routed: Approvals) -> None:
    group = routed.request(action="delete_record", summary="s", approvers=["S0DATAOWNERS"]).fetch()
    assert (group.approvers, group.quorum) == (["S0DATAOWNERS"], 2)
    two = routed.request(action="rotate_keys", summary="s", approvers=["U0BOB", "U0CAROL"]).fetch()
    assert (two.approvers, two.quorum) == (["U0BOB", "U0CAROL"], 2)
    left_out = routed.request(action="delete_record", summary="s").fetch()
    assert left_out.approvers == ["U0ALICE", "S0DATAOWNERS"]


def test_quorum_is_raised_never_lowered_and_never_unreachable(routed: Approvals) -> None:
    assert routed.request(action="delete_record", summary="s", quorum=1).fetch().quorum == 2
    assert routed.request(action="rotate_keys", summary="s", quorum=3).fetch().quorum == 3
    with pytest.raises(InvalidRequest) as info:
        routed.request(action="rotate_keys", summary="s", quorum=4)
    assert info.value.field == "quorum"
    assert "can never meet the quorum of 4" in str(info.value)
    with pytest.raises(InvalidRequest) as narrowed:
        routed.request(action="rotate_keys", summary="s", approvers=["U0BOB", "U0CAROL"], quorum=3)
    assert narrowed.value.field == "approvers"


def test_mode_is_the_stricter_of_request_and_policy(routed: Approvals) -> None:
    assert routed.request(action="delete_record", summary="s", mode="auto").mode == "gate"
    assert routed.request(action="send_email", summary="s", mode="notify").mode == "override"
    assert routed.request(action="send_email", summary="s", mode="gate").mode == "gate"


def test_a_policy_channel_keeps_the_card_and_the_request_channel_becomes_a_mirror(routed: Approvals) -> None:
    moved = routed.request(action="delete_record", summary="s", channel="#evil").fetch()
    assert (moved.channel, moved.mirror_channels) == ("#agent-approvals", ["#evil"])
    same = routed.request(action="delete_record", summary="s", channel="#agent-approvals").fetch()
    assert (same.channel, same.mirror_channels) == ("#agent-approvals", [])


def test_without_a_policy_channel_the_request_channel_or_default_is_used(open_policy: Approvals) -> None:
    asked = open_policy.request(action="a", summary="s", channel="#mine").fetch()
    assert (asked.channel, asked.mirror_channels) == ("#mine", [])
    assert open_policy.request(action="a", summary="s").fetch().channel == "#fallback"


def test_without_policy_approvers_a_request_may_name_its_own(open_policy: Approvals) -> None:
    req = open_policy.request(action="a", summary="s", approvers=["U0BOB"]).fetch()
    assert req.approvers == ["U0BOB"]
    with pytest.raises(InvalidRequest) as empty:
        open_policy.request(action="a", summary="s", approvers=[])
    assert empty.value.field == "approvers"
    with pytest.raises(InvalidRequest) as unreachable:
        open_policy.request(action="a", summary="s", approvers=["U0BOB"], quorum=2)
    assert unreachable.value.field == "approvers"


def test_window_is_never_shorter_than_the_policys(routed: Approvals) -> None:
    assert routed.request(action="send_email", summary="s", window=5).fetch().window == 600
    assert routed.request(action="send_email", summary="s", window=3600).fetch().window == 3600


def test_timeout_is_the_requests_and_escalation_always_the_policys(routed: Approvals) -> None:
    req = routed.request(action="deploy", summary="s", timeout=1800).fetch()
    assert req.timeout == 1800
    assert [(s.after, s.notify) for s in req.escalation] == [(600, ["U0ONCALL"])]
    with pytest.raises(InvalidRequest) as info:  # by name, as a JSON body would try it
        routed.request_from({"action": "deploy", "summary": "s", "escalation": []})
    assert info.value.field == "escalation"
    with pytest.raises(TypeError, match="'escalation'"):  # the typed call has no such argument
        routed.request(action="deploy", summary="s", escalation=[])  # type: ignore[call-arg]


def test_two_arbitrary_users_can_no_longer_approve(routed: Approvals) -> None:
    """The issue's attack, end to end: `approvers=[]` used to let anyone approve."""
    with pytest.raises(InvalidRequest):
        routed.request(action="delete_record", summary="Delete customer 42", approvers=[])
    handle = routed.request(action="delete_record", summary="Delete customer 42")
    for stranger in ("U0MALLORY", "U0TRUDY"):
        with pytest.raises(NotAllowed):
            routed.decide(handle.id, "approve", by=stranger)
    assert handle.status() is Status.PENDING
    routed.decide(handle.id, "approve", by="U0ALICE")
    routed.decide(handle.id, "approve", by="U0DORA", groups=["S0DATAOWNERS"])
    assert handle.status() is Status.APPROVED


@pytest.mark.parametrize(
    "bad",
    ["U0BOB> <!channel> <https://evil.example|login", "<!here>", "alice", "C0APPROVALS", "u0lower", ""],
)
def test_approver_ids_are_slack_users_or_groups_only(open_policy: Approvals, bad: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        open_policy.request(action="a", summary="s", approvers=["U0ALICE", bad])
    assert info.value.field == "approvers"
    assert "not a Slack user id (U…/W…) or user group id (S…)" in str(info.value)
    assert _stored(open_policy) == 0


def test_enterprise_user_ids_are_accepted(open_policy: Approvals) -> None:
    req = open_policy.request(action="a", summary="s", approvers=["W0GRID", "S0TEAM", "U0ALICE"]).fetch()
    assert req.approvers == ["W0GRID", "S0TEAM", "U0ALICE"]


def test_the_cards_confidence_warning_follows_the_policys_thresholds(redis_url: str, prefix: str) -> None:
    """Issue 9: with `gate_below: 0.9`, a request at 0.85 is gated and its card says so."""
    with Approvals(settings=make_settings(redis_url, prefix)) as client:
        publish_policy(client, "confidence: {gate_below: 0.9, urgent_below: 0.5}\n")
        gated = client.request(action="a", summary="s", mode="auto", confidence=0.85).fetch()
        fine = client.request(action="a", summary="s", mode="auto", confidence=0.95).fetch()
        lowish = client.request(action="a", summary="s", confidence=0.55).fetch()
    assert (gated.mode, gated.low_confidence, gated.urgent) == ("gate", True, False)
    assert dict(cards.card_fields(gated))["Confidence"] == "⚠️ 85% (low)"
    assert dict(cards.card_fields(fine))["Confidence"] == "95%"
    assert dict(cards.card_fields(lowish))["Confidence"] == "⚠️ 55% (low)"  # not urgent under 0.5
