"""Slack card delivery: make each request's messages match Redis, and post reminders.

The delivery loop (`workers.delivery`) hands `CardSync.sync_channel` every due card sync
of one channel at once. That batch is rendered once per message: a first card (or, for a
backlog, one digest card) is posted at Slack's pace of about one message per second per
channel, and each message whose requests changed gets one `chat.update` showing their
latest state, paced workspace-wide (chat.update is ~50 calls/min). Nothing here sleeps:
whatever must wait is handed back with the time to try again.

No request gets two cards: a posting claim is written in Redis BEFORE the post. If the
answer is lost (the connection dropped, or the worker was killed while Slack held the
call), the claim stays; once stale, the next attempt looks for the card in the channel's
history by its message metadata before it posts again. Any copy found is kept in step.
Slack allows apps outside the Marketplace one `conversations.history` call a minute per
channel, of at most 15 messages: those reads are paced through Redis across every worker
(`Placement.take_read`), and a window holding more is paged with its cursor, a page a
minute (`{prefix}:recovery:{channel}`). Until a read has covered the whole window the
request stays claimed as uncertain: it is retried at the read's pace, never posted.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from bot.slack.blocks.cards import DIGEST_CAPACITY, build_card, build_digest, build_plan, reminder_text
from bot.slack.client import CALL_TIMEOUT, SERVER_ERROR_RETRIES, counter
from hitl import tracing
from hitl.errors import RequestNotFound
from hitl.logs import log_context
from hitl.models import Placed, Request
from hitl.placement import Placement, PostClaim, Shown
from hitl.settings import Settings, load_settings
from hitl.status import Mode, Status
from hitl.store import Store, escalation_step, now_ms
from hitl.tracing import SpanName

log = logging.getLogger(__name__)

# Metadata event type stamped on every card, to find a card whose post response was lost.
METADATA_TYPE = "hitl_request"
# The same for a digest card, whose payload lists its requests' ids.
DIGEST_TYPE = "hitl_digest"
# Milliseconds between two new messages in one channel: Slack allows about one message per
# second per channel, so a burst is paced here instead of bouncing off 429s (with a margin
# for calls that reach Slack a little late or early under load).
PACE_MS = 1100
# A channel's backlog goes out as one digest card once this many requests wait unposted.
DIGEST_MIN = 10
# ...or once the oldest of at least DIGEST_SOON_MIN has waited this long (ms): under a
# sustained backlog, digests take over sooner rather than later.
DIGEST_SOON_MS = 3000
DIGEST_SOON_MIN = 3
# chat.update is a per-workspace tier (about 50 calls a minute): its calls are spaced
# `Settings.slack_update_interval_ms` apart across every worker, with this burst allowed.
UPDATE_BURST = 3
# A posting claim older than this (ms) may hide a card whose answer was lost: longer than
# one post can take, since posts are not retried inside the client.
STALE_CLAIM_MS = (CALL_TIMEOUT + 5) * 1000
# Seconds a posting claim lives at most.
CLAIM_TTL = 3600
# When a card cannot be synced now, try again after this many ms.
RETRY_SOON_MS = 2000
# Tries of a reminder post that Slack answers 429.
RATE_LIMIT_TRIES = 5
# Messages per conversations.history call: Slack's cap for apps outside the Marketplace.
HISTORY_LIMIT = 15
# Seconds before a request's creation that its card's ts may show (clock skew with Slack).
CLOCK_MARGIN_S = 5
# Seconds a history scan in progress is kept between its pages.
SCAN_TTL = 3600
# Slack errors that no retry will fix: the card is given up and the reason audited.
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_blocks", "invalid_blocks_format",
     "msg_too_long", "no_text", "invalid_auth", "not_authed", "account_inactive", "token_revoked",
     "missing_scope", "restricted_action"}
)


class SyncOutcome(StrEnum):
    """What one card sync did; everything but RETRY is done with."""

    SYNCED = "synced"  # the request's messages show it as it is
    POSTED = "posted"  # its first card went out
    DIGESTED = "digested"  # it went out on a digest card
    FOUND = "found"  # a card whose post answer was lost was found and recorded
    RETRY = "retry"  # paced, rate-limited, another worker posting, Slack failing: later
    FAILED = "failed"  # Slack refused for good; audited as undeliverable
    NO_CARD = "no card"  # auto mode, no Slack configured, or a plan step (its plan shows it)
    GONE = "gone"  # the request aged out


@dataclass(frozen=True, slots=True)
class Result:
    """How one request's sync ended; a RETRY says when to run it again."""

    outcome: SyncOutcome
    retry_at_ms: int = 0

    @property
    def done(self) -> bool:
        return self.outcome is not SyncOutcome.RETRY


