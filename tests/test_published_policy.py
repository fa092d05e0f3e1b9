"""The policy lives on the server side (issue 15, item 1), and can forbid agent-named approvers.

The attacker is an agent in its own process with no policy file (or one of its own making):
the team's policy is published to Redis by `hitl policy apply` or by a worker started with
`HITL_POLICY_FILE`, and CREATE routes every request with it, whatever the client sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.main import policy_publisher
from hitl import Approvals, InvalidRequest, scripts
from hitl.errors import ConfigError
from hitl.ids import new_id
from hitl.keys import Keys
from hitl.metrics import ActionLabels
from hitl.models import Request
from hitl.policy import Policy
from hitl.policystore import PolicyStore
from hitl.store import create_args
from hitl.views import RequestView
from tests.conftest import make_settings
from tests.helpers import ROOT, events, eventually, hitl_env, publish_policy, start_worker, stop

POLICY = """\
defaults: {timeout: 1h}
actions:
  purge_table: {mode: gate, approvers: [U0ALICE, U0BOB], channel: "#data-owners"}
  tidy_logs: {mode: auto, agent_approvers: false}
"""


def hitl(redis_url: str, prefix: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`hitl ...` in its own process, with only REDIS_URL and the prefix: no policy file."""
    return subprocess.run(
        [sys.executable, "-m", "hitl.cli", *args], env=hitl_env(redis_url, prefix, **env),
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def applied(redis_url: str, prefix: str, policy_file: Path) -> Path:
    proc = hitl(redis_url, prefix, "policy", "apply", str(policy_file), "--by", "alice")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"version 1 published from {policy_file} (2 actions, 0 rules)\n"
    return policy_file


@pytest.fixture
def reader(redis_url: str, prefix: str) -> Iterator[Approvals]:
    """hitl's own side (the bot, say): reads what was stored."""
    with Approvals(settings=make_settings(redis_url, prefix)) as client:
        yield client


def _stored(conn: redis.Redis, prefix: str) -> int:
    return len([k for k in conn.scan_iter(match=f"{prefix}:req:*")])


def test_an_agent_process_without_the_policy_cannot_pick_approvers_or_channel(
    applied: Path, redis_url: str, prefix: str, reader: Approvals, conn: redis.Redis
) -> None:
    """The issue's attack: no policy file in the agent's process, `approvers=[U0MALLORY]`."""
    named = hitl(redis_url, prefix, "request", "--action", "purge_table", "--summary", "Purge orders",
                 "--approver", "U0MALLORY", "--channel", "C0AGENTROOM")
    assert named.returncode == 3
    assert "approvers: U0MALLORY not among the policy's approvers" in named.stderr
    assert _stored(conn, prefix) == 0
    filed = hitl(redis_url, prefix, "request", "--action", "purge_table", "--summary", "Purge orders",
                 "--channel", "C0AGENTROOM", "--mode", "auto")
    assert filed.returncode == 0, filed.stderr
    req = reader.store.get(filed.stdout.strip())
    assert (req.mode, req.channel, req.mirror_channels) == ("gate", "#data-owners", ["C0AGENTROOM"])
    assert (req.approvers, req.approvers_from, req.policy_version) == (["U0ALICE", "U0BOB"], "policy", 1)


def test_a_clients_own_policy_file_changes_nothing(
    applied: Path, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    own = tmp_path / "mine.yml"
    own.write_text("actions: {purge_table: {mode: auto, approvers: [U0MALLORY], channel: C0AGENTROOM}}\n")
    with Approvals(settings=make_settings(redis_url, prefix, policy_file=own)) as agent:
        with pytest.raises(InvalidRequest) as info:
            agent.request(action="purge_table", summary="s", approvers=["U0MALLORY"])
        assert info.value.field == "approvers"
        req = agent.request(action="purge_table", summary="s").fetch()
    assert (req.mode, req.channel, req.approvers, req.policy_version) == (
        "gate", "#data-owners", ["U0ALICE", "U0BOB"], 1
    )


def _forged(approvals: Approvals, doc: dict) -> list:
    """CREATE called directly (EVALSHA), as a client that skips all routing would."""
    keys, argv = create_args(approvals.keys, {"id": doc["id"], "action": doc["action"], "summary": "s",
                                             "params": {}}, approvals.settings.retention)
    argv[1] = json.dumps(doc)
    return approvals.redis.eval(scripts.CREATE, len(keys), *keys, *argv)


def test_a_forged_document_is_routed_by_the_script(applied: Path, reader: Approvals, prefix: str) -> None:
    rid = new_id()
    forged = {
        "id": rid, "action": "purge_table", "summary": "Purge orders", "params": {},
        # its own "routing": mode auto, another channel, its own approvers, no timers
        "mode": "auto", "channel": "C0AGENTROOM", "approvers": ["U0MALLORY"], "quorum": 1,
        "escalation": [], "timeout": 1, "deadline": None, "asked": {"mode": "auto", "channel": "C0AGENTROOM"},
    }
    result = _forged(reader, forged)
    assert result[0] == b"created" and result[2] == b"gate"
    req = reader.store.get(rid)
    assert (req.mode, req.status, req.approvers, req.channel, req.mirror_channels, req.timeout) == (
        "gate", "pending", ["U0ALICE", "U0BOB"], "#data-owners", ["C0AGENTROOM"], 3600
    )
    assert req.deadline is not None and req.policy_version == 1
    timers = {m.decode() for m in reader.redis.zrange(reader.keys.timers, 0, -1)}
    assert {f"{rid}|timeout", f"{rid}|esc|1", f"{rid}|sync"} <= timers
    created = next(e for e in events(reader.redis, prefix, rid) if e["type"] == "created")
    stored = json.loads(created["doc"])
    assert (stored["mode"], stored["approvers"], stored["policy_version"]) == ("gate", ["U0ALICE", "U0BOB"], 1)
    # Asking for approvers outside the policy is refused by the script, and nothing is written.
    other = {**forged, "id": new_id(), "asked": {"approvers": ["U0MALLORY"]}}
    refused = _forged(reader, other)
    assert refused[:2] == [b"invalid", b"approvers"]
    assert b"U0MALLORY not among the policy's approvers" in refused[2]
    assert not reader.redis.exists(reader.keys.req(other["id"]))


def test_store_create_routes_whatever_document_it_is_given(applied: Path, reader: Approvals) -> None:
    doc = {"id": new_id(), "action": "purge_table", "summary": "s", "params": {}, "mode": "auto",
           "approvers": ["U0MALLORY"], "asked": {"mode": "auto"}}
    created, _rid, mode, _ = reader.store.create(doc)
    assert (created, mode, doc["approvers"], doc["channel"]) == (True, "gate", ["U0ALICE", "U0BOB"], "#data-owners")
    with pytest.raises(InvalidRequest) as info:
        reader.store.create({**doc, "id": new_id(), "asked": {"approvers": ["U0MALLORY"]}})
    assert info.value.field == "approvers"


def test_every_request_records_its_policy_version(reader: Approvals, prefix: str) -> None:
    before = reader.request(action="purge_table", summary="s", approvers=["U0MALLORY"]).fetch()
    assert (before.policy_version, before.approvers, before.approvers_from) == (0, ["U0MALLORY"], "agent")
    assert publish_policy(reader, POLICY) == 1
    after = reader.request(action="purge_table", summary="s").fetch()
    assert after.policy_version == 1
    assert reader.redis.hget(reader.keys.req(after.id), "policy_version") == b"1"
    assert RequestView.of(after).model_dump()["policy_version"] == 1
    created = [e for e in events(reader.redis, prefix, after.id) if e["type"] == "created"]
    assert created[0]["policy_version"] == "1"


def test_plans_are_routed_by_the_published_policy(applied: Path, reader: Approvals) -> None:
    plan = reader.request_batch("Clean up", [{"action": "purge_table", "summary": "a"},
                                             {"action": "tidy_logs", "summary": "b"}], channel="C0AGENTROOM")
    head = plan.plan.fetch()
    steps = [i.fetch() for i in plan.items]
    assert head.mode == "gate" and head.items == [s.id for s in steps]
    assert [(s.mode, s.batch, s.channel, s.deadline) for s in steps] == [
        ("gate", head.id, head.channel, head.deadline)
    ] * 2
    assert steps[0].approvers == ["U0ALICE", "U0BOB"]


def test_agent_approvers_false_refuses_named_approvers(applied: Path, reader: Approvals) -> None:
    with pytest.raises(InvalidRequest) as info:
        reader.request(action="tidy_logs", summary="s", approvers=["U0BOB"])
    assert info.value.field == "approvers"
    assert "does not let agents name approvers for tidy_logs" in str(info.value)
    assert reader.request(action="tidy_logs", summary="s").mode == "auto"
    forged = {"id": new_id(), "action": "tidy_logs", "summary": "s", "params": {}, "asked": {"approvers": ["U0BOB"]}}
    assert _forged(reader, forged)[:2] == [b"invalid", b"approvers"]


def test_agent_approvers_must_be_true_or_false() -> None:
    with pytest.raises(ConfigError, match=r"defaults\.agent_approvers"):
        Policy.from_yaml("defaults: {agent_approvers: maybe}\n")
    assert Policy.from_yaml("defaults: {agent_approvers: false}\n").defaults.agent_approvers is False


def test_apply_show_and_history(redis_url: str, prefix: str, policy_file: Path, conn: redis.Redis) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return hitl(redis_url, prefix, "policy", *args)

    assert run("show").stdout.startswith("version 0 in force: no policy published")
    assert run("apply", str(policy_file), "--by", "alice").stdout.startswith("version 1 published")
    # Its action names keep metric labels of their own (bounded labels for the rest).
    assert ActionLabels(conn, Keys(prefix)).listed() == {"purge_table", "tidy_logs"}
    assert run("apply", str(policy_file), "--by", "bob").stdout == "unchanged: version 1 in force\n"
    policy_file.write_text("# the same policy, written differently\n" + POLICY.replace("1h", "60m"))
    assert run("apply", str(policy_file)).stdout == "unchanged: version 1 in force\n"
    policy_file.write_text(POLICY.replace("1h", "2h"))
    assert run("apply", str(policy_file), "--by", "bob").stdout.startswith("version 2 published")
    shown = run("show").stdout.splitlines()
    assert shown[0].startswith("version 2 in force, applied by bob at 20")
    assert shown[0].endswith(f"from {policy_file}")
    assert "defaults: {timeout: 2h}" in shown
    history = run("history").stdout.splitlines()
    assert history[0].split() == ["VERSION", "APPLIED", "AT", "APPLIED", "BY", "WHY", "CHANGE", "SOURCE"]
    rows = [row.split() for row in history[1:]]
    assert [(r[0], r[2], r[3], r[-1]) for r in rows] == [
        ("1", "alice", "file", str(policy_file)), ("2", "bob", "file", str(policy_file))
    ]
    assert "first version" in history[1] and "changed: defaults" in history[2]
    # A bad file: the same one-line error and exit code as `hitl policy check`; nothing changes.
    policy_file.write_text("actions: {purge_table: {mode: yolo}}\n")
    bad, check = run("apply", str(policy_file)), run("check", str(policy_file))
    assert (bad.returncode, bad.stdout, bad.stderr) == (check.returncode, check.stdout, check.stderr)
    assert bad.returncode == 3 and "actions.purge_table.mode" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert run("show").stdout.startswith("version 2 in force")
    applied = [e for e in events(conn, prefix) if e["type"] == "policy.applied"]
    assert [(e["version"], e["by"]) for e in applied] == [("1", "alice"), ("2", "bob")]


def test_a_worker_publishes_its_file_at_start_and_on_change(
    redis_url: str, prefix: str, policy_file: Path, conn: redis.Redis, reader: Approvals
) -> None:
    store = PolicyStore(conn, Keys(prefix))
    worker = start_worker(redis_url, prefix, HITL_POLICY_FILE=str(policy_file))
    try:
        meta = eventually(lambda: store.current().meta, 10, "version 1")
        assert (meta.version, meta.source) == (1, str(policy_file))
        assert meta.applied_by.startswith("hitl worker@")
        policy_file.write_text(POLICY.replace("1h", "2h"))
        os.utime(policy_file, ns=(5, 5))
        eventually(lambda: store.version_in_force() == 2, 15, "version 2")
        policy_file.write_text("actions: {purge_table: {mode: yolo}}\n")
        os.utime(policy_file, ns=(6, 6))
        error = eventually(store.last_error, 15, "the bad file reported")
        assert "actions.purge_table.mode" in error.message
        assert store.version_in_force() == 2
        req = reader.request(action="purge_table", summary="s").fetch()
        assert (req.timeout, req.policy_version) == (7200, 2)
    finally:
        stop(worker)
    # A restart with the file as published (version 2) creates no version.
    policy_file.write_text(POLICY.replace("1h", "2h"))
    worker = start_worker(redis_url, prefix, HITL_POLICY_FILE=str(policy_file))
    try:
        assert store.last_error() is None  # published at start: unchanged, and the file is good
        assert [v.version for v in store.history()] == [1, 2]
    finally:
        stop(worker)


def test_the_bot_publishes_its_file_at_start(redis_url: str, prefix: str, policy_file: Path, reader: Approvals) -> None:
    settings = make_settings(redis_url, prefix, policy_file=policy_file)
    publisher = policy_publisher(settings, reader)
    assert publisher is not None
    publisher.start()
    try:
        meta = reader.policy.current().meta
        assert meta is not None and meta.applied_by.startswith("hitl bot@")
        again = policy_publisher(settings, reader)
        assert again is not None and again.sync() is not None and reader.policy.version_in_force() == 1
    finally:
        publisher.stop()
    policy_file.write_text("actions: {purge_table: {mode: yolo}}\n")
    with pytest.raises(ConfigError, match=r"actions\.purge_table\.mode"):
        policy_publisher(settings, reader)



def test_the_asyncio_client_routes_with_the_published_policy(applied: Path, redis_url: str, prefix: str) -> None:
    from hitl import AsyncApprovals

    async def agent_files() -> tuple[str | None, Request]:
        async with AsyncApprovals(settings=make_settings(redis_url, prefix)) as agent:
            field = None
            try:
                await agent.request(action="purge_table", summary="s", approvers=["U0MALLORY"])
            except InvalidRequest as exc:
                field = exc.field
            handle = await agent.request(action="purge_table", summary="s", channel="C0AGENTROOM")
            return field, await handle.fetch()

    field, req = asyncio.run(agent_files())
    assert field == "approvers"
    assert (req.channel, req.approvers, req.policy_version) == ("#data-owners", ["U0ALICE", "U0BOB"], 1)


def test_a_client_follows_versions_published_by_another_process(
    applied: Path, reader: Approvals, redis_url: str, prefix: str
) -> None:
    assert reader.request(action="purge_table", summary="s").fetch().policy_version == 1
    with_carol = applied.parent / "v2.yml"
    with_carol.write_text(POLICY.replace("[U0ALICE, U0BOB]", "[U0ALICE, U0BOB, U0CAROL]"))
    assert hitl(redis_url, prefix, "policy", "apply", str(with_carol)).returncode == 0
    # Refused by the version this client last saw, allowed by the one now in force: filed.
    req = reader.request(action="purge_table", summary="s", approvers=["U0CAROL"]).fetch()
    assert (req.approvers, req.policy_version) == (["U0CAROL"], 2)
    # Allowed by the version it last saw, refused by the one now in force: refused.
    assert hitl(redis_url, prefix, "policy", "apply", str(applied)).stdout.startswith("version 3 published")
    with pytest.raises(InvalidRequest) as info:
        reader.request(action="purge_table", summary="s", approvers=["U0CAROL"])
    assert info.value.field == "approvers"
