"""The Redis ACL the docs show (docs/redis-acl.conf), tested: hitl's own processes, as the
`hitl` user, file, decide and expire requests; a connection without credentials (all an
agent has) can neither read nor write, and the `hitl` user cannot administer the server.

The server loads the docs' file itself; the test only puts a password where it says CHANGE_ME.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hitl import Status, waiters
from hitl.remote import HttpApprovals
from tests.helpers import ROOT
from tests.private_redis import PrivateRedis
from tests.remote.conftest import AGENT_KEY, Stack, product
from tests.remote.test_agent_without_redis import _approve

ACL = ROOT / "docs" / "redis-acl.conf"
GATE = {"action": "purge_table", "summary": "Purge the events table", "mode": "gate"}


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()  # the private Redis is gone: no dispatcher keeps dialling it


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[tuple[PrivateRedis, str]]:
    text = ACL.read_text()
    assert text.count(">CHANGE_ME") == 1
    password = secrets.token_hex(16)
    included = tmp_path / "hitl-acl.conf"
    included.write_text(text.replace(">CHANGE_ME", f">{password}"))
    with PrivateRedis("--include", str(included), login=("hitl", password)) as server:
        yield server, password


def _refused(call: object) -> str:
    with pytest.raises(redis.RedisError) as err:
        call()  # type: ignore[operator]
    return str(err.value)


def test_product_runs_as_the_hitl_user_and_no_one_without_credentials_reads_or_writes(
    acl_redis: tuple[PrivateRedis, str],
) -> None:
    server, password = acl_redis
    hitl_url = server.url_as("hitl", password)
    with product(hitl_url, "hitl") as stack, HttpApprovals(api_url=stack.api_url, api_key=AGENT_KEY) as agent:
        approved = agent.request(**GATE)
        _approve(stack, approved.id)
        assert approved.wait(timeout=30).approved
        expired = agent.request(**{**GATE, "summary": "Purge it later", "timeout": 1})
        assert expired.wait(timeout=30).status is Status.EXPIRED  # the worker's timer, as `hitl`
        rejected = agent.request(**{**GATE, "summary": "Purge it again"})
        rejected.cancel()
        _check_outsiders(server, password, stack, approved.id)
        worker_log = Path(stack.worker_log).read_text()
    assert "NOPERM" not in worker_log and "permission" not in worker_log.lower()


def _raw(port: int, command: list[str]) -> str:
    """One command in plain RESP on a fresh connection, as any Redis client sends it; the reply line."""
    wire = f"*{len(command)}\r\n" + "".join(f"${len(part)}\r\n{part}\r\n" for part in command)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(wire.encode())
        return sock.recv(4096).decode().splitlines()[0]


def _check_outsiders(server: PrivateRedis, password: str, stack: Stack, rid: str) -> None:
    anonymous = redis.Redis.from_url(server.url)
    key = f"hitl:req:{rid}"
    for attempt in (
        lambda: anonymous.hgetall(key),
        lambda: anonymous.zrange("hitl:pending", 0, -1),
        lambda: anonymous.xrange("hitl:events"),
        lambda: anonymous.hset(key, "status", "approved"),
        lambda: anonymous.eval("return redis.call('HSET', KEYS[1], 'status', 'approved')", 1, key),
        lambda: anonymous.flushall(),
    ):
        assert "authenticat" in _refused(attempt).lower()
    for command in (["HGETALL", key], ["HSET", key, "status", "approved"], ["ZRANGE", "hitl:pending", "0", "-1"]):
        assert _raw(server.port, command).startswith("-NOAUTH")  # what any client, any language, gets
    wrong = redis.Redis.from_url(server.url_as("hitl", "guessed"))
    assert "WRONGPASS" in _refused(wrong.ping) or "invalid username-password" in _refused(wrong.ping)
    default = redis.Redis.from_url(server.url_as("default", "anything"))
    assert _refused(default.ping)

    hitl = redis.Redis.from_url(server.url_as("hitl", password))
    for admin in (
        lambda: hitl.flushall(), lambda: hitl.keys("*"), lambda: hitl.config_set("appendonly", "no"),
        lambda: hitl.acl_list(), lambda: hitl.set("elsewhere:x", "1"),
    ):
        assert "NOPERM" in _refused(admin) or "no permissions" in _refused(admin)
    assert stack.approvals.store.get(rid).status is Status.APPROVED  # untouched by the attempts
    for client in (anonymous, wrong, default, hitl):
        client.close()