# One step of a channel's sync, over some of its requests.
Step = Callable[[list[Placed]], dict[str, Result]]


def _retry(after_ms: int) -> Result:
    return Result(SyncOutcome.RETRY, now_ms() + max(after_ms, 50))


def _wants_digest(candidates: list[Request]) -> bool:
    """Whether a channel's waiting requests (oldest first) go out as one digest card."""
    oldest_wait = now_ms() - int(candidates[0].created_at * 1000)
    soon = len(candidates) >= DIGEST_SOON_MIN and oldest_wait >= DIGEST_SOON_MS
    return len(candidates) >= DIGEST_MIN or soon


def _posted_result(req: Request, shown: dict[str, SyncOutcome]) -> Result:
    """How a new request's sync ends after its channel's post showed `shown`."""
    if req.id not in shown:
        return _retry(PACE_MS)  # the post went to older requests: next turn
    if _mirror_channels(req):
        return _retry(0)  # its copies in the mirror channels come next
    return Result(shown[req.id])


@lru_cache(maxsize=1)
def _settings() -> Settings:
    return load_settings()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _retry_after_ms(exc: SlackApiError) -> int:
    headers = exc.response.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    return int(float(value) * 1000) if value else RETRY_SOON_MS


def delivery_clients(settings: Settings) -> tuple[WebClient, WebClient] | None:
    """(client for updates and history, client for posts), or None without a Slack token.

    Neither retries a 429 inside the call (the delivery loop reschedules instead of
    holding a thread), and posts are never retried at all: a failed post may have
    created a card, and blindly posting again is how duplicates happen.
    """
    token = settings.secret("slack_bot_token")
    if not token:
        return None
    # Counted (HITL_METRICS); no rate-limit retry inside the client: a 429 holds the channel
    # or method for every worker instead of sleeping in one thread.
    general = WebClient(
        token=token, base_url=settings.slack_api_url, timeout=CALL_TIMEOUT,
        retry_handlers=[*counter(settings), ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES)],
    )
    poster = WebClient(
        token=token, base_url=settings.slack_api_url, timeout=CALL_TIMEOUT, retry_handlers=counter(settings)
    )
    return general, poster


def _logging_for(req: Request) -> AbstractContextManager[None]:
    """Log lines written while working on one request carry its id, action and trace."""
    return log_context(request_id=req.id, action=req.action, trace_id=tracing.stored_trace_id(req.trace))


def _mirror_channels(req: Request) -> list[str]:
    """Channels that get a copy of the card besides its own (the `mirror_channels` field)."""
    return [c for c in (getattr(req, "mirror_channels", None) or []) if c]


