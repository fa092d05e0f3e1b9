"""Button clicks on cards, digests and App Home.

Every handler acks first (Slack wants an answer within 3 s), then reads the request from
Redis: buttons carry only the request id, and the version in the actions block's id
tells whether the card was drawn before an edit.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import redis
from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.slack.blocks import cards, views
from bot.slack.client import CALL_TIMEOUT
from bot.slack.deps import Deps, deps_of
from bot.slack.plans import decide_plan
from bot.slack.replies import NOT_RECORDED, refusal, stale_or_final, why_not
from hitl import tracing
from hitl.errors import HitlError, RequestNotFound
from hitl.logs import log_context
from hitl.queries import may_decide
from hitl.status import Verb
from hitl.tracing import SpanName

log = logging.getLogger(__name__)

# Buttons that decide at once, and the verb each applies.
_INSTANT = {
    cards.ACTION_APPROVE: Verb.APPROVE,
    cards.ACTION_CONFIRM: Verb.CONFIRM,
    cards.ACTION_WOULD_APPROVE: Verb.APPROVE,
    cards.ACTION_WOULD_REJECT: Verb.REJECT,
}


def where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The channel and message ts of the clicked card (None for App Home)."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return channel, ts


def tell(deps: Deps, body: dict[str, Any], text: str) -> None:
    """An ephemeral note to the clicker in the card's channel, else a DM (App Home).

    When the ephemeral cannot be shown there (the clicker is not in that channel any
    more), the note goes by DM so a refusal is never silent.
    """
    user = body["user"]["id"]
    channel, _ = where(body)
    try:
        if channel:
            try:
                deps.client.chat_postEphemeral(channel=channel, user=user, text=text)
                return
            except SlackApiError as exc:
                log.info("no ephemeral to %s in %s (%s); DM instead", user, channel, exc.response["error"])
        if body.get("response_url") and _via_response_url(body["response_url"], text):
            return
        deps.client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


def _via_response_url(url: str, text: str) -> bool:
    """An ephemeral note through the click's response_url (no channel membership needed)."""
    try:
        resp = WebhookClient(url, timeout=CALL_TIMEOUT).send(
            text=text, response_type="ephemeral", replace_original=False
        )
    except (OSError, ValueError) as exc:
        log.info("response_url failed: %s", exc)
        return False
    return resp.status_code == 200


def _target(body: dict[str, Any]) -> str:
    """The request a click is about: a button's value, or a digest menu option's."""
    action = body["actions"][0]
    if "selected_option" in action:
        return cards.parse_item_value(action["selected_option"]["value"])[1]
    return action["value"]


def decide_click(deps: Deps, body: dict[str, Any], verb: Verb) -> None:
    """Apply a click's decision; a refusal is told to the clicker."""
    action = body["actions"][0]
    user = body["user"]["id"]
    version = cards.parse_actions_block_id(action.get("block_id"))
    try:
        placed = deps.store.get_placed(_target(body))
        req = placed.req
        hidden = deps.viewer(user).refusal(placed)
        if hidden:
            tell(deps, body, hidden)
            return
        groups = deps.groups_for(user, req)
        attrs = {"hitl.request_id": req.id, "hitl.action": req.action, "hitl.verb": verb, "slack.user": user}
        with (
            log_context(request_id=req.id, action=req.action),
            tracing.span(SpanName.CLICK, req.trace, attrs),
        ):
            deps.approvals.decide(req.id, verb, by=user, version=version, groups=groups)
    except HitlError as exc:
        tell(deps, body, refusal(exc))


