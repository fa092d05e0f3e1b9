"""API keys: the agents' identities, stored hashed in Redis.

An agent holds a bearer secret and nothing more; the web process turns it into a
`Principal` (the key's name, whether it is an operator's admin key, the actions it may
file and its rate). The name is recorded as `via` on everything the key files, and is what
ownership is judged by: a key reads, waits on and cancels only its own requests.

Secrets are `hitl_` + 32 random bytes (url-safe base64), so a plain sha256 is enough to
store them: there is nothing to guess that a slow hash would protect. Redis holds the hash
and the record, never the secret; authentication is one HGET by hash (no comparison loop,
so timing says nothing about which secret is close). `HITL_API_KEYS` keys (bootstrap) are
hashed the same way in memory.

`ApiKeyStore` (sync: the CLI, the dashboard) and `AsyncApiKeyStore` (the web routes) are
the only code that reads or writes these keys; every write is one Lua script
(`hitl.scripts`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from hitl import scripts
from hitl.errors import HitlError
from hitl.keys import Keys
from hitl.models import Request
from hitl.rates import Rate

# What every secret starts with, so one pasted in a chat or a log is recognisable.
SECRET_PREFIX = "hitl_"
# A key's name: it is `via` on requests, shown on cards and in logs.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyNameTaken(HitlError):
    """`hitl keys create` with a name already in use: keys are never silently replaced."""


class ActionForbidden(HitlError):
    """A key filed an action outside its patterns (HTTP 403 naming `field`)."""

    def __init__(self, field: str, action: str, principal: Principal) -> None:
        self.field = field
        allowed = ", ".join(principal.actions)
        super().__init__(
            f"{field}: API key {principal.name!r} may not file {action!r}; its actions are {allowed}"
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one API key. `actions` empty means every action."""

    name: str
    rate: Rate
    admin: bool = False
    actions: tuple[str, ...] = ()
    created_at: float | None = None  # None for HITL_API_KEYS keys (they live in settings)

    def may_file(self, action: str) -> bool:
        """Whether the key's action patterns (fnmatch, case-sensitive) admit `action`."""
        return not self.actions or any(fnmatch.fnmatchcase(action, p) for p in self.actions)

    def check_action(self, action: object, field: str = "action") -> None:
        """Raise `ActionForbidden` unless the key may file `action`. A value that is not
        text is left to the request's own validation (a 422 naming the field)."""
        if isinstance(action, str) and not self.may_file(action.strip()):
            raise ActionForbidden(field, action.strip(), self)

    def owns(self, req: Request) -> bool:
        """Whether this key may see and cancel `req`: it filed it, or it is an admin key."""
        return self.admin or req.via == self.name

    def record(self, secret_hash: str) -> str:
        return json.dumps({
            "name": self.name, "admin": self.admin, "actions": list(self.actions), "rate": str(self.rate),
            "created": self.created_at, "hash": secret_hash,
        }, separators=(",", ":"))

    @classmethod
    def from_record(cls, raw: str | bytes) -> Principal:
        data = json.loads(raw)
        return cls(
            name=data["name"], rate=Rate.parse(data["rate"]), admin=bool(data["admin"]),
            actions=tuple(data["actions"]), created_at=data.get("created"),
        )


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{name!r} is not a key name: 1 to 64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    return name


def check_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(p.strip() for p in patterns if p.strip())
    for p in cleaned:
        if not re.match(r"^[A-Za-z0-9_.:/*?\[\]!-]+$", p):
            raise ValueError(f"{p!r} is not an action pattern (letters, digits, _ . : / - and * ? [ ])")
    return cleaned


def bootstrap(keys: Mapping[str, str], rate: Rate) -> dict[str, Principal]:
    """HITL_API_KEYS as {secret hash: Principal}: non-admin keys for every action."""
    return {
        secret_hash(secret): Principal(name=name, rate=rate) for name, secret in keys.items()
    }


def _retry_after(result: Sequence[Any]) -> float:
    """RATE_TAKE's answer as seconds to wait (0 when admitted)."""
    return 0.0 if int(result[0]) == 1 else int(result[1]) / 1000


class ApiKeyStore:
    """API keys in Redis, synchronously: `hitl keys` and the dashboard's gate."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._create = client.register_script(scripts.KEY_CREATE)
        self._revoke = client.register_script(scripts.KEY_REVOKE)
        self._take = client.register_script(scripts.RATE_TAKE)

    def create(
        self, name: str, *, rate: Rate, admin: bool = False, actions: Sequence[str] = (), by: str = "cli"
    ) -> tuple[Principal, str]:
        """A new key and its secret (shown once; only its hash is stored).

        Raises `KeyNameTaken` when `name` is in use, ValueError for a bad name or pattern."""
        principal = Principal(
            name=check_name(name), rate=rate, admin=admin, actions=check_patterns(actions),
            created_at=round(time.time(), 3),
        )
        secret = new_secret()
        digest = secret_hash(secret)
        payload = {"name": name, "hash": digest, "record": principal.record(digest), "by": by}
        created = self._create(
            keys=[self.keys.api_keys, self.keys.api_key_secrets, self.keys.events],
            args=[json.dumps(payload)],
        )
        if not int(created):
            raise KeyNameTaken(f"an API key named {name!r} exists; revoke it first or pick another name")
        return principal, secret

    def list(self) -> list[Principal]:
        raw = self.redis.hgetall(self.keys.api_keys)
        return sorted((Principal.from_record(v) for v in raw.values()), key=lambda p: p.name)

    def revoke(self, name: str, *, by: str = "cli") -> bool:
        """Forget `name`; the next call with its secret is refused. False when unknown."""
        payload = json.dumps({"name": name, "by": by})
        keys_ = [self.keys.api_keys, self.keys.api_key_secrets, self.keys.events]
        return bool(int(self._revoke(keys=keys_, args=[payload])))

    def find(self, secret: str) -> Principal | None:
        raw = self.redis.hget(self.keys.api_key_secrets, secret_hash(secret))
        return None if raw is None else Principal.from_record(raw)

    def count(self) -> int:
        return int(self.redis.hlen(self.keys.api_keys))

    def take(self, principal: Principal) -> float:
        """Spend one call of `principal`'s rate: 0 when admitted, else seconds to wait."""
        args = [json.dumps({"rate": principal.rate.per_second, "burst": principal.rate.burst})]
        return _retry_after(self._take(keys=[self.keys.rate_limit(principal.name)], args=args))


class AsyncApiKeyStore:
    """The asyncio side the web routes use: find a key by its secret, spend its rate."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._take = client.register_script(scripts.RATE_TAKE)

    async def find(self, secret: str) -> Principal | None:
        raw = await self.redis.hget(self.keys.api_key_secrets, secret_hash(secret))
        return None if raw is None else Principal.from_record(raw)

    async def count(self) -> int:
        return int(await self.redis.hlen(self.keys.api_keys))

    async def take(self, principal: Principal) -> float:
        args = [json.dumps({"rate": principal.rate.per_second, "burst": principal.rate.burst})]
        return _retry_after(await self._take(keys=[self.keys.rate_limit(principal.name)], args=args))
