"""The one way a bearer secret becomes a `Principal`, for `/v1`, `/mcp` and the dashboard.

A call is let in when its `Authorization: Bearer <secret>` is a key from `hitl keys create`
(looked up by hash in Redis, so a revoked key is refused at once in every process) or one
of HITL_API_KEYS (bootstrap). Then it spends one token of the key's rate, counted in Redis
so every web process shares the budget; over it, 429 with `Retry-After`.

Every call counts, long-polls included: a long-poll holds up to 60 s on one token, so a
waiting agent re-arming its poll spends about one token a minute, far under any rate, while
a key spinning on `?wait=0` is held to its rate like any other burst.
"""

from __future__ import annotations

import math

import redis
import redis.asyncio as aioredis
from starlette.responses import JSONResponse

from hitl.apikeys import ApiKeyStore, AsyncApiKeyStore, Principal, Rate, bootstrap, secret_hash
from hitl.errors import HitlError
from hitl.keys import Keys
from hitl.settings import Settings

# The field a refusal names: the credential, not anything in the body.
FIELD = "Authorization"


class Refused(HitlError):
    """401 (no or wrong key) or 429 (over the key's rate), as the contract's JSON answer."""

    def __init__(self, status: int, error: str, retry_after: float | None = None) -> None:
        self.status = status
        self.error = error
        self.retry_after = retry_after
        super().__init__(error)

    def headers(self) -> dict[str, str]:
        if self.status == 401:
            return {"WWW-Authenticate": 'Bearer realm="hitl"'}
        # Retry-After is whole seconds (RFC 9110); round up so a retry at that time succeeds.
        return {"Retry-After": str(max(1, math.ceil(self.retry_after or 0)))}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "field": FIELD}, self.status, headers=self.headers())


def _secret(authorization: str | None) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Refused(401, "missing API key: send Authorization: Bearer <secret>")
    return secret.strip()


class Authenticator:
    """Bearer secret -> `Principal`, then the key's rate; shared by every route of a process."""

    def __init__(self, settings: Settings, sync: redis.Redis | None, aio: aioredis.Redis, keys: Keys) -> None:
        """`sync` serves `authenticate_sync` (None where only asyncio code authenticates)."""
        self.rate = Rate.parse(settings.api_rate)
        self._bootstrap = bootstrap(
            {n: s.get_secret_value() for n, s in settings.api_keys.items()}, self.rate
        )
        self._store = None if sync is None else ApiKeyStore(sync, keys)
        self._aio = AsyncApiKeyStore(aio, keys)

    def _known(self, secret: str) -> Principal | None:
        return self._bootstrap.get(secret_hash(secret))

    def _unknown(self, stored: int) -> Refused:
        if not self._bootstrap and not stored:
            return Refused(
                401,
                "no API keys are configured: run `hitl keys create NAME`, "
                "or set HITL_API_KEYS (name:secret,...)",
            )
        return Refused(401, "wrong API key")

    def _over(self, principal: Principal, wait: float) -> Refused:
        return Refused(
            429,
            f"API key {principal.name!r} is over its rate ({principal.rate}); "
            f"retry in {max(wait, 0.001):.3g} s",
            retry_after=wait,
        )

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller's key; raises `Refused` (401, 429). Redis errors propagate."""
        secret = _secret(authorization)
        principal = self._known(secret) or await self._aio.find(secret)
        if principal is None:
            raise self._unknown(await self._aio.count())
        wait = await self._aio.take(principal)
        if wait > 0:
            raise self._over(principal, wait)
        return principal

    def authenticate_sync(self, authorization: str | None) -> Principal:
        """`authenticate` for code in a worker thread (the dashboard's gate)."""
        if self._store is None:
            raise RuntimeError("this Authenticator was made without a synchronous Redis client")
        secret = _secret(authorization)
        principal = self._known(secret) or self._store.find(secret)
        if principal is None:
            raise self._unknown(self._store.count())
        wait = self._store.take(principal)
        if wait > 0:
            raise self._over(principal, wait)
        return principal


__all__ = ["FIELD", "Authenticator", "Refused"]