class CardSync:
    """Brings one channel's messages in line with Redis, for a batch of due syncs."""

    def __init__(self, store: Store, placement: Placement, settings: Settings) -> None:
        self.store = store
        self.placement = placement
        self.settings = settings
        self.clients = delivery_clients(settings)
        self.owner = _owner()

    def lane(self, placed: Placed) -> str | None:
        """The channel whose pace a request's card follows."""
        return placed.card.channel or placed.req.channel or self.settings.default_channel

    # -- the batch -----------------------------------------------------------------------

    def sync_channel(self, request_ids: Sequence[str]) -> dict[str, Result]:
        """Sync a batch of requests whose cards live (or will) in one channel."""
        placed = self.store.get_many_placed(list(request_ids))
        found = {p.req.id for p in placed}
        results = {rid: Result(SyncOutcome.GONE) for rid in request_ids if rid not in found}
        live: list[Placed] = []
        for p in placed:
            settled = self._settled_without_slack(p)
            if settled is None:
                live.append(p)
            else:
                results[p.req.id] = settled
        if live:
            results.update(self._sync_live(live))
        return results

    def _settled_without_slack(self, placed: Placed) -> Result | None:
        """How a request's sync ends when it has no card of its own to keep; None when it has."""
        req = placed.req
        if req.batch:  # a plan's step: its plan's card shows it
            self.placement.rearm_sync(req.batch, now_ms())
            return Result(SyncOutcome.NO_CARD)
        if req.mode is Mode.AUTO or self.clients is None:
            return Result(SyncOutcome.NO_CARD)
        if self.lane(placed) is None:
            self.placement.undeliverable(
                req.id, req.action, "no channel: set channel=, a policy channel or HITL_DEFAULT_CHANNEL"
            )
            return Result(SyncOutcome.FAILED)
        return None

    def _sync_live(self, live: list[Placed]) -> dict[str, Result]:
        """First cards, then updates of changed messages, then missing mirror copies.

        First posts go before updates: a new request waiting for its first card matters
        more than redrawing one already seen (an expired card can wait a moment), and the
        updates' Slack calls would otherwise hold the channel's thread before its post."""
        new = [p for p in live if p.card.ts is None]
        changed, current = self._changed([p for p in live if p.card.ts is not None])
        results = {p.req.id: Result(SyncOutcome.SYNCED) for p in current}
        if new:
            results.update(self._guard(new, self._post_new))
        if changed:
            results.update(self._guard(changed, self._update))
        results.update(self._sync_mirrors(live))
        return results

    def _changed(self, carded: list[Placed]) -> tuple[list[Placed], list[Placed]]:
        """(requests whose message no longer shows them as they are, those it does)."""
        shown = self.placement.shown([p.req.id for p in carded]) if carded else {}
        changed: list[Placed] = []
        current: list[Placed] = []
        for p in carded:
            # a plan's card shows its steps, whose changes do not touch the plan's version
            stale = bool(p.req.items) or shown.get(p.req.id) != Shown.of(p.req).drawn
            (changed if stale else current).append(p)
        return changed, current

    def _sync_mirrors(self, live: list[Placed]) -> dict[str, Result]:
        """Post the copies still missing in mirror channels of requests already on a card."""
        results: dict[str, Result] = {}
        for p in live:
            if not p.card.ts or not set(_mirror_channels(p.req)) - {c for c, _ in p.card.mirrors}:
                continue
            mirror = self._guard([p], self._post_mirrors)[p.req.id]
            if not mirror.done:
                results[p.req.id] = mirror
        return results

    def _guard(self, placed: list[Placed], step: Step) -> dict[str, Result]:
        """Run a step, turning Slack's answers into results for every request in it."""
        reqs = [p.req for p in placed]
        try:
            return step(placed)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error not in PERMANENT_ERRORS:
                wait = _retry_after_ms(exc) if exc.response.status_code == 429 else RETRY_SOON_MS
                return {r.id: _retry(wait) for r in reqs}
            for req in reqs:
                with _logging_for(req):
                    log.error("card for %s not delivered: %s", req.id, error)
                self.placement.undeliverable(req.id, req.action, error)
            return {r.id: Result(SyncOutcome.FAILED) for r in reqs}
        except OSError as exc:  # Slack unreachable, or the connection dropped
            log.warning("Slack call failed (%s); will retry", exc)
            return {r.id: _retry(RETRY_SOON_MS) for r in reqs}

    # -- updates ---------------------------------------------------------------------------

    def _update(self, changed: list[Placed]) -> dict[str, Result]:
        """One chat.update per message (card or digest), showing the latest state.

        Requests on one message share its update (a digest whose members expired is
        redrawn once). Once the workspace's chat.update budget is spent, the messages left
        queue behind it one slot apart instead of all coming back at the same moment to find
        it spent again: under expiry churn that stampede is most of the delivery loop's work."""
        results: dict[str, Result] = {}
        messages: dict[tuple[str, str], list[Request]] = {}
        for p in changed:
            messages.setdefault((p.card.channel or "", p.card.ts or ""), []).append(p.req)
        interval = self.settings.slack_update_interval_ms
        queued = 0
        wait = 0
        for (channel, ts), reqs in messages.items():
            if not wait:
                wait = self.placement.take_slot("chat.update", interval, UPDATE_BURST)
            if wait:
                results.update({r.id: _retry(wait + queued * interval) for r in reqs})
                queued += 1
                continue
            self._redraw(channel, ts, reqs[0].id)
            for req in reqs:  # a change made while we drew re-armed its sync: it runs again
                results[req.id] = Result(SyncOutcome.SYNCED)
        return results

    def _redraw(self, channel: str, ts: str, request_id: str) -> None:
        """Update one message (and its mirror copies) to what its requests are now."""
        fresh = self.store.get_placed(request_id)
        drawn, text, blocks = self.render(fresh)
        with nullcontext() if fresh.card.digest else _logging_for(fresh.req):  # a digest shows many
            self._call_update(channel, ts, text, blocks)
            for mirror_channel, mirror_ts in fresh.card.mirrors:
                self._call_update(mirror_channel, mirror_ts, text, blocks)
        self.placement.mark_shown(drawn)

    def _call_update(self, channel: str, ts: str, text: str, blocks: list[dict]) -> None:
        try:
            self.clients[0].chat_update(channel=channel, ts=ts, text=text, blocks=blocks)  # type: ignore[index]
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                self.placement.cool_down("chat.update", _retry_after_ms(exc))
            elif exc.response.get("error") == "message_not_found":
                log.warning("message %s in %s is gone; not updating it", ts, channel)
                return
            raise

    # -- first cards -----------------------------------------------------------------------

    def _post_new(self, unposted: list[Placed]) -> dict[str, Result]:
        """Post the first card of the oldest waiting request, or one digest for a backlog."""
        channel = self.lane(unposted[0]) or ""
        new = [p.req for p in unposted]
        wait = self.placement.take_pace(channel, PACE_MS)
        if wait:
            self._queue_unposted(channel, new)
            return {r.id: _retry(wait) for r in new}
        candidates = self._candidates(channel, new)
        if _wants_digest(candidates):
            shown, waiting = self._post_digest(channel, candidates)
        else:
            shown, waiting = self._post_card(channel, candidates)
        self._queue_unposted(channel, [r for r in new if r.id not in shown])
        return {r.id: _retry(waiting[r.id]) if r.id in waiting else _posted_result(r, shown) for r in new}

    def _queue_unposted(self, channel: str, reqs: list[Request]) -> None:
        """Put requests on the channel's backlog (oldest first), for the next post to take."""
        self.placement.queue_unposted(channel, {r.id: int(r.created_at * 1000) for r in reqs})

    def _candidates(self, channel: str, new: list[Request]) -> list[Request]:
        """These requests and the channel's backlog still waiting for a card, oldest first."""
        # twice a digest's worth: the oldest may be on another worker's post still in flight
        backlog_ids = [rid for rid, _ in self.placement.unposted(channel, 2 * DIGEST_CAPACITY)]
        ours = {r.id for r in new}
        waiting = self.store.get_many_placed([i for i in backlog_ids if i not in ours])
        # a backlog entry already on a card (or a plan step, shown on its plan's) leaves the
        # backlog; one decided before anyone saw it still gets shown, with its outcome
        others = [p.req for p in waiting if p.card.ts is None and not p.req.batch]
        gone = set(backlog_ids) - {r.id for r in others} - ours
        self.placement.drop_unposted(channel, list(gone))
        return sorted([*new, *others], key=lambda r: r.created_at)

    def _claim(
        self, reqs: list[Request], channel: str, limit: int = 1
    ) -> tuple[list[Request], dict[str, SyncOutcome], dict[str, int]]:
        """Claim the right to post these requests, oldest first, until `limit` are claimed:
        (claimed, {id: outcome of those found}, {id: ms to wait for those still uncertain}).
        Those another worker is posting are skipped, and so are those whose earlier post is
        uncertain and not yet settled by a history read, so a digest is filled with the next
        ones instead of going out short or not at all, and a card is not held up by them."""
        claimed: list[Request] = []
        stale: list[Request] = []
        for req in reqs:
            if len(claimed) >= limit:
                break
            claim = self.placement.claim_post(
                req.id, self.owner, now_ms(), stale_ms=STALE_CLAIM_MS, ttl=CLAIM_TTL
            )
            if claim is PostClaim.MINE:
                claimed.append(req)
            elif claim is PostClaim.STALE:
                stale.append(req)
        found: dict[str, SyncOutcome] = {}
        waiting: dict[str, int] = {}
        if not stale:
            return claimed, found, waiting
        try:
            posted, wait = self._recover(channel, stale)
        except BaseException:
            self.placement.mark_uncertain([r.id for r in stale], CLAIM_TTL)
            raise
        for req in stale:
            places = posted.get(req.id)
            if places is None:  # not settled yet: stays uncertain, tried again at the read's pace
                self.placement.mark_uncertain([req.id], CLAIM_TTL)
                waiting[req.id] = wait
            elif places:
                found[req.id] = SyncOutcome.FOUND
            elif len(claimed) < limit:
                claimed.append(req)  # proved never made: ours to post (our claim holds)
            else:
                self.placement.release_posts([req.id])  # proved never made: the next post takes it
        return claimed, found, waiting

    def _recover(self, channel: str, stale: list[Request]) -> tuple[dict[str, list[tuple[str, bool]]], int]:
        """Read one page of the channel's history, if its read slot is free, for cards that
        uncertain posts may have made: ({id: places, [] when proved absent} for the requests
        settled, ms until the next read). A scan in progress (another worker's, or ours
        from a minute ago) is continued first; requests it does not cover wait for the next
        one. When a scan ends, every request it covered is settled here: found cards are
        recorded, and claims proved empty are released."""
        wait = self.placement.take_read(channel, self.settings.slack_history_interval_ms)
        if wait:
            return {}, wait
        interval = self.settings.slack_history_interval_ms
        scan = self.placement.recovery_scan(channel)
        if scan is None:
            oldest = min(r.created_at for r in stale) - CLOCK_MARGIN_S
            scan = {"ids": [r.id for r in stale], "oldest": f"{oldest:.6f}",
                    "latest": f"{time.time() + CLOCK_MARGIN_S:.6f}", "cursor": "", "found": {}}
        wanted = set(scan["ids"])
        try:
            resp = self.clients[0].conversations_history(  # type: ignore[index]
                channel=channel, oldest=scan["oldest"], latest=scan["latest"], inclusive=True,
                include_all_metadata=True, limit=HISTORY_LIMIT, cursor=scan["cursor"] or None,
            )
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                after = max(_retry_after_ms(exc), interval)
                self.placement.hold_read(channel, after)
                self.placement.save_recovery_scan(channel, scan, SCAN_TTL)
                return {}, after
            raise
        for rid, places in cards_in(resp.get("messages", []), wanted).items():
            scan["found"].setdefault(rid, []).extend([list(p) for p in places])
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if cursor:  # more of the window to read: the next page a minute from now
            scan["cursor"] = cursor
            self.placement.save_recovery_scan(channel, scan, SCAN_TTL)
            return {}, interval
        self.placement.save_recovery_scan(channel, None, SCAN_TTL)
        ours = {r.id for r in stale}
        settled: dict[str, list[tuple[str, bool]]] = {}
        for rid in scan["ids"]:
            seen = ((str(ts), bool(d)) for ts, d in scan["found"].get(rid, []))
            places = sorted(seen, key=lambda p: float(p[0]))
            if places:
                self._record_found(rid, channel, places)
            elif rid not in ours:
                self.placement.release_lost([rid])
            settled[rid] = places
        return {rid: places for rid, places in settled.items() if rid in ours}, 0

    def _record_found(self, request_id: str, channel: str, places: list[tuple[str, bool]]) -> None:
        """A card whose answer was lost exists: record it (shown as of version 0, so it is
        redrawn), and keep any second copy in step as a mirror."""
        (ts, is_digest), *extra = places
        if is_digest:
            self.placement.record_digest(channel, ts, [Shown(request_id, 0, "")])
        else:
            self.placement.record_card(request_id, channel, ts, Shown(request_id, 0, ""))
        for extra_ts, _ in extra:
            self.placement.add_mirror(request_id, channel, extra_ts)
        self.placement.rearm_sync(request_id, now_ms())

    def _send(
        self, claimed: list[Request], channel: str, metadata: dict, text: str, blocks: list[dict]
    ) -> dict:
        """Post, leaving the claims right: refused means no message, a lost answer means maybe."""
        _general, poster = self.clients  # type: ignore[misc]
        try:
            resp = poster.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False,
                metadata=metadata,
            )
        except SlackApiError as exc:
            self.placement.release_posts([r.id for r in claimed])
            if exc.response.status_code == 429:
                self.placement.hold_pace(channel, _retry_after_ms(exc))
            raise
        except OSError:
            self.placement.mark_uncertain([r.id for r in claimed], CLAIM_TTL)
            raise
        return resp.data if isinstance(resp.data, dict) else {}

    def _post_card(
        self, channel: str, candidates: list[Request]
    ) -> tuple[dict[str, SyncOutcome], dict[str, int]]:
        """The first card of the oldest candidate that may be posted (one whose earlier post
        is uncertain waits for its history read instead)."""
        claimed, found, waiting = self._claim(candidates, channel)
        if not claimed:
            return found, waiting
        req = claimed[0]
        fresh = self.store.get_placed(req.id)
        drawn, text, blocks = self.render(fresh)
        meta = {"event_type": METADATA_TYPE, "event_payload": {"id": req.id}}
        attrs = {"hitl.request_id": req.id, "hitl.action": req.action, "slack.channel": channel}
        with tracing.span(SpanName.CARD_POST, fresh.req.trace, attrs), _logging_for(fresh.req):
            resp = self._send(claimed, channel, meta, text, blocks)
        self.placement.record_card(req.id, resp["channel"], resp["ts"], drawn[0])
        return {**found, req.id: SyncOutcome.POSTED}, waiting

    def _post_digest(
        self, channel: str, reqs: list[Request]
    ) -> tuple[dict[str, SyncOutcome], dict[str, int]]:
        claimed, found, waiting = self._claim(reqs, channel, DIGEST_CAPACITY)
        if not claimed:
            return found, waiting
        fresh = self.store.get_many([r.id for r in claimed])
        text, blocks = build_digest(fresh)
        meta = {"event_type": DIGEST_TYPE, "event_payload": {"ids": [r.id for r in fresh]}}
        resp = self._send(claimed, channel, meta, text, blocks)
        self.placement.record_digest(resp["channel"], resp["ts"], [Shown.of(r) for r in fresh])
        return {**found, **{r.id: SyncOutcome.DIGESTED for r in fresh}}, waiting

    def _post_mirrors(self, placed: list[Placed]) -> dict[str, Result]:
        """Copies of the card in the request's mirror channels, kept in step like escalations."""
        req = placed[0].req
        have = {c for c, _ in placed[0].card.mirrors}
        for channel in _mirror_channels(req):
            if channel in have:
                continue
            wait = self.placement.take_pace(channel, PACE_MS)
            if wait:
                return {req.id: _retry(wait)}
            _drawn, text, blocks = self.render(self.store.get_placed(req.id))
            try:
                with _logging_for(req):
                    resp = self.clients[1].chat_postMessage(  # type: ignore[index]
                        channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False,
                    )
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    self.placement.hold_pace(channel, _retry_after_ms(exc))
                raise
            self.placement.add_mirror(req.id, resp["channel"], resp["ts"])
        return {req.id: Result(SyncOutcome.SYNCED)}

    # -- drawing -----------------------------------------------------------------------------

    def render(self, placed: Placed) -> tuple[list[Shown], str, list[dict]]:
        """What the request's message shows (its card, or the digest it is listed on), and
        which request versions it draws."""
        req, card = placed.req, placed.card
        if card.digest:
            members = self.store.get_many(self.placement.digest_members(card.digest))
            text, blocks = build_digest(members)
            return [Shown.of(r) for r in members], text, blocks
        if req.items:
            text, blocks = build_plan(req, self.store.get_many(req.items))
            return [Shown.of(req)], text, blocks
        text, blocks = build_card(req)
        return [Shown.of(req)], text, blocks