def open_modal(deps: Deps, body: dict[str, Any], build: Any) -> None:
    """Open a decision modal, unless the click could not lead anywhere (final, not allowed)."""
    action = body["actions"][0]
    user = body["user"]["id"]
    try:
        placed = deps.store.get_placed(_target(body))
    except RequestNotFound as exc:
        tell(deps, body, refusal(exc))
        return
    req = placed.req
    hidden = deps.viewer(user).refusal(placed)
    if hidden:  # details too: they show what a private channel's members alone may see
        tell(deps, body, hidden)
        return
    version = cards.parse_actions_block_id(action.get("block_id"))
    deciding = build is not views.details_modal  # anyone who may see it may look at the details
    if req.final or (deciding and version is not None and version != req.version):
        tell(deps, body, refusal(stale_or_final(req)))
        return
    if deciding and not may_decide(req, user, deps.groups_for(user, req)):
        tell(deps, body, why_not(req, user))
        return
    channel, ts = where(body)
    view = build(req, channel=channel, ts=ts) if deciding else build(req, placed.card)
    try:
        deps.client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        tell(deps, body, "Slack did not open the form in time; please click again.")


def unrecorded(listener: Any) -> Any:
    """Wrap a click listener: when Redis is unreachable, tell the clicker it was NOT recorded.

    The click is acked first (Slack wants that within 3 s), so the only way to say the
    decision was lost is a note: an ephemeral, else the click's response_url, else a DM.
    """

    @functools.wraps(listener)
    def wrapped(ack: Ack, body: dict[str, Any], context: dict) -> None:
        try:
            listener(ack, body, context)
        except redis.RedisError as exc:
            log.warning("click by %s not recorded, Redis unreachable: %s", body["user"]["id"], exc)
            tell(deps_of(context), body, NOT_RECORDED)

    return wrapped


def _instant(verb: Verb) -> Any:
    @unrecorded
    def listener(ack: Ack, body: dict[str, Any], context: dict) -> None:
        ack()
        decide_click(deps_of(context), body, verb)

    return listener


def _modal(build: Any) -> Any:
    @unrecorded
    def listener(ack: Ack, body: dict[str, Any], context: dict) -> None:
        ack()
        open_modal(deps_of(context), body, build)

    return listener


# Digest menu verbs: those that decide at once, and those that open a modal first.
_ITEM_INSTANT = {
    "approve": Verb.APPROVE,
    "confirm": Verb.CONFIRM,
    "would_approve": Verb.APPROVE,
    "would_reject": Verb.REJECT,
}
_ITEM_MODALS = {"reject": views.reject_modal, "veto": views.veto_modal, "details": views.details_modal}


@unrecorded
def _item(ack: Ack, body: dict[str, Any], context: dict) -> None:
    ack()
    deps = deps_of(context)
    verb, _ = cards.parse_item_value(body["actions"][0]["selected_option"]["value"])
    if verb in _ITEM_INSTANT:
        decide_click(deps, body, _ITEM_INSTANT[verb])
    elif verb in _ITEM_MODALS:
        open_modal(deps, body, _ITEM_MODALS[verb])


@unrecorded
def _plan_approve(ack: Ack, body: dict[str, Any], context: dict) -> None:
    ack()
    deps = deps_of(context)
    try:
        user = body["user"]["id"]
        problem = deps.viewer(user).refusal(deps.store.get_placed(_target(body)))
        problem = problem or decide_plan(deps, _target(body), Verb.APPROVE, user)
    except RequestNotFound as exc:
        problem = refusal(exc)
    if problem:
        tell(deps, body, problem)


def register(app: App) -> None:
    app.action(cards.action_matcher(cards.ACTION_ITEM))(_item)
    app.action(cards.ACTION_PLAN_APPROVE)(_plan_approve)
    app.action(cards.ACTION_PLAN_REJECT)(_modal(views.reject_modal))
    # Lists (digests, App Home) number their buttons ("hitl_approve:3"): match both forms.
    for action_id, verb in _INSTANT.items():
        app.action(cards.action_matcher(action_id))(_instant(verb))
    modals = {
        cards.ACTION_REJECT: views.reject_modal,
        cards.ACTION_VETO: views.veto_modal,
        cards.ACTION_EDIT: views.edit_modal,
        cards.ACTION_DETAILS: views.details_modal,
    }
    for action_id, build in modals.items():
        app.action(cards.action_matcher(action_id))(_modal(build))
