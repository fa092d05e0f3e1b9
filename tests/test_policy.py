"""The policy file routes requests; arguments only ever raise oversight; bad files are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hitl import Approvals
from hitl.errors import ConfigError
from hitl.policy import Policy, PolicySource, parse_duration
from tests.conftest import make_settings

POLICY = """
defaults: {channel: "#agent-approvals", timeout: 1h}
actions:
  search_web: {mode: auto}
  send_email: {mode: override, window: 10m}
  post_update: {mode: notify}
  delete_record: {mode: gate, approvers: [U0ALICE, S0DATAOWNERS], quorum: 2}
  deploy:
    mode: gate
    timeout: 30m
    escalation:
      - {after: 10m, notify: [U0ONCALL]}
      - {after: 20m, channel: "#eng-leads", notify: [S0LEADS]}
rules:            # for actions not listed; first match wins
  - when: {reversible: false}
    mode: gate
  - when: {risk: [high, critical]}
    mode: gate
confidence: {gate_below: 0.8, urgent_below: 0.6}
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def routed(redis_url: str, prefix: str, policy_file: Path):
    with Approvals(settings=make_settings(redis_url, prefix, policy_file=policy_file)) as client:
        yield client


def test_the_issue_policy_routes_each_action(routed: Approvals) -> None:
    assert routed.request(action="search_web", summary="s").mode == "auto"
    email = routed.request(action="send_email", summary="s").fetch()
    assert (email.mode, email.window, email.channel) == ("override", 600, "#agent-approvals")
    assert routed.request(action="post_update", summary="s").mode == "notify"
    delete = routed.request(action="delete_record", summary="s").fetch()
    assert (delete.approvers, delete.quorum, delete.timeout) == (["U0ALICE", "S0DATAOWNERS"], 2, 3600)
    deploy = routed.request(action="deploy", summary="s").fetch()
    assert deploy.timeout == 1800
    assert [(s.after, s.notify, s.channel) for s in deploy.escalation] == [
        (600, ["U0ONCALL"], None), (1200, ["S0LEADS"], "#eng-leads"),
    ]


def test_rules_and_confidence_for_unlisted_actions(routed: Approvals) -> None:
    assert routed.request(action="drop_table", summary="s", reversible=False).mode == "gate"
    assert routed.request(action="wire_money", summary="s", risk="critical").mode == "gate"
    low = routed.request(action="search_web", summary="s", confidence=0.7).fetch()
    assert (low.mode, low.urgent) == ("gate", False)
    very_low = routed.request(action="search_web", summary="s", confidence=0.5).fetch()
    assert (very_low.mode, very_low.urgent) == ("gate", True)


def test_arguments_only_raise_oversight(routed: Approvals) -> None:
    assert routed.request(action="deploy", summary="s", mode="auto").mode == "gate"
    assert routed.request(action="search_web", summary="s", mode="gate").mode == "gate"
    assert routed.request(action="delete_record", summary="s", quorum=1).fetch().quorum == 2
    assert routed.request(action="delete_record", summary="s", quorum=3).fetch().quorum == 3


def test_a_policy_change_does_not_move_requests_in_flight(routed: Approvals, policy_file: Path) -> None:
    before = routed.request(action="deploy", summary="s")
    policy_file.write_text(POLICY.replace("timeout: 30m", "timeout: 5m"))
    os.utime(policy_file, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    routed.policy.reload()
    assert routed.request(action="deploy", summary="s").fetch().timeout == 300
    assert before.fetch().timeout == 1800


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("actions: {deploy: {mode: yolo}}", "actions.deploy.mode"),
        ("actions: {deploy: {timeout: soon}}", "actions.deploy.timeout"),
        ("actions: {deploy: {colour: red}}", "actions.deploy.colour"),
        ("rules: [{mode: gate}]", "rules.0.when"),
        ("confidence: {gate_below: 2}", "confidence.gate_below"),
        ("defaults: [1, 2", "not valid YAML"),
    ],
)
def test_malformed_policy_names_the_key(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        Policy.load(path)


def test_a_broken_edit_keeps_the_previous_policy(policy_file: Path) -> None:
    source = PolicySource(policy_file)
    policy_file.write_text("actions: {deploy: {mode: yolo}}")
    os.utime(policy_file, ns=(2, 2))
    assert source.reload().actions["search_web"].mode == "auto"
    assert "actions.deploy.mode" in (source.last_error or "")


def test_durations() -> None:
    assert [parse_duration(v) for v in ("30s", "10m", "1h", "2d", 45, "1.5h")] == [30, 600, 3600, 172800, 45, 5400]
    with pytest.raises(ValueError):
        parse_duration("ten minutes")
