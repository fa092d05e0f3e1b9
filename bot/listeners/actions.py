"""Button clicks on cards, digests and App Home.

Every handler acks first (Slack wants an answer within 3 s), then reads the request from
Redis: buttons carry only the request id, and the version in the actions block's id
tells whether the card was drawn before an edit.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot import cards, views
from bot.deps import Deps, deps_of
from bot.replies import refusal
from hitl.errors import HitlError, RequestNotFound
from hitl.models import Request
from hitl.queries import may_decide
from hitl.status import Status

log = logging.getLogger(__name__)

# Buttons that decide at once, and the verb each applies.
_INSTANT = {
    cards.ACTION_APPROVE: "approve",
    cards.ACTION_CONFIRM: "confirm",
    cards.ACTION_WOULD_APPROVE: "approve",
    cards.ACTION_WOULD_REJECT: "reject",
}


def where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The channel and message ts of the clicked card (None for App Home)."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return channel, ts


def tell(deps: Deps, body: dict[str, Any], text: str) -> None:
    """An ephemeral note to the clicker in the card's channel, else a DM (App Home)."""
    user = body["user"]["id"]
    channel, _ = where(body)
    try:
        if channel:
            deps.client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            deps.client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


def _target(body: dict[str, Any]) -> str:
    """The request a click is about: a button's value, or a digest menu option's."""
    action = body["actions"][0]
    if "selected_option" in action:
        return cards.parse_item_value(action["selected_option"]["value"])[1]
    return action["value"]


def decide_click(deps: Deps, body: dict[str, Any], verb: str, **kwargs: Any) -> Request | None:
    """Apply a click's decision; tell the clicker and return None when it was refused."""
    action = body["actions"][0]
    user = body["user"]["id"]
    version = cards.parse_actions_block_id(action.get("block_id"))
    try:
        req = deps.store.get(_target(body))
        groups = deps.groups_for(user, req)
        deps.approvals.decide(req.id, verb, by=user, version=version, groups=groups, **kwargs)
        if req.batch:
            settle_plan(deps, req.batch, user, groups)
        return deps.store.get(req.id)
    except HitlError as exc:
        tell(deps, body, refusal(exc))
        return None


def settle_plan(deps: Deps, plan_id: str, user: str, groups: list[str]) -> None:
    """Close a plan once every step is final: approved if any step was, else rejected."""
    plan = deps.store.get(plan_id)
    if plan.final:
        return
    items = deps.store.get_many(plan.items)
    if any(not i.final for i in items):
        return
    approved = sum(1 for i in items if i.status is Status.APPROVED)
    verb = "approve" if approved else "reject"
    comment = f"{approved} of {len(items)} steps approved"
    try:
        deps.approvals.decide(plan_id, verb, by=user, comment=comment, groups=groups)
    except HitlError as exc:  # a concurrent click closed it first, or a quorum still waits
        log.info("plan %s not closed by %s: %s", plan_id, user, exc)


def decide_plan(deps: Deps, plan_id: str, verb: str, user: str, comment: str | None = None) -> str | None:
    """Apply `verb` to every step still waiting, then close the plan; a refusal's text or None."""
    plan = deps.store.get(plan_id)
    if plan.final:
        return refusal(_stale_or_final(plan))
    groups = deps.groups_for(user, plan)
    refused = []
    for item in deps.store.get_many(plan.items):
        if item.final:
            continue
        try:
            deps.approvals.decide(item.id, verb, by=user, comment=comment, groups=groups)
        except HitlError as exc:
            refused.append(exc)
    settle_plan(deps, plan_id, user, groups)
    if refused:
        return f"{len(refused)} steps were not changed: {refusal(refused[0])}"
    return None


def open_modal(deps: Deps, body: dict[str, Any], build: Any) -> None:
    """Open a decision modal, unless the click could not lead anywhere (final, not allowed)."""
    action = body["actions"][0]
    user = body["user"]["id"]
    try:
        req = deps.store.get(_target(body))
    except RequestNotFound as exc:
        tell(deps, body, refusal(exc))
        return
    version = cards.parse_actions_block_id(action.get("block_id"))
    if req.final or (version is not None and version != req.version and build is not views.details_modal):
        tell(deps, body, refusal(_stale_or_final(req)))
        return
    if build is not views.details_modal and not may_decide(req, user, deps.groups_for(user, req)):
        tell(deps, body, _why_not(req, user))
        return
    channel, ts = where(body)
    view = build(req) if build is views.details_modal else build(req, channel=channel, ts=ts)
    try:
        deps.client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        tell(deps, body, "Slack did not open the form in time; please click again.")


def _stale_or_final(req: Request) -> HitlError:
    from hitl.errors import AlreadyDecided, StaleVersion

    if req.final:
        return AlreadyDecided(req.id, req.status.value, req.by)
    return StaleVersion(req.id, "stale", "edited since")


def _why_not(req: Request, user: str) -> str:
    if req.requested_by == user:
        return "Nothing changed: you requested this action, so someone else has to decide it."
    return "Nothing changed: you are not one of the approvers of this request."


def _instant(verb: str) -> Any:
    def listener(ack: Ack, body: dict[str, Any], context: dict) -> None:
        ack()
        decide_click(deps_of(context), body, verb)

    return listener


def _modal(build: Any) -> Any:
    def listener(ack: Ack, body: dict[str, Any], context: dict) -> None:
        ack()
        open_modal(deps_of(context), body, build)

    return listener


# Digest menu verbs: those that decide at once, and those that open a modal first.
_ITEM_INSTANT = {
    "approve": "approve", "confirm": "confirm", "would_approve": "approve", "would_reject": "reject"
}
_ITEM_MODALS = {"reject": views.reject_modal, "veto": views.veto_modal, "details": views.details_modal}


def _item(ack: Ack, body: dict[str, Any], context: dict) -> None:
    ack()
    deps = deps_of(context)
    verb, _ = cards.parse_item_value(body["actions"][0]["selected_option"]["value"])
    if verb in _ITEM_INSTANT:
        decide_click(deps, body, _ITEM_INSTANT[verb])
    elif verb in _ITEM_MODALS:
        open_modal(deps, body, _ITEM_MODALS[verb])


def _plan_approve(ack: Ack, body: dict[str, Any], context: dict) -> None:
    ack()
    deps = deps_of(context)
    try:
        problem = decide_plan(deps, _target(body), "approve", body["user"]["id"])
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
