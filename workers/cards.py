"""Slack card jobs: make each card match Redis, and post escalation reminders.

`sync_card` runs whenever a request is created or changes (the transition scripts arm
its `{id}|sync` timer). It posts the card the first time and `chat.update`s it after
that, so the card is never more than a tick behind Redis, whoever changed it.

No request gets two cards: a short claim key serialises posting, and a post whose outcome
is unknown (the connection dropped after sending) is looked up in the channel's history
by the message metadata before anything is posted again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import lru_cache

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.cards import DIGEST_CAPACITY, build_card, build_digest, build_plan, reminder_text
from bot.slack import web_client
from hitl import tracing
from hitl.errors import RequestNotFound
from hitl.keys import timer_member
from hitl.logs import log_context
from hitl.models import Request
from hitl.settings import Settings, load_settings
from hitl.status import Mode, Status
from hitl.store import Store, _s, escalation_step, now_ms
from hitl.tracing import SpanName
from workers.context import store_for

log = logging.getLogger(__name__)

# Metadata event type stamped on every card, to find a card whose post response was lost.
METADATA_TYPE = "hitl_request"
# The same for a digest card, whose payload lists its requests' ids.
DIGEST_TYPE = "hitl_digest"
# Milliseconds between two new cards in one channel: Slack allows about one message per
# second per channel, so a burst is paced here instead of bouncing off 429s.
PACE_MS = 1050
# A channel's backlog goes out as one digest card once this many requests wait unposted:
# a burst no one could take in card by card. Below it (an agent filing a handful at once)
# each request gets its full card, one per PACE_MS.
DIGEST_MIN = 10
# Seconds a posting claim lives (longer than any single post with its retries).
POST_CLAIM_TTL = 120
# When a card cannot be synced now, try again after this many seconds.
RETRY_SOON = 2.0
# Slack errors that no retry will fix: the card is given up and the reason audited.
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "invalid_blocks_format",
     "msg_too_long", "no_text", "invalid_auth", "not_authed", "account_inactive", "token_revoked",
     "missing_scope", "restricted_action"}
)


@lru_cache(maxsize=1)
def _settings() -> Settings:
    return load_settings()


@lru_cache(maxsize=1)
def _clients() -> tuple[WebClient, WebClient] | None:
    """(client for updates, client for posts), or None when Slack is not configured.

    Posts get no connection-error retry: a dropped connection may hide a card that was
    created, and blindly posting again is how duplicates happen.
    """
    settings = _settings()
    if not settings.secret("slack_bot_token"):
        return None
    general = web_client(settings)
    poster = web_client(settings, connection_retries=False)
    return general, poster


def _rearm(store: Store, member: str, delay: float) -> None:
    """Make the timer due again soon (replacing our lease), so the card catches up."""
    store.redis.zadd(store.keys.timers, {member: now_ms() + int(delay * 1000)})


def _audit_failure(store: Store, req: Request, error: str) -> None:
    store.redis.xadd(
        store.keys.events, {"type": "undeliverable", "id": req.id, "action": req.action, "error": error}
    )


def _find_posted(client: WebClient, channel: str, req: Request) -> tuple[str, bool] | None:
    """(ts, is a digest) of a card showing this request, if a lost post did create one."""
    resp = client.conversations_history(
        channel=channel, oldest=str(req.created_at - 1), include_all_metadata=True, limit=200
    )
    for msg in resp.get("messages", []):
        meta = msg.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") == METADATA_TYPE and payload.get("id") == req.id:
            return msg["ts"], False
        if meta.get("event_type") == DIGEST_TYPE and req.id in (payload.get("ids") or []):
            return msg["ts"], True
    return None


def _digest_key(store: Store, channel: str, ts: str) -> str:
    return f"{store.keys.prefix}:digest:{channel}:{ts}"


def _unposted_key(store: Store, channel: str) -> str:
    return f"{store.keys.prefix}:unposted:{channel}"


def _mark_digest(store: Store, shown: list[Request], channel: str, ts: str) -> None:
    """Record that the digest at `ts` shows these requests (as of their versions)."""
    key = _digest_key(store, channel, ts)
    pipe = store.redis.pipeline(transaction=True)
    for req in shown:
        pipe.lrem(key, 0, req.id)
        pipe.rpush(key, req.id)
        pipe.hset(store.keys.req(req.id), mapping={"card_channel": channel, "card_ts": ts, "digest": key})
        pipe.delete(_claim_key(store, req.id))
    pipe.expire(key, store.retention)
    pipe.zrem(_unposted_key(store, channel), *[r.id for r in shown])
    pipe.execute()
    store.settle_sync(shown)


def _claim_key(store: Store, request_id: str) -> str:
    return f"{store.keys.req(request_id)}:posting"


def _send(
    store: Store,
    poster: WebClient,
    claimed: list[Request],
    channel: str,
    metadata: dict,
    render_: Callable[[], tuple[str, list[dict]]],
) -> SlackResponse:
    """Post a message showing the claimed requests; on failure, leave their claims right.

    Slack answered with an error: no message was made, so the claims go. The connection
    dropped: the message may exist, so the claims turn "uncertain" and the next attempt
    looks in the channel before it posts again.
    """
    text, blocks = render_()
    try:
        return poster.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False,
            metadata=metadata,
        )
    except SlackApiError:
        store.redis.delete(*[_claim_key(store, r.id) for r in claimed])
        raise
    except OSError:
        for req in claimed:
            store.redis.set(_claim_key(store, req.id), "uncertain", ex=POST_CLAIM_TTL * 10)
        raise


def _post_digest(store: Store, poster: WebClient, reqs: list[Request], channel: str) -> list[str]:
    """Post one digest card for a channel's backlog; returns the ids it shows."""
    claimed = [
        r for r in reqs if store.redis.set(_claim_key(store, r.id), "digest", nx=True, ex=POST_CLAIM_TTL)
    ]
    if not claimed:
        return []
    ids = [r.id for r in claimed]
    meta = {"event_type": DIGEST_TYPE, "event_payload": {"ids": ids}}
    resp = _send(store, poster, claimed, channel, meta, lambda: build_digest(claimed))
    _mark_digest(store, claimed, resp["channel"], resp["ts"])
    return ids


