"""A missing or malformed setting is one line naming the variable, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hitl.errors import ConfigError
from hitl.settings import load_settings
from tests.helpers import ROOT, hitl_env


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
        ({"HITL_TIMER_LEASE": "-1"}, "HITL_TIMER_LEASE"),
        ({"HITL_HOST": "http://0.0.0.0"}, "HITL_HOST"),
        ({"HITL_HOST": "every interface"}, "HITL_HOST"),
        ({"HITL_SLACK_UPDATE_INTERVAL_MS": "fast"}, "HITL_SLACK_UPDATE_INTERVAL_MS"),
    ],
)
def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, env, name) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert str(info.value).startswith(f"{name}: ")
    assert "\n" not in str(info.value)


def test_hitl_host_defaults_to_every_interface_and_takes_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(_env_file=None).host == "0.0.0.0"
    for given, host in (("127.0.0.1", "127.0.0.1"), ("::", "::"), ("[::1]", "::1"), ("hitl.internal", "hitl.internal")):
        monkeypatch.setenv("HITL_HOST", given)
        assert load_settings(_env_file=None).host == host


def test_update_interval_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """chat.update spacing is read with every other setting: 1300 ms unless the env says."""
    assert load_settings(_env_file=None).slack_update_interval_ms == 1300
    monkeypatch.setenv("HITL_SLACK_UPDATE_INTERVAL_MS", "200")
    assert load_settings(_env_file=None).slack_update_interval_ms == 200


def test_admins_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_ADMINS", "U01, U02,U03")
    assert load_settings(_env_file=None).admins == ["U01", "U02", "U03"]


def test_cli_reports_a_bad_setting_in_one_line(redis_url: str) -> None:
    env = hitl_env(redis_url, "tcli", PORT="eighty")
    out = subprocess.run(
        [sys.executable, "-m", "hitl.cli", "request", "--action", "a", "--summary", "s"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 3
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hitl: configuration error: PORT: ")
    assert "Traceback" not in out.stderr