def cards_in(messages: Sequence[dict], wanted: set[str]) -> dict[str, list[tuple[str, bool]]]:
    """Cards among these messages showing the wanted requests: {id: [(ts, is digest)]}."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for msg in messages:
        meta = msg.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") == METADATA_TYPE and payload.get("id") in wanted:
            found.setdefault(payload["id"], []).append((msg["ts"], False))
        elif meta.get("event_type") == DIGEST_TYPE:
            for rid in wanted.intersection(payload.get("ids") or []):
                found.setdefault(rid, []).append((msg["ts"], True))
    return found


def _paced_post(placement: Placement, client: WebClient, channel: str, **kwargs: Any) -> dict:
    """Post outside the delivery loop (a reminder, an escalation copy) at the channel's pace,
    waiting for it and for any Retry-After Slack asks for."""
    for _ in range(RATE_LIMIT_TRIES):
        wait = placement.take_pace(channel, PACE_MS)
        while wait:
            time.sleep(wait / 1000)
            wait = placement.take_pace(channel, PACE_MS)
        try:
            resp = client.chat_postMessage(channel=channel, **kwargs)
            return resp.data if isinstance(resp.data, dict) else {}
        except SlackApiError as exc:
            if exc.response.status_code != 429:
                raise
            placement.hold_pace(channel, _retry_after_ms(exc))
    raise RuntimeError(f"chat.postMessage to {channel} still rate-limited after {RATE_LIMIT_TRIES} tries")


def escalation_ping(store: Store, request_id: str, step: int) -> str:
    """Remind the approvers in the card's thread; optionally repost the card elsewhere.

    Run by the worker's `escalation_ping` job (`workers.timers`) once escalation step `step`
    is recorded; a request decided meanwhile is left alone ("moot")."""
    clients = delivery_clients(_settings())
    if clients is None:
        return "slack not configured"
    general, poster = clients
    placement = Placement(store.redis, store.keys, store.retention)
    try:
        placed = store.get_placed(request_id)
    except RequestNotFound:
        return "gone"
    req = placed.req
    if req.status is not Status.PENDING:
        return "moot"
    rung = escalation_step(req, step)
    notify = (rung.notify if rung and rung.notify else req.approvers) or []
    text = reminder_text(req, step, list(notify))
    channel = placed.card.channel or req.channel
    if channel:
        _paced_post(placement, general, channel, thread_ts=placed.card.ts, text=text)
    if rung and rung.channel:
        card_text, blocks = build_card(req)
        resp = _paced_post(
            placement, poster, rung.channel, text=f"Escalated: {card_text}", blocks=blocks,
            unfurl_links=False, unfurl_media=False,
        )
        placement.add_mirror(request_id, resp["channel"], resp["ts"])
        _catch_up(store, general, request_id, req.version, resp["channel"], resp["ts"])
    return f"pinged step {step}"


def _catch_up(store: Store, client: WebClient, request_id: str, drawn: int, channel: str, ts: str) -> None:
    """Redraw a copy posted outside the delivery loop if its request changed meanwhile.

    The copy was drawn before the post; a decision made while the post was in flight updated
    every message known then, and this one was not known yet. Once it is recorded
    (`add_mirror`), later changes reach it through the usual sync; this closes the gap before.
    """
    fresh = store.get_placed(request_id).req
    if fresh.version == drawn:
        return
    text, blocks = build_card(fresh)
    try:
        client.chat_update(channel=channel, ts=ts, text=f"Escalated: {text}", blocks=blocks)
    except SlackApiError as exc:
        log.warning("could not update the escalation copy %s in %s: %s", ts, channel,
                    exc.response.get("error"))
