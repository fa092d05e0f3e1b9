"""The policy file routes requests; arguments only ever raise oversight; bad files are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl import Approvals, stats
from hitl.errors import ConfigError
from hitl.policy import Policy, PolicySource, parse_duration
from hitl.policystore import PolicyPublisher, Published
from hitl.status import Mode
from tests.conftest import make_settings
from tests.helpers import ROOT, publish_policy

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
def routed(redis_url: str, prefix: str):
    with Approvals(settings=make_settings(redis_url, prefix)) as client:
        publish_policy(client, POLICY)
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


def test_a_policy_change_does_not_move_requests_in_flight(routed: Approvals) -> None:
    before = routed.request(action="deploy", summary="s")
    publish_policy(routed, POLICY.replace("timeout: 30m", "timeout: 5m"))
    after = routed.request(action="deploy", summary="s").fetch()
    assert (after.timeout, after.policy_version) == (300, 2)
    assert (before.fetch().timeout, before.fetch().policy_version) == (1800, 1)


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


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "duplicate key": (
        b"actions:\n  deploy:\n    mode: gate\n    mode: auto\n",
        "duplicate key 'mode' on line 4 (first given on line 3)",
    ),
    "duplicate action": (
        b"actions:\n  deploy: {mode: gate}\n  deploy: {mode: auto}\n",
        "duplicate key 'deploy' on line 3",
    ),
    "deep nesting": (b"defaults: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested more than 20 levels deep"),
    "deep block nesting": (
        b"".join(b"  " * n + b"k%d:\n" % n for n in range(30)) + b"  " * 30 + b"v: 1\n",
        "nested more than 20 levels deep",
    ),
    "invalid UTF-8": (b"defaults: {channel: \"#caf\xe9\"}\n", "not valid UTF-8"),
    "too big": (b"# " + b"x" * (1024 * 1024) + b"\n", "the limit is 1,048,576"),
    "alias bomb": (
        b"a: &a [x, x]\n" + b"".join(b"b%d: [*a, *a]\n" % n for n in range(60)),
        "more than 100 aliases",
    ),
    "autonomy typo": (
        b"autonomy: {min_decisons: 5, max_override_rate: 7}\n", "autonomy.min_decisons"
    ),
    "autonomy range": (b"autonomy: {max_override_rate: 7}\n", "autonomy.max_override_rate"),
    "markup approver": (
        b"actions: {deploy: {approvers: ['U0BOB> <!channel> <https://evil.example|login']}}\n",
        "actions.deploy.approvers",
    ),
    "markup notify": (
        b"actions: {deploy: {escalation: [{after: 1m, notify: ['<!here>']}]}}\n",
        "actions.deploy.escalation.0.notify",
    ),
    "duration over 30 days": (b"defaults: {timeout: 31d}\n", "defaults.timeout"),
    "unreachable quorum": (
        b"actions: {deploy: {approvers: [U0ALICE], quorum: 2}}\n", "actions.deploy: quorum 2 can never be met"
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_file_is_one_config_error_line(tmp_path: Path, name: str) -> None:
    content, words = BAD_FILES[name]
    path = tmp_path / "p.yml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        Policy.load(path)
    message = str(info.value)
    assert words in message
    assert message.startswith(str(path))
    assert "\n" not in message


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_policy_check_prints_one_line_and_exits_3(tmp_path: Path, name: str) -> None:
    path = tmp_path / "p.yml"
    path.write_bytes(BAD_FILES[name][0])
    proc = subprocess.run(
        [sys.executable, "-m", "hitl.cli", "policy", "check", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert BAD_FILES[name][1] in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_live_reload_of_a_bad_file_keeps_the_previous_policy(
    redis_url: str, prefix: str, policy_file: Path, name: str
) -> None:
    with Approvals(settings=make_settings(redis_url, prefix)) as client:
        publisher = PolicyPublisher(policy_file, client.policy, by="hitl worker")
        assert publisher.sync() == Published(1, True)
        assert client.request(action="deploy", summary="s").fetch().timeout == 1800
        policy_file.write_bytes(BAD_FILES[name][0])
        os.utime(policy_file, ns=(3, 3))
        publisher.source.reload()
        assert publisher.sync() is None  # nothing published
        error = client.policy.last_error()
        assert error is not None and BAD_FILES[name][1] in error.message
        after = client.request(action="deploy", summary="s", mode="auto").fetch()
        assert (after.mode, after.timeout, after.policy_version) == ("gate", 1800, 1)
        assert client.request(action="search_web", summary="s").mode == "auto"


def test_even_an_unexpected_loader_failure_keeps_the_previous_policy(
    policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = PolicySource(policy_file)

    def explode(path: Path) -> tuple[Policy, str]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Policy, "read", staticmethod(explode))
    os.utime(policy_file, ns=(4, 4))
    assert source.reload().actions["search_web"].mode == "auto"
    assert source.last_error == f"{policy_file}: RecursionError: maximum recursion depth exceeded"


def test_a_good_file_still_loads_with_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text(
        "defaults: &gate {mode: gate, timeout: 30m}\n"
        "actions:\n"
        "  deploy: {<<: *gate, quorum: 2, approvers: [S0LEADS]}\n"
        "  drop: *gate\n"
        "autonomy: {min_decisions: 5, max_override_rate: 0.1}\n"
    )
    policy = Policy.load(path)
    assert (policy.actions["deploy"].mode, policy.actions["deploy"].quorum) == ("gate", 2)
    assert policy.actions["drop"].timeout == 1800
    assert (policy.autonomy.min_decisions, policy.autonomy.max_override_rate) == (5, 0.1)


def test_stats_recommend_with_the_policys_validated_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("autonomy: {min_decisions: 5}\n")
    limits = Policy.load(path).autonomy
    assert isinstance(limits, stats.AutonomyThresholds)
    earned = stats.ActionStats("deploy", {"approved": 5, "approved_unedited": 5}, None, None)
    assert earned.recommendation(Mode.GATE, limits) is not None
    assert earned.recommendation(Mode.GATE, Policy().autonomy) is None  # default needs 100


def test_policy_durations_are_capped() -> None:
    with pytest.raises(ConfigError, match=r"defaults\.window: '1000h' is longer than the limit of 30 days"):
        Policy.from_yaml("defaults: {window: 1000h}")
