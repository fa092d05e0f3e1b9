"""Grants in Slack: "Approve for 1 hour" on a card, and `/hitl grants` to see and end them.

The button opens a modal (time up to the policy's cap, how many uses, parameters to pin);
submitting it approves the request through the TRANSITION script like any approval (so
the approver rules hold: never the requester, only listed approvers) and then records the
grant (`hitl.grants.GrantStore.vote`): it goes live once the request's quorum chose to
grant. A line in the granting card's thread says what was granted and how to revoke it.
Requests a grant approves get their own card, which names the grant and who granted it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import cards, views
from bot.slack.blocks.text import code_inline, escape, people, slack_date
from bot.slack.deps import Deps, deps_of
from bot.slack.listeners.actions import open_modal, tell, unrecorded
from bot.slack.replies import NOT_RECORDED, refusal
from hitl import stats
from hitl.errors import HitlError
from hitl.grants import (
    DEFAULT_SECONDS,
    Grant,
    GrantStore,
    NotGrantable,
    Vote,
    VoteOutcome,
    check_choice,
    choices,
    pinnable,
)
from hitl.models import Request
from hitl.status import Verb

log = logging.getLogger(__name__)

VIEW_GRANT = "hitl_grant_modal"
ACTION_REVOKE = "hitl_grant_revoke"
INPUT_FOR = "grant_for"
INPUT_USES = "grant_uses"
INPUT_PINS = "grant_pins"
# Shown in `/hitl grants` at most.
LIST_LIMIT = 30


def grants_of(deps: Deps) -> GrantStore:
    return GrantStore(deps.store.redis, deps.store.keys, deps.store.retention)


def grant_modal(req: Request, *, channel: str | None, ts: str | None) -> dict[str, Any]:
    """Approve now, and the next requests like it for a while (see the module docstring)."""
    limits = req.grantable
    assert limits is not None  # the button is only on grantable cards; `_open` checks again
    options = [
        {"text": {"type": "plain_text", "text": label}, "value": f"{seconds:g}"}
        for seconds, label in choices(req)
    ]
    initial = next((o for o in options if o["value"] == f"{DEFAULT_SECONDS:g}"), options[-1])
    who = f"the agent key `{escape(req.via)}`" if req.via else "the same agent"
    asker = f" for {people([req.requested_by])}" if req.requested_by else ""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f"Approve this *{code_inline(req.action, 110)}* now, and approve at once the next "
            f"`{escape(req.action)}` requests from {who}{asker} in this channel, with the same approvers."
        )}},
        {"type": "input", "block_id": INPUT_FOR, "label": {"type": "plain_text", "text": "For"},
         "element": {"type": "static_select", "action_id": INPUT_FOR, "options": options,
                     "initial_option": initial}},
        {"type": "input", "block_id": INPUT_USES,
         "label": {"type": "plain_text", "text": f"At most this many requests (1 to {limits.max_uses})"},
         "element": {"type": "plain_text_input", "action_id": INPUT_USES,
                     "initial_value": str(limits.max_uses)}},
    ]
    values = pinnable(req)
    if values:
        pin_options = [
            {"text": {"type": "mrkdwn", "text": f"`{escape(name[:60])}` must stay "
                      f"`{escape(json.dumps(value, ensure_ascii=False)[:80])}`"}, "value": name[:150]}
            for name, value in list(values.items())[:10]
        ]
        blocks.append({
            "type": "input", "block_id": INPUT_PINS, "optional": True,
            "label": {"type": "plain_text", "text": "Only while these stay the same"},
            "element": {"type": "checkboxes", "action_id": INPUT_PINS, "options": pin_options},
        })
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        "Every request the grant approves gets a card saying so. `/hitl grants` lists grants; "
        "*Revoke* ends one at once. The kill switch suspends them all."
    )}]})
    return {
        "type": "modal", "callback_id": VIEW_GRANT,
        "title": {"type": "plain_text", "text": "Approve for a while"},
        "submit": {"type": "plain_text", "text": "Approve and grant"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": views.private_metadata(req, channel, ts), "blocks": blocks,
    }


def _state(view: dict[str, Any], block: str) -> dict[str, Any]:
    return ((view.get("state") or {}).get("values") or {}).get(block, {}).get(block) or {}


def _choice(view: dict[str, Any]) -> tuple[float, int, list[str]]:
    """(seconds, uses, pins) from the submitted modal; ValueError naming the input."""
    selected = _state(view, INPUT_FOR).get("selected_option") or {}
    try:
        seconds = float(selected.get("value") or "")
    except ValueError:
        raise ValueError(f"{INPUT_FOR}:choose how long") from None
    text = (_state(view, INPUT_USES).get("value") or "").strip()
    if not text.isdigit():
        raise ValueError(f"{INPUT_USES}:a whole number of requests, e.g. 10")
    pins = [o["value"] for o in _state(view, INPUT_PINS).get("selected_options") or []]
    return seconds, int(text), pins


def _announce(deps: Deps, req: Request, vote: Vote, user: str, channel: str | None, ts: str | None) -> None:
    """The line in the granting card's thread: nothing a grant does happens unseen."""
    if not channel or not ts:
        return
    if vote.outcome is VoteOutcome.CREATED and vote.until is not None:
        text = (
            f"🔓 {people([user])} granted `{escape(req.action)}` for {vote.uses} more requests like this one "
            f"until {slack_date(vote.until)} (grant `{vote.grant_id}`). "
            f"`/hitl grants revoke {vote.grant_id}` ends it."
        )
    elif vote.outcome is VoteOutcome.VOTED:
        text = (
            f"🔓 {people([user])} chose to grant `{escape(req.action)}` "
            f"({vote.votes} of {vote.quorum} needed)."
        )
    else:
        return
    try:
        deps.client.chat_postMessage(channel=channel, thread_ts=ts, text=text)
    except SlackApiError as exc:
        log.warning("grant line not posted in %s: %s", channel, exc.response.get("error"))


