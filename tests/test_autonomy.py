"""The promotion loop: proposals from the evidence, promotions by admins, demotions at once,
and a history (and export) that says which was which."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import yaml

from hitl import Approvals
from hitl import autonomy as a
from hitl.audit import export
from hitl.stats import action_stats
from hitl.status import Mode, Verb
from tests.helpers import ROOT, hitl_env, publish_policy

POLICY = """\
defaults: {mode: gate}
actions:
  send_email: {mode: gate, window: 10m}
autonomy:
  min_decisions: 2
  min_approved_unedited: 0.5
  no_critical_rejection_days: 0
  demote_after: 2
"""
ADMINS = ["U0ADMIN"]


def _earn(approvals: Approvals, n: int = 2) -> None:
    for _ in range(n):
        req = approvals.request(action="send_email", summary="mail the invoice", params={"to": "b@example.com"})
        approvals.decide(req.id, Verb.APPROVE, by="U0ALICE")


def _propose(approvals: Approvals) -> list[a.Proposal]:
    return a.propose(approvals.policy, [action_stats(approvals.store, "send_email")])


def test_a_proposal_opens_once_and_promotion_changes_the_next_request(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY)
    assert _propose(approvals) == []  # no evidence yet
    _earn(approvals)
    first = _propose(approvals)
    assert [(p.action, p.current, p.target) for p in first] == [("send_email", Mode.GATE, Mode.OVERRIDE)]
    assert first[0].evidence["decisions"] == 2
    assert first[0].question(approvals.policy.current().policy) == (
        "Promote `send_email` from gate to override (10-minute veto window)?"
    )
    assert _propose(approvals) == []  # one open proposal per action

    assert a.promote(approvals.policy, "send_email", "U0MALLORY", ADMINS) == (a.Outcome.NOT_ADMIN, None)
    outcome, published = a.promote(approvals.policy, "send_email", "U0ADMIN", ADMINS)
    assert outcome is a.Outcome.PROMOTED and published is not None and published.version == 2
    nxt = approvals.request(action="send_email", summary="mail again", params={"to": "b@example.com"}).fetch()
    assert nxt.mode is Mode.OVERRIDE
    # The ceiling (override by default) stops the ladder there.
    assert _propose(approvals) == []


def test_an_irreversible_action_stops_at_gate_unless_the_policy_names_its_ceiling(approvals: Approvals) -> None:
    """Nothing un-does an irreversible call, so a veto window is no oversight for it: the
    data never proposes leaving gate for an action that was ever filed irreversible or
    critical, until `autonomy.ceilings` says so for that action."""
    publish_policy(approvals, POLICY)
    wire = approvals.request(action="send_email", summary="mail the whole list", reversible=False)
    approvals.decide(wire.id, Verb.APPROVE, by="U0ALICE")
    _earn(approvals, 3)
    assert action_stats(approvals.store, "send_email").irreversible == 1
    assert _propose(approvals) == []
    publish_policy(approvals, POLICY + "  ceilings: {send_email: override}\n")
    assert [(p.current, p.target) for p in _propose(approvals)] == [(Mode.GATE, Mode.OVERRIDE)]


def test_a_critical_request_counts_as_irreversible(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY)
    approvals.decide(approvals.request(action="send_email", summary="s", risk="critical").id, Verb.APPROVE,
                     by="U0ALICE")
    _earn(approvals, 3)
    assert _propose(approvals) == []


def test_not_yet_snoozes(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY)
    _earn(approvals)
    assert len(_propose(approvals)) == 1
    assert a.not_yet(approvals.policy, "send_email", "U0ADMIN", ADMINS) is a.Outcome.SNOOZED
    assert _propose(approvals) == []
    assert a.promote(approvals.policy, "send_email", "U0ADMIN", ADMINS)[0] is a.Outcome.NO_PROPOSAL


def test_quorum_needs_distinct_admins(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY.replace("demote_after: 2", "demote_after: 2\n  quorum: 2"))
    _earn(approvals)
    _propose(approvals)
    admins = ["U0ADMIN", "U0BOSS"]
    assert a.promote(approvals.policy, "send_email", "U0ADMIN", admins)[0] is a.Outcome.WAITING
    assert a.promote(approvals.policy, "send_email", "U0ADMIN", admins)[0] is a.Outcome.WAITING
    assert a.promote(approvals.policy, "send_email", "U0BOSS", admins)[0] is a.Outcome.PROMOTED


def test_veto_critical_and_repeated_rejections_demote(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY.replace("{mode: gate, window: 10m}", "{mode: notify}"))
    d = a.after_decision(approvals.policy, "send_email", vetoed=True, by="U0ALICE")
    assert d is not None and (d.was, d.now, d.cause) == (Mode.NOTIFY, Mode.OVERRIDE, a.Cause.VETO)
    d = a.after_decision(approvals.policy, "send_email", rejected=True, critical=True, by="U0ALICE")
    assert d is not None and d.now is Mode.GATE
    assert a.after_decision(approvals.policy, "send_email", rejected=True) is None  # 1 of 2
    d = a.after_decision(approvals.policy, "send_email", rejected=True)
    assert d is not None and (d.now, d.cause) == (Mode.SHADOW, a.Cause.REJECTIONS)
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.SHADOW


def test_decide_itself_demotes_whatever_surface_called_it(approvals: Approvals) -> None:
    """A decision recorded outside Slack (Python, a plan, LangGraph's Agent Inbox) moves the
    ladder exactly as the Slack modals do: the demotion lives in `decide`, not in a listener."""
    publish_policy(approvals, POLICY.replace("{mode: gate, window: 10m}", "{mode: override}"))
    vetoed = approvals.request(action="send_email", summary="mail the list")
    approvals.decide(vetoed.id, Verb.VETO, by="U0ALICE", comment="wrong list")
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE
    critical = approvals.request(action="send_email", summary="mail everyone")
    approvals.decide(critical.id, Verb.REJECT, by="U0BOB", comment="never", critical=True)
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.SHADOW
    # each demotion is kept for the admins, once, with who and why
    told = a.take_demotions(approvals.policy)
    assert [(d.was, d.now, d.cause, d.by) for d in told] == [
        (Mode.OVERRIDE, Mode.GATE, a.Cause.VETO, "U0ALICE"), (Mode.GATE, Mode.SHADOW, a.Cause.CRITICAL, "U0BOB"),
    ]
    assert "<@U0ALICE> vetoed it" in told[0].text()
    assert a.take_demotions(approvals.policy) == []


def test_approvals_never_demote_and_rejections_count_to_demote_after(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY.replace("demote_after: 2", "demote_after: 2\n  demote_window: 1h"))
    for _ in range(3):
        approved = approvals.request(action="send_email", summary="mail it")
        approvals.decide(approved.id, Verb.APPROVE, by="U0ALICE")
    first = approvals.request(action="send_email", summary="mail it again")
    approvals.decide(first.id, Verb.REJECT, by="U0ALICE", comment="no")
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE  # 1 of 2
    assert a.take_demotions(approvals.policy) == []
    second = approvals.request(action="send_email", summary="and again")
    approvals.decide(second.id, Verb.REJECT, by="U0BOB", comment="still no")
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.SHADOW
    assert [d.cause for d in a.take_demotions(approvals.policy)] == [a.Cause.REJECTIONS]


def test_the_async_client_demotes_too(approvals: Approvals, settings) -> None:
    import asyncio

    from hitl import AsyncApprovals

    publish_policy(approvals, POLICY.replace("{mode: gate, window: 10m}", "{mode: override}"))

    async def veto() -> None:
        async with AsyncApprovals(settings=settings) as aio:
            req = await aio.request(action="send_email", summary="mail the list")
            await aio.decide(req.id, Verb.VETO, by="U0ALICE", comment="wrong list")

    asyncio.run(veto())
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE
    assert [d.cause for d in a.take_demotions(approvals.policy)] == [a.Cause.VETO]


def test_the_dashboard_shows_each_actions_mode_over_time(approvals: Approvals) -> None:
    from bot.gateway import panels

    publish_policy(approvals, POLICY)
    _earn(approvals)
    _propose(approvals)
    a.promote(approvals.policy, "send_email", "U0ADMIN", ADMINS)
    vetoed = approvals.request(action="send_email", summary="mail the list")
    approvals.decide(vetoed.id, Verb.VETO, by="U0ALICE", comment="wrong list")  # v3: demoted
    publish_policy(approvals, POLICY.replace("autonomy:", "confidence: {gate_below: 0.7}\nautonomy:"))  # same mode
    history = a.mode_history(approvals.policy.history(), ["send_email"])["send_email"]
    assert [(c.version, c.mode, c.reason, c.by) for c in history] == [
        (1, Mode.GATE, "file", "tests"), (2, Mode.OVERRIDE, "promotion", "U0ADMIN"),
        (3, Mode.GATE, "demotion", "U0ALICE"),
    ]
    html = panels.render(panels.collect(approvals))["readiness"]
    assert "Mode over time: " in html and html.count("→") >= 2
    assert "<b>override</b> <span class='muted'>v2 promotion" in html
    assert a.mode_history(approvals.policy.history(last=1), ["send_email"])["send_email"][0].version == 4


def test_a_file_applied_later_wins_and_is_reported(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY)
    _earn(approvals)
    _propose(approvals)
    a.promote(approvals.policy, "send_email", "U0ADMIN", ADMINS)
    assert a.undone_by_file(approvals.policy) == []  # the latest is the promotion
    publish_policy(approvals, POLICY.replace("autonomy:", "confidence: {gate_below: 0.7}\nautonomy:"))
    undone = a.undone_by_file(approvals.policy)
    assert undone == [a.Undone("send_email", Mode.OVERRIDE, Mode.GATE, 3)]
    assert a.undone_by_file(approvals.policy) == []  # told once
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE


def _hitl(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hitl.cli", *args], env=hitl_env(redis_url, prefix),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_history_diff_and_export(approvals: Approvals, redis_url: str, prefix: str, tmp_path: Path) -> None:
    publish_policy(approvals, POLICY)
    _earn(approvals)
    _propose(approvals)
    a.promote(approvals.policy, "send_email", "U0ADMIN", ADMINS)
    a.after_decision(approvals.policy, "send_email", vetoed=True, by="U0ALICE")

    history = _hitl(redis_url, prefix, "policy", "history")
    assert history.returncode == 0, history.stderr
    rows = history.stdout.splitlines()[1:]
    assert [r.split()[3] for r in rows] == ["file", "promotion", "demotion"]
    assert "send_email: gate -> override" in rows[1] and "U0ADMIN" in rows[1]
    assert "send_email: override -> gate" in rows[2] and "veto" in rows[2]

    diff = _hitl(redis_url, prefix, "policy", "diff", "1", "2")
    assert diff.returncode == 0, diff.stderr
    assert yaml.safe_load(diff.stdout) == {"actions": {"send_email": {"mode": {"from": "gate", "to": "override"}}}}
    missing = _hitl(redis_url, prefix, "policy", "diff", "1", "9")
    assert missing.returncode == 2 and "no policy version 9" in missing.stderr

    out = io.StringIO()
    export(approvals.redis, approvals.keys, out)
    policy_events = [e for e in map(json.loads, out.getvalue().splitlines()) if e["type"] == "policy.applied"]
    assert [e["reason"] for e in policy_events] == ["file", "promotion", "demotion"]
    assert policy_events[1]["evidence"]["decisions"] == 2
    assert policy_events[2]["evidence"]["cause"] == "veto"


def test_an_action_routed_by_the_defaults_is_promoted_by_name(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY.replace("  send_email: {mode: gate, window: 10m}\n", "  other: {mode: gate}\n"))
    _earn(approvals)
    _propose(approvals)
    assert a.promote(approvals.policy, "send_email", "U0ADMIN", ADMINS)[0] is a.Outcome.PROMOTED
    v1, v2 = approvals.policy.history()
    assert a.change_summary(v1.policy(), v2.policy()) == "send_email: gate -> override"
    assert approvals.request(action="send_email", summary="s").fetch().mode is Mode.OVERRIDE
