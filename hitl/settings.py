"""Settings from the environment or `.env`, read once with pydantic-settings.

A bad value must never surface as a traceback: `load_settings()` turns pydantic's report
into one `ConfigError` line that names the environment variable to fix.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hitl import webhookurl
from hitl.errors import ConfigError
from hitl.rates import Rate

# Slack's own Web API; the sandbox and tests point SLACK_API_URL elsewhere.
SLACK_API_DEFAULT = "https://slack.com/api/"
# Redis used when REDIS_URL is unset (the Redis a developer usually has running).
REDIS_URL_DEFAULT = "redis://127.0.0.1:6379/0"
# A host name `hitl bot` may bind (resolved by the system): letters, digits, dots and dashes.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# Webhook retry schedule (seconds): ~5 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h.
WEBHOOK_RETRY_DEFAULT = (5, 30, 120, 600, 3600, 21600, 86400)
# Action names outside the policy that get their own metric and stats labels.
METRICS_MAX_ACTIONS_DEFAULT = 200


def api_base_url(value: str | None) -> str | None:
    """HITL_API_URL (or `api_url=`) checked: an http(s) base URL, without `/v1` or a trailing /."""
    if not value or not value.strip():
        return None
    url = value.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError("must be the web process's http(s) base URL, such as https://hitl.example.com")
    if url.endswith("/v1"):
        raise ValueError("give the base URL without /v1 (the client adds it)")
    return url


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Every knob of hitl-router. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field(default=SLACK_API_DEFAULT, validation_alias=_env("SLACK_API_URL"))
    port: int = Field(default=3000, ge=1, le=65535, validation_alias=_env("PORT"))
    # Address `hitl bot` listens on. Every interface (0.0.0.0) by default, because where the
    # web process runs it is reached from outside its own loopback: a container's published
    # port and its orchestrator's health checks arrive on the container's network interface,
    # and a PaaS router (the Procfile's `web: hitl bot`) connects to $PORT from outside too;
    # a loopback default would make those deployments unreachable. Set 127.0.0.1 (or ::1)
    # when a reverse proxy on the same host is the only way in; `::` listens on IPv6 too.
    # `hitl dev` ignores it and stays on 127.0.0.1: its sandbox page signs Slack requests as
    # any user, and it prints its API key.
    host: str = Field(default="0.0.0.0", min_length=1, validation_alias=_env("HITL_HOST"))
    default_channel: str | None = Field(default=None, validation_alias=_env("HITL_DEFAULT_CHANNEL"))
    # Published by `hitl bot` and `hitl worker` at start and on change (hitl.policystore);
    # any other process's own file routes nothing: requests follow the published version.
    policy_file: Path | None = Field(default=None, validation_alias=_env("HITL_POLICY_FILE"))
    admins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("HITL_ADMINS")
    )
    # Key prefix so several deployments (or the test suite) can share one Redis.
    prefix: str = Field(default="hitl", min_length=1, validation_alias=_env("HITL_REDIS_PREFIX"))
    # How long a final request stays in Redis (seconds) before it ages out; the audit stays.
    retention: int = Field(default=30 * 86400, gt=0, validation_alias=_env("HITL_RETENTION"))
    # How long audit events stay in the `{prefix}:events` stream (seconds or `90d`); older
    # ones are trimmed by the worker's maintenance loop (export them before: `hitl audit export`).
    audit_retention: float = Field(default=90 * 86400, gt=0, validation_alias=_env("HITL_AUDIT_RETENTION"))
    # How often one worker (whichever takes the lock) trims the audit and cleans stale requests.
    maintenance_interval: float = Field(
        default=300.0, gt=0, validation_alias=_env("HITL_MAINTENANCE_INTERVAL")
    )
    # Count requests, decisions, timers and Slack calls into the shared Prometheus figures.
    metrics: bool = Field(default=True, validation_alias=_env("HITL_METRICS"))
    # Bearer token `GET /metrics` requires when set (`Authorization: Bearer <token>`; else 401).
    metrics_token: SecretStr | None = Field(default=None, validation_alias=_env("HITL_METRICS_TOKEN"))
    # Action names not in the policy that get their own metric and stats labels; the rest
    # are counted as `other`, so agents cannot grow shared state by inventing names.
    metrics_max_actions: int = Field(
        default=METRICS_MAX_ACTIONS_DEFAULT, ge=0, validation_alias=_env("HITL_METRICS_MAX_ACTIONS")
    )
    # Connections the web process's asyncio Redis pool opens at most (HTTP API, /mcp, /healthz);
    # past that a call waits for a free one, up to HITL_REDIS_POOL_WAIT seconds, then answers busy.
    redis_pool_size: int = Field(default=64, ge=1, le=10_000, validation_alias=_env("HITL_REDIS_POOL_SIZE"))
    redis_pool_wait: float = Field(default=5.0, gt=0, le=60, validation_alias=_env("HITL_REDIS_POOL_WAIT"))
    # Log lines: "text" (human-readable) or "json" (one object per line, with request id,
    # action and trace id where known).
    log_format: Literal["text", "json"] = Field(default="text", validation_alias=_env("HITL_LOG_FORMAT"))
    # Key for the dashboard's signed links and sessions; derived from SLACK_SIGNING_SECRET
    # when unset.
    dashboard_secret: SecretStr | None = Field(default=None, validation_alias=_env("HITL_DASHBOARD_SECRET"))
    # Where the web process is reached from a browser, for the links `/hitl dashboard`
    # hands out (default http://localhost:$PORT).
    public_url: str | None = Field(default=None, validation_alias=_env("HITL_PUBLIC_URL"))
    # Who may open the dashboard (Slack user ids); empty = anyone in the workspace.
    dashboard_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("HITL_DASHBOARD_USERS")
    )
    # Seconds a worker holds a claimed timer before another worker may take it over.
    timer_lease: float = Field(default=10.0, gt=0, validation_alias=_env("HITL_TIMER_LEASE"))
    # How often each worker looks for due timers (seconds).
    timer_tick: float = Field(default=0.2, gt=0, validation_alias=_env("HITL_TIMER_TICK"))
    # Milliseconds between two chat.update calls across every worker: Slack allows about 50
    # a minute per workspace, so the default keeps under that with a margin; a workspace on
    # a more generous tier (or a test's stand-in) may lower it.
    slack_update_interval_ms: int = Field(
        default=1300, ge=1, validation_alias=_env("HITL_SLACK_UPDATE_INTERVAL_MS")
    )
    # Milliseconds between two conversations.history reads of one channel across every
    # worker (card recovery): Slack allows apps outside the Marketplace one a minute.
    slack_history_interval_ms: int = Field(
        default=61_000, ge=1, validation_alias=_env("HITL_SLACK_HISTORY_INTERVAL_MS")
    )
    # HTTP API keys, `name:secret,...`; the name is recorded as `via` on what a key files.
    api_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("HITL_API_KEYS")
    )
    # Each API key's rate (calls per second, `N/s`) unless `hitl keys create --rate` gave it
    # one; HITL_API_KEYS keys always have this one. A key may burst to twice its rate.
    api_rate: str = Field(default="20/s", validation_alias=_env("HITL_API_RATE"))
    # Webhook destinations (`scheme://host[:port][/path]`, comma-separated) a request's
    # `callback_url` must be under, compared by parts (hitl.webhookurl); none: webhooks are refused.
    webhook_allowed: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("HITL_WEBHOOK_ALLOWED")
    )
    # Standard Webhooks signing secret, `whsec_` + base64.
    webhook_secret: SecretStr | None = Field(default=None, validation_alias=_env("HITL_WEBHOOK_SECRET"))
    # Seconds between webhook delivery attempts (the contract's schedule, docs/contract.md); tests shorten it.
    webhook_retry: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: list(WEBHOOK_RETRY_DEFAULT), validation_alias=_env("HITL_WEBHOOK_RETRY")
    )
    # How long the worker's webhook feed blocks per read of the final-request stream (seconds):
    # a stopping worker waits out the read in progress; tests shorten it.
    webhook_feed_block: float = Field(
        default=1.0, gt=0, le=60, validation_alias=_env("HITL_WEBHOOK_FEED_BLOCK")
    )

    # -- the agent's side: the HTTP transport (hitl.remote) -------------------------------
    # The web process's base URL (no /v1). Set, `Approvals()` talks to it over HTTP with
    # HITL_API_KEY and never opens a Redis connection, whatever REDIS_URL says.
    api_url: str | None = Field(default=None, validation_alias=_env("HITL_API_URL"))
    # The agent's API key for HITL_API_URL (a secret of HITL_API_KEYS on the server).
    api_key: SecretStr | None = Field(default=None, validation_alias=_env("HITL_API_KEY"))

    @field_validator("admins", "dashboard_users", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.replace(" ", ",").split(",") if v.strip()]
        return value

    @field_validator("audit_retention", "maintenance_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        from hitl.policy import parse_duration  # lazily: hitl.policy is heavier than settings

        return parse_duration(value) if isinstance(value, str) and value.strip() else value

    @model_validator(mode="after")
    def _audit_outlives_requests(self) -> Settings:
        # A request's document lives in its audit `created` event: the audit must be kept at
        # least as long as requests are (the trim also never passes a request still stored).
        if self.audit_retention < self.retention:
            raise ConfigError(
                f"HITL_AUDIT_RETENTION: must be at least HITL_RETENTION ({self.retention:,} s), since "
                f"a stored request reads its document from the audit (got {self.audit_retention:,.0f} s)"
            )
        return self

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_api_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys: dict[str, str] = {}
        for pair in (p.strip() for p in value.split(",")):
            if not pair:
                continue
            name, sep, secret = pair.partition(":")
            if not sep or not name.strip() or not secret.strip():
                raise ValueError("must be comma-separated name:secret pairs, e.g. ci:s3cr3t,agent:an0ther")
            if name.strip() in keys:
                raise ValueError(f"the key name {name.strip()!r} appears twice")
            keys[name.strip()] = secret.strip()
        return keys

    @field_validator("api_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        return str(Rate.parse(value))

    @field_validator("webhook_allowed", mode="before")
    @classmethod
    def _split_allowed(cls, value: object) -> object:
        if isinstance(value, str):
            prefixes = [v.strip() for v in value.split(",") if v.strip()]
            for p in prefixes:
                try:
                    webhookurl.parse(p)
                except webhookurl.BadWebhookUrl as exc:
                    raise ValueError(f"{p!r} is not a webhook destination: {exc}") from None
            return prefixes
        return value

    @field_validator("webhook_retry", mode="before")
    @classmethod
    def _split_retry(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            raw = value.get_secret_value().removeprefix("whsec_")
            try:
                ok = bool(base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True))
            except ValueError:
                ok = False
            if not ok or not value.get_secret_value().startswith("whsec_"):
                raise ValueError("must be whsec_ followed by base64 (a Standard Webhooks secret)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("host")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        value = value.strip().removeprefix("[").removesuffix("]")
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.match(value):
                raise ValueError(
                    "must be an address to listen on, such as 0.0.0.0 (every interface), 127.0.0.1 "
                    "(this machine only) or ::"
                ) from None
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("api_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return api_base_url(value)

    @property
    def redis(self) -> str:
        return self.redis_url or REDIS_URL_DEFAULT

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None


_ALIASES = {
    name: str(field.validation_alias.choices[0])
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
}

_SECRET_FIELDS = frozenset(
    {
        "api_keys", "api_key", "webhook_secret", "slack_bot_token", "slack_signing_secret", "slack_app_token",
        "metrics_token",
    }
)


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise one `ConfigError` line naming the variable when one is bad."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = str(first["loc"][0]) if first["loc"] else "settings"
        name = _ALIASES.get(loc, loc.upper())
        msg = first["msg"].removeprefix("Value error, ")
        # Never echo a secret into a log line.
        if loc in _SECRET_FIELDS or name in {_ALIASES[f] for f in _SECRET_FIELDS}:
            raise ConfigError(f"{name}: {msg}") from None
        raise ConfigError(f"{name}: {msg} (got {first.get('input')!r})") from None
