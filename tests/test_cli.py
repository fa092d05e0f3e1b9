"""`hitl request --wait` gates a shell step: 0 approved, 1 rejected, 2 expired, 3 error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hitl import Approvals
from tests.helpers import ROOT, hitl_env, start_worker, stop


def _run(redis_url: str, prefix: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hitl.cli", "request", *args],
        env=hitl_env(redis_url, prefix), cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _filed_id(proc: subprocess.Popen[str]) -> str:
    line = proc.stderr.readline()  # "request <id> filed (<mode>)"
    assert line.startswith("request "), line
    return line.split()[1]


@pytest.mark.parametrize(("verb", "code", "status"), [("approve", 0, "approved"), ("reject", 1, "rejected")])
def test_wait_exit_code_follows_the_decision(redis_url, prefix, approvals: Approvals, verb, code, status):
    proc = _run(redis_url, prefix, "--action", "deploy", "--summary", "Deploy", "--param", "replicas=3",
                "--param", "tag=v1.2", "--wait")
    rid = _filed_id(proc)
    assert approvals.get(rid).fetch().params == {"replicas": 3, "tag": "v1.2"}
    approvals.decide(rid, verb, by="U01", comment="because")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == code
    assert json.loads(out)["status"] == status
    assert f"{status} by U01: because" in err


def test_wait_exit_code_2_when_expired(redis_url, prefix) -> None:
    worker = start_worker(redis_url, prefix)
    try:
        proc = _run(redis_url, prefix, "--action", "a", "--summary", "s", "--timeout", "0.3", "--wait")
        out, _ = proc.communicate(timeout=30)
    finally:
        stop(worker)
    assert proc.returncode == 2
    assert json.loads(out)["status"] == "expired"


def test_without_wait_prints_the_id(redis_url, prefix, approvals: Approvals) -> None:
    proc = _run(redis_url, prefix, "--action", "a", "--summary", "s")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert approvals.get(out.strip()).status() == "pending"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--summary", "s"], "the following arguments are required: --action"),
        (["--action", "a", "--summary", "s", "--param", "novalue"], "--param wants key=value"),
        (["--action", "a b", "--summary", "s"], "action: may only contain"),
        (["--action", "a", "--summary", "s", "--timeout", "-1"], "timeout: must be positive"),
    ],
)
def test_errors_exit_3_with_a_message(redis_url, prefix, args, message) -> None:
    proc = _run(redis_url, prefix, *args, "--wait")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert message in err
    assert "Traceback" not in err


def test_policy_check_reports_the_offending_key(tmp_path, redis_url, prefix) -> None:
    good = tmp_path / "good.yml"
    good.write_text("actions: {deploy: {mode: gate, timeout: 30m}}\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("actions: {deploy: {mode: gate, timeout: soon}}\n")
    env = hitl_env(redis_url, prefix)
    ok = subprocess.run([sys.executable, "-m", "hitl.cli", "policy", "check", str(good)], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "OK (1 actions, 0 rules)" in ok.stdout
    no = subprocess.run([sys.executable, "-m", "hitl.cli", "policy", "check", str(bad)], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=30)
    assert no.returncode == 3 and "actions.deploy.timeout" in no.stderr and "Traceback" not in no.stderr


def test_audit_export_writes_json_lines(redis_url, prefix, approvals: Approvals, tmp_path) -> None:
    req = approvals.request(action="a", summary="s")
    approvals.decide(req.id, "approve", by="U01")
    out = tmp_path / "audit.jsonl"
    done = subprocess.run([sys.executable, "-m", "hitl.cli", "audit", "export", "--since", "1h", "-o", str(out)],
                          env=hitl_env(redis_url, prefix), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "exported 2 events" in done.stderr
    assert [json.loads(line)["type"] for line in out.read_text().splitlines()] == ["created", "decided"]


def test_unreachable_redis_is_one_line_and_exit_3(prefix) -> None:
    from hitl.embedded import free_port

    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    proc = _run(url, prefix, "--action", "a", "--summary", "s", "--wait")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hitl: error: Redis at redis://127.0.0.1:") and "hunter2" not in err


def test_shadow_wait_goes_ahead_at_once_and_exits_0(redis_url, prefix, approvals: Approvals) -> None:
    proc = _run(redis_url, prefix, "--action", "a", "--summary", "s", "--mode", "shadow", "--wait")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    printed = json.loads(out)
    assert printed["status"] == "pending" and printed["mode"] == "shadow"
    assert "shadow mode never blocks" in err
    assert approvals.get(printed["request_id"]).status() == "pending"  # still measured later


@pytest.mark.parametrize(
    ("mode", "verb", "code", "status"),
    [
        ("override", "confirm", 0, "finalized"),
        ("override", "veto", 1, "vetoed"),
        ("gate", "cancel", 1, "cancelled"),
    ],
)
def test_every_final_status_has_its_spec_exit_code(
    redis_url, prefix, approvals: Approvals, mode, verb, code, status
) -> None:
    proc = _run(redis_url, prefix, "--action", "a", "--summary", "s", "--mode", mode, "--window", "60", "--wait")
    rid = _filed_id(proc)
    if verb == "cancel":
        approvals.get(rid).cancel()
    else:
        approvals.decide(rid, verb, by="U01", comment="why")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert json.loads(out)["status"] == status


def test_auto_wait_returns_at_once_with_0(redis_url, prefix) -> None:
    proc = _run(redis_url, prefix, "--action", "a", "--summary", "s", "--mode", "auto", "--wait")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and json.loads(out)["status"] == "approved"


def test_exit_codes_cover_every_final_status() -> None:
    from hitl.cli import exit_code
    from hitl.status import Mode, Status

    codes = {s: exit_code(s, Mode.GATE) for s in Status if s.final}
    assert codes == {
        "approved": 0, "finalized": 0, "judged": 0, "rejected": 1, "vetoed": 1, "cancelled": 1, "expired": 2,
    }


def test_audit_export_says_when_older_events_are_trimmed(redis_url, prefix, approvals: Approvals) -> None:
    approvals.request(action="a", summary="s")

    def export(since: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hitl.cli", "audit", "export", "--since", since],
            env=hitl_env(redis_url, prefix, HITL_AUDIT_RETENTION="30d"), cwd=ROOT,
            capture_output=True, text=True, timeout=30,
        )

    old = export("60d")
    assert old.returncode == 0 and "older than HITL_AUDIT_RETENTION (30 days) are trimmed" in old.stderr
    recent = export("1d")
    assert recent.returncode == 0 and "trimmed" not in recent.stderr
