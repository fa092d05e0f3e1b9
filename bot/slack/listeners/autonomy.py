"""The promotion loop in Slack: proposal cards, Promote / Not yet, and what the admins are told.

`check` is what the workers' loop runs (`workers.autonomy`): it opens proposals the data
supports (`hitl.autonomy.propose`, at most one per action) and posts one card each to
`autonomy.channel`, else to each of ``HITL_ADMINS`` by DM; it also tells them which
promotions a file version took back, and of demotions (`tell_demotions`): a veto, a critical
rejection or too many rejections demote at once where the decision is recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.deps import Deps, deps_of
from hitl import Approvals
from hitl import autonomy as auto
from hitl.policy import Policy
from hitl.settings import Settings
from hitl.stats import action_stats, all_actions

log = logging.getLogger(__name__)

ACTION_PROMOTE = "hitl_autonomy_promote"
ACTION_NOT_YET = "hitl_autonomy_not_yet"

_ANSWERS = {
    auto.Outcome.NOT_ADMIN: "Only the people in HITL_ADMINS may decide promotions.",
    auto.Outcome.NO_PROPOSAL: "This proposal was already decided (or has expired).",
    auto.Outcome.CHANGED: "The policy changed since this was proposed; the data will propose again.",
}


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _evidence_text(p: auto.Proposal) -> str:
    e = p.evidence
    last = e.get("last_critical_rejection")
    p99 = e.get("p99_review_seconds")
    return (
        f"*{e.get('decisions', 0)}* decisions · *{_pct(e.get('approved_unedited'))}* approved unedited · "
        f"override rate *{_pct(e.get('override_rate'))}* · last critical rejection: "
        f"{'never' if last is None else f'<!date^{int(last)}^{{date_short}}|{int(last)}>'} · "
        f"p99 review time: {'-' if p99 is None else f'{p99:.0f} s'}"
    )


def proposal_blocks(p: auto.Proposal, policy: Policy, dashboard: str | None) -> list[dict[str, Any]]:
    """The proposal card: the question, the evidence, the dashboard, Promote / Not yet."""
    context = "Readiness over time: `/hitl dashboard`"
    if dashboard is not None:
        context = f"<{dashboard}|Readiness panel>"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"⬆️ {p.question(policy)}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _evidence_text(p)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        {"type": "actions", "block_id": f"autonomy:{p.action}", "elements": [
            {"type": "button", "action_id": ACTION_PROMOTE, "style": "primary", "value": p.action,
             "text": {"type": "plain_text", "text": "Promote"}},
            {"type": "button", "action_id": ACTION_NOT_YET, "value": p.action,
             "text": {"type": "plain_text", "text": "Not yet"}},
        ]},
    ]


def _targets(settings: Settings, policy: Policy) -> list[str]:
    """The admin channel, else each admin (a DM: chat.postMessage to a user id)."""
    return [policy.autonomy.channel] if policy.autonomy.channel else list(settings.admins)


def tell_admins(client: WebClient, settings: Settings, policy: Policy, text: str,
                blocks: list[dict[str, Any]] | None = None) -> bool:
    """Post `text` to the admins; True when at least one of them got it."""
    told = False
    for target in _targets(settings, policy):
        try:
            client.chat_postMessage(channel=target, text=text, blocks=blocks)
            told = True
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", target, exc.response.get("error"))
    return told


def check(approvals: Approvals, client: WebClient, settings: Settings) -> list[auto.Proposal]:
    """One pass of the loop: post each newly opened proposal; report what a file undid."""
    store = approvals.policy
    policy = store.current().policy
    for undone in auto.undone_by_file(store):
        tell_admins(client, settings, policy, (
            f"↩️ Policy version {undone.version}, applied from a file, undid the promotion of "
            f"`{undone.action}` to {undone.promoted_to.value}: it is {undone.now.value} again."
        ))
    tell_demotions(approvals, client, settings)
    opened = auto.propose(store, [action_stats(approvals.store, a) for a in all_actions(approvals.store)])
    for p in opened:
        tell_admins(client, settings, policy, p.question(policy), proposal_blocks(p, policy, None))
    return opened


def tell_demotions(approvals: Approvals, client: WebClient, settings: Settings) -> int:
    """Tell the admins each demotion no one has told them of yet; how many were told.

    The demotion itself happened where the decision was recorded (`Approvals.decide`); the
    reject and veto modals call this right after, and the workers' loop on every pass, for
    decisions made elsewhere (Python, a plan, LangGraph's Agent Inbox). A notice no admin
    could be sent goes back in line for the next pass."""
    told = 0
    store = approvals.policy
    taken = auto.take_demotions(store)
    policy = store.current().policy if taken else None
    for i, demotion in enumerate(taken):
        assert policy is not None
        try:
            sent = tell_admins(client, settings, policy, demotion.text())
        except Exception as exc:  # Slack unreachable: nothing is lost, the next pass tries again
            log.warning("could not tell the admins of a demotion: %s", exc)
            sent = False
        if not sent:
            # Slack took none: this one and every one taken after it go back, oldest first
            for untold in reversed(taken[i:]):
                store.return_demotion(untold.record())
            break
        told += 1
    return told


def _answer(deps: Deps, body: dict[str, Any], text: str, *, replace: bool) -> None:
    """Replace the card with the outcome, or tell only the clicker why nothing happened."""
    channel = (body.get("channel") or {}).get("id") or body["user"]["id"]
    try:
        if replace and body.get("message"):
            deps.client.chat_update(channel=channel, ts=body["message"]["ts"], text=text,
                                    blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
        else:
            deps.client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=text)
    except SlackApiError as exc:
        log.warning("could not answer a promotion click: %s", exc.response.get("error"))


def register(app: App) -> None:
    @app.action(ACTION_PROMOTE)
    def promote(ack: Ack, body: dict[str, Any], context: dict) -> None:
        ack()
        deps, user = deps_of(context), body["user"]["id"]
        action = body["actions"][0]["value"]
        outcome, published = auto.promote(deps.approvals.policy, action, user, list(deps.settings.admins))
        if outcome is auto.Outcome.PROMOTED and published is not None:
            mode = auto.mode_of(deps.approvals.policy.current().policy, action)
            _answer(deps, body, f"✅ <@{user}> promoted `{action}` to {mode.value} "
                    f"(policy version {published.version}).", replace=True)
        elif outcome is auto.Outcome.WAITING:
            _answer(deps, body, "Counted; more admins must press Promote.", replace=False)
        else:
            _answer(deps, body, _ANSWERS[outcome], replace=False)

    @app.action(ACTION_NOT_YET)
    def not_yet(ack: Ack, body: dict[str, Any], context: dict) -> None:
        ack()
        deps, user = deps_of(context), body["user"]["id"]
        action = body["actions"][0]["value"]
        outcome = auto.not_yet(deps.approvals.policy, action, user, list(deps.settings.admins))
        if outcome is auto.Outcome.SNOOZED:
            days = deps.approvals.policy.current().policy.autonomy.snooze / 86400
            _answer(deps, body, f"💤 <@{user}>: not yet for `{action}`; no proposal for {days:g} days.",
                    replace=True)
        else:
            _answer(deps, body, _ANSWERS[outcome], replace=False)