def _deliver(
    store: Store, poster: WebClient, general: WebClient, req: Request, channel: str, member: str
) -> str:
    """Post a request's first card, paced per channel; a large backlog goes out as one digest."""
    pace = f"{store.keys.prefix}:pace:{channel}"
    unposted = _unposted_key(store, channel)
    if not store.redis.set(pace, "1", nx=True, px=PACE_MS):
        store.redis.zadd(unposted, {req.id: int(req.created_at * 1000)}, nx=True)
        _rearm(store, member, max(store.redis.pttl(pace), 20) / 1000)
        return "paced"
    backlog = [_s(i) for i in store.redis.zrange(unposted, 0, DIGEST_CAPACITY - 1)]
    waiting = store.get_many([i for i in backlog if i != req.id])
    others = [r for r in waiting if r.card_ts is None and not r.final]
    gone = set(backlog) - {r.id for r in others} - {req.id}
    if gone:  # posted meanwhile, decided before anyone saw them, or aged out
        store.redis.zrem(unposted, *gone)
    if len(others) + 1 < DIGEST_MIN:
        if not _post(store, poster, general, req, channel):
            _rearm(store, member, RETRY_SOON)
            return "another job is posting"
        store.redis.zrem(unposted, req.id)
        return "posted"
    shown = _post_digest(store, poster, [req, *others][:DIGEST_CAPACITY], channel)
    if req.id not in shown:
        _rearm(store, member, RETRY_SOON)
        return "another job is posting"
    return f"digest of {len(shown)}"


def _post(store: Store, poster: WebClient, general: WebClient, req: Request, channel: str) -> bool:
    """Post the card once; False when another job holds the claim (try again soon)."""
    claim = _claim_key(store, req.id)
    if store.redis.get(claim) == b"uncertain":
        found = _find_posted(general, channel, req)
        store.redis.delete(claim)
        if found:
            ts, is_digest = found
            if is_digest:
                _mark_digest(store, [req], channel, ts)
            else:
                store.set_card(req.id, channel, ts)
            return True
    if not store.redis.set(claim, "card", nx=True, ex=POST_CLAIM_TTL):
        return False
    meta = {"event_type": METADATA_TYPE, "event_payload": {"id": req.id}}
    attrs = {"hitl.request_id": req.id, "hitl.action": req.action, "slack.channel": channel}
    with tracing.span(SpanName.CARD_POST, req.trace, attrs):
        resp = _send(store, poster, [req], channel, meta, lambda: render(store, req))
    store.set_card(req.id, resp["channel"], resp["ts"])
    store.redis.delete(claim)
    return True


