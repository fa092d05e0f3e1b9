"""Modal submissions: reject and veto with a reason, edit then approve.

The decision is taken before `ack()` (a Redis script, milliseconds) so a refusal can be
shown in the modal itself with `response_action="errors"`, where the reviewer is looking.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from slack_bolt import Ack, App

from bot.slack.blocks import views
from bot.slack.deps import deps_of
from bot.slack.listeners import autonomy
from bot.slack.plans import decide_plan
from bot.slack.replies import NOT_RECORDED, refusal
from hitl.errors import HitlError
from hitl.status import Verb

log = logging.getLogger(__name__)

# Shown when a reject or veto form is sent empty: the reason is what the agent learns from.
NEED_REASON = "Please say why, so the agent can learn from it."


def _value(view: dict[str, Any], block: str) -> str | None:
    state = view.get("state", {}).get("values", {})
    value = (state.get(block) or {}).get(block) or {}
    text = value.get("value")
    return text.strip() if isinstance(text, str) and text.strip() else None


def _ticked(view: dict[str, Any], block: str) -> set[str]:
    state = view.get("state", {}).get("values", {})
    chosen = ((state.get(block) or {}).get(block) or {}).get("selected_options") or []
    return {str(o.get("value")) for o in chosen if isinstance(o, dict)}


def _submit(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: dict, verb: Verb, field: str
) -> None:
    deps = deps_of(context)
    user = body["user"]["id"]
    meta = views.parse_private_metadata(view.get("private_metadata") or "")
    kwargs: dict[str, Any] = {}
    try:
        placed = deps.store.get_placed(meta["id"])
        req = placed.req
        hidden = deps.viewer(user).refusal(placed)
        if hidden:
            ack(response_action="errors", errors={field: hidden})
            return
        if verb is Verb.APPROVE:
            text = _value(view, "params") or ""
            try:
                kwargs["params"] = views.parse_edited_params(text, req.effective_params)
            except ValueError as exc:
                ack(response_action="errors", errors={"params": str(exc)})
                return
            kwargs["comment"] = _value(view, "comment")
        else:
            reason = _value(view, "reason")
            if not reason:
                ack(response_action="errors", errors={"reason": NEED_REASON})
                return
            kwargs["comment"] = reason
            if verb is Verb.REJECT:  # the reject modal's Critical box: demotes the action at once
                kwargs["critical"] = views.INPUT_CRITICAL in _ticked(view, views.INPUT_CRITICAL)
        if req.items and verb is Verb.REJECT:  # "Reject all" on a plan: every waiting step, same reason
            problem = decide_plan(deps, req.id, Verb.REJECT, user, kwargs["comment"],
                                  critical=kwargs["critical"])
            if problem:
                ack(response_action="errors", errors={field: problem})
                return
        else:
            groups = deps.groups_for(user, req)
            deps.approvals.decide(req.id, verb, by=user, version=meta.get("v"), groups=groups, **kwargs)
    except HitlError as exc:
        ack(response_action="errors", errors={field: refusal(exc)})
        return
    except redis.RedisError as exc:
        log.warning("%s by %s not recorded, Redis unreachable: %s", verb, user, exc)
        ack(response_action="errors", errors={field: NOT_RECORDED})
        return
    ack()
    if verb in (Verb.REJECT, Verb.VETO):  # a veto or critical rejection demoted: tell the admins now
        try:
            autonomy.tell_demotions(deps.approvals, deps.client, deps.settings)
        except redis.RedisError as exc:  # kept in Redis: the workers' next pass tells them
            log.warning("demotions not told yet, Redis unreachable: %s", exc)


def register(app: App) -> None:
    @app.view(views.VIEW_REJECT)
    def reject(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: dict) -> None:
        _submit(ack, body, view, context, Verb.REJECT, "reason")

    @app.view(views.VIEW_VETO)
    def veto(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: dict) -> None:
        _submit(ack, body, view, context, Verb.VETO, "reason")

    @app.view(views.VIEW_EDIT)
    def edit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: dict) -> None:
        _submit(ack, body, view, context, Verb.APPROVE, "params")

    @app.view(views.VIEW_DETAILS)
    def details(ack: Ack) -> None:
        ack()
