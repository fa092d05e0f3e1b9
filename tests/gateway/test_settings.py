"""The gateway's settings: one clear line naming the variable, never the secret."""

from __future__ import annotations

import pytest

from hitl.apikeys import Rate
from hitl.errors import ConfigError
from hitl.settings import WEBHOOK_RETRY_DEFAULT, load_settings


def test_api_keys_parse_into_names_and_secrets() -> None:
    s = load_settings(HITL_API_KEYS="ci:s3cr3t, laptop:an0ther", _env_file=None)
    assert {n: v.get_secret_value() for n, v in s.api_keys.items()} == {"ci": "s3cr3t", "laptop": "an0ther"}


@pytest.mark.parametrize("value", ["ci", "ci:", ":secret", "ci:a,ci:b"])
def test_malformed_api_keys_name_the_variable_and_hide_the_secret(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(HITL_API_KEYS=value, _env_file=None)
    assert str(err.value).startswith("HITL_API_KEYS: ")
    assert "secret" not in str(err.value).split("e.g.")[0].replace("name:secret", "")


def test_api_rate_defaults_to_20_per_second_and_a_bad_one_names_the_variable() -> None:
    assert load_settings(_env_file=None).api_rate == "20/s"
    assert load_settings(HITL_API_RATE="0.5/s", _env_file=None).api_rate == "0.5/s"
    assert load_settings(HITL_API_RATE="1000000/s", _env_file=None).api_rate == "1000000/s"
    assert str(Rate.parse("1000000/s")) == "1000000/s"  # stored and shown: it must parse back
    for bad in ("20", "0/s", "fast", "-1/s"):
        with pytest.raises(ConfigError, match=r"^HITL_API_RATE: .* e\.g\. 20/s"):
            load_settings(HITL_API_RATE=bad, _env_file=None)


def test_webhook_settings() -> None:
    s = load_settings(HITL_WEBHOOK_ALLOWED="https://hooks.example.com/, http://127.0.0.1:", _env_file=None)
    assert s.webhook_allowed == ["https://hooks.example.com/", "http://127.0.0.1:"]
    assert s.webhook_retry == list(WEBHOOK_RETRY_DEFAULT) == [5, 30, 120, 600, 3600, 21600, 86400]
    with pytest.raises(ConfigError, match="HITL_WEBHOOK_ALLOWED"):
        load_settings(HITL_WEBHOOK_ALLOWED="ftp://x", _env_file=None)
    with pytest.raises(ConfigError) as err:
        load_settings(HITL_WEBHOOK_SECRET="not base64 at all!", _env_file=None)
    assert str(err.value).startswith("HITL_WEBHOOK_SECRET: must be whsec_")
    assert "not base64" not in str(err.value)