def sync_card(prefix: str, request_id: str, lease: int) -> str:
    """Make the request's card match Redis (post it the first time)."""
    store = store_for(prefix)
    member = timer_member(request_id, "sync")
    try:
        req = store.get(request_id)
    except RequestNotFound:
        store.ack_timer(member, lease)
        return "gone"
    if req.batch:  # a plan's step: its plan's card shows it
        store.redis.zadd(store.keys.timers, {timer_member(req.batch, "sync"): now_ms()})
        store.ack_timer(member, lease)
        return "plan card"
    clients = _clients()
    if req.mode is Mode.AUTO or clients is None:
        store.ack_timer(member, lease)
        return "no card" if clients else "slack not configured"
    general, poster = clients
    channel = req.card_channel or req.channel or _settings().default_channel
    if not channel:
        _audit_failure(store, req, "no channel: set channel=, a policy channel or HITL_DEFAULT_CHANNEL")
        store.ack_timer(member, lease)
        return "no channel"
    try:
        for _ in range(3):  # follow changes made while we talked to Slack
            if req.card_ts is None:
                outcome = _deliver(store, poster, general, req, channel, member)
                if outcome in ("paced", "another job is posting"):
                    return outcome
            else:
                text, blocks = render(store, req)
                general.chat_update(channel=req.card_channel, ts=req.card_ts, text=text, blocks=blocks)
                for mirror_channel, mirror_ts in req.mirrors:
                    general.chat_update(channel=mirror_channel, ts=mirror_ts, text=text, blocks=blocks)
            fresh = store.get(request_id)
            if fresh.version == req.version:
                break
            req = fresh
    except SlackApiError as exc:
        error = str(exc.response.get("error"))
        if error in PERMANENT_ERRORS:
            log.error("card for %s not delivered: %s", request_id, error)
            _audit_failure(store, req, error)
            store.ack_timer(member, lease)
            return f"failed: {error}"
        headers = exc.response.headers or {}
        retry_after = float(headers.get("Retry-After", RETRY_SOON))
        _rearm(store, member, max(retry_after, RETRY_SOON))
        return f"will retry: {error}"
    except OSError as exc:
        _rearm(store, member, RETRY_SOON)
        return f"will retry: {exc}"
    store.ack_timer(member, lease)
    return "synced"


def sync_cards(prefix: str, items: list[tuple[str, int]]) -> dict[str, str]:
    """Sync a batch of cards [(request_id, lease)]; one failing card does not stop the rest."""
    outcome: dict[str, str] = {}
    for request_id, lease in items:
        try:
            with log_context(request_id=request_id):
                outcome[request_id] = sync_card(prefix, request_id, lease)
        except Exception as exc:  # the lease brings it back; the others still get synced
            log.exception("syncing the card of %s failed", request_id)
            outcome[request_id] = f"error: {exc}"
    return outcome


def render(store: Store, req: Request) -> tuple[str, list[dict]]:
    """What the request's message shows: its digest, its plan, or its own card."""
    if req.digest:
        return build_digest(store.get_many([_s(i) for i in store.redis.lrange(req.digest, 0, -1)]))
    if req.items:
        return build_plan(req, store.get_many(req.items))
    return build_card(req)



def escalation_ping(prefix: str, request_id: str, step: int) -> str:
    """Remind the approvers in the card's thread; optionally repost the card elsewhere."""
    store = store_for(prefix)
    clients = _clients()
    if clients is None:
        return "slack not configured"
    general, poster = clients
    req = store.get(request_id)
    if req.status is not Status.PENDING:
        return "moot"
    rung = escalation_step(req, step)
    notify = (rung.notify if rung and rung.notify else req.approvers) or []
    text = reminder_text(req, step, list(notify))
    channel = req.card_channel or req.channel
    if channel:
        general.chat_postMessage(channel=channel, thread_ts=req.card_ts, text=text)
    if rung and rung.channel:
        card_text, blocks = build_card(req)
        resp = poster.chat_postMessage(
            channel=rung.channel, text=f"Escalated: {card_text}", blocks=blocks,
            unfurl_links=False, unfurl_media=False,
        )
        mirrors = [*req.mirrors, (resp["channel"], resp["ts"])]
        store.redis.hset(store.keys.req(request_id), "mirrors", json.dumps(mirrors))
    return f"pinged step {step}"