def _submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: dict) -> None:
    deps = deps_of(context)
    user = body["user"]["id"]
    try:
        meta = views.parse_private_metadata(view.get("private_metadata") or "")
        seconds, uses, pins = _choice(view)
    except ValueError as exc:
        block, _, message = str(exc).rpartition(":")
        ack(response_action="errors", errors={block or INPUT_FOR: message})
        return
    grants = grants_of(deps)
    try:
        placed = deps.store.get_placed(meta["id"])
        req = placed.req
        hidden = deps.viewer(user).refusal(placed)
        if hidden:
            ack(response_action="errors", errors={INPUT_FOR: hidden})
            return
        check_choice(req, seconds, uses, pins)  # before approving: a bad choice approves nothing
        deps.approvals.decide(req.id, Verb.APPROVE, by=user, version=meta.get("v"),
                              groups=deps.groups_for(user, req))
        vote = grants.vote(deps.store.get(req.id), user, seconds=seconds, uses=uses, pins=pins)
    except NotGrantable as exc:
        ack(response_action="errors", errors={INPUT_USES if "requests" in str(exc) else INPUT_FOR: str(exc)})
        return
    except HitlError as exc:
        ack(response_action="errors", errors={INPUT_FOR: refusal(exc)})
        return
    except redis.RedisError as exc:
        log.warning("grant by %s not recorded, Redis unreachable: %s", user, exc)
        ack(response_action="errors", errors={INPUT_FOR: NOT_RECORDED})
        return
    ack()
    _announce(deps, req, vote, user, meta.get("c"), meta.get("ts"))


@unrecorded
def _open(ack: Ack, body: dict[str, Any], context: dict) -> None:
    ack()
    deps = deps_of(context)
    try:
        req = deps.store.get(body["actions"][0]["value"])
    except HitlError as exc:
        tell(deps, body, refusal(exc))
        return
    if not cards.offers_grant(req):
        tell(deps, body, f"`{escape(req.action)}` cannot be granted now: approve or reject this one.")
        return
    open_modal(deps, body, grant_modal)


def may_revoke(deps: Deps, user: str, grant: Grant) -> bool:
    """Admins end any grant; the people who granted it end theirs."""
    return user in deps.settings.admins or user in grant.by


def revoke(deps: Deps, user: str, target: str) -> str:
    """`/hitl grants revoke <id|action>` and the Revoke button: what happened, in words."""
    grants = grants_of(deps)
    grant = grants.get(target)
    if grant is not None:
        if not may_revoke(deps, user, grant):
            return "Only hitl admins and the people who granted it can revoke a grant; nothing changed."
        done = grants.revoke(by=user, ids=[grant.id])
        return f"🔒 Revoked grant `{grant.id}` on `{escape(grant.action)}`." if done else (
            f"Grant `{grant.id}` had already ended; nothing changed."
        )
    if user not in deps.settings.admins:
        mine = [g.id for g in grants.live() if g.action == target and user in g.by]
        done = grants.revoke(by=user, ids=mine) if mine else []
    else:
        done = grants.revoke(by=user, action=target)
    if not done:
        return f"No live grant of yours is `{escape(target[:100])}` or on that action; nothing changed."
    return f"🔒 Revoked {len(done)} grant(s) on `{escape(target)}`: " + ", ".join(f"`{g}`" for g in done)


def command(deps: Deps, user: str, rest: str) -> tuple[str, list[dict]]:
    """`/hitl grants` (list, with Revoke) and `/hitl grants revoke <id|action>`."""
    verb, _, target = rest.partition(" ")
    if verb.lower() == "revoke":
        target = target.strip().split()[0] if target.strip() else ""
        if not target:
            return "Usage: /hitl grants revoke <grant id | action>", []
        return revoke(deps, user, target), []
    live = grants_of(deps).live()
    if user not in deps.settings.admins:
        live = [g for g in live if user in g.by]
    if not live:
        return "No live grants.", []
    paused = stats.paused_scopes(deps.store)
    blocks: list[dict[str, Any]] = []
    for g in live[:LIST_LIMIT]:
        who = f"key `{escape(g.via)}`" if g.via else "the Python client"
        asker = f", for {people([g.requested_by])}" if g.requested_by else ""
        pins = "".join(f" · `{escape(k)}` = `{escape(json.dumps(v)[:60])}`" for k, v in g.pins.items())
        held = " · ⏸️ suspended (kill switch)" if "*" in paused or g.action in paused else ""
        text = (
            f"`{g.id}` · *{escape(g.action)}* from {who}{asker} · granted by {people(g.by)} · "
            f"until {slack_date(g.until)} · {g.uses_left} of {g.uses} uses left{pins}{held}"
        )
        blocks.append({
            "type": "section", "text": {"type": "mrkdwn", "text": text[:2900]},
            "accessory": {"type": "button", "action_id": ACTION_REVOKE, "value": g.id, "style": "danger",
                          "text": {"type": "plain_text", "text": "Revoke"}},
        })
    return f"{len(live)} live grants", blocks


@unrecorded
def _revoke_click(ack: Ack, body: dict[str, Any], context: dict) -> None:
    ack()
    deps = deps_of(context)
    tell(deps, body, revoke(deps, body["user"]["id"], body["actions"][0]["value"]))


def register(app: App) -> None:
    app.action(cards.ACTION_GRANT)(_open)
    app.action(ACTION_REVOKE)(_revoke_click)
    app.view(VIEW_GRANT)(_submit)
