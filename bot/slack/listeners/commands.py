"""`/hitl`: the operator's view of the queue, answered ephemerally and from indexes.

The reply goes in `ack()` itself: every subcommand is a few Redis round trips, well
inside Slack's 3 seconds, and needs no response_url.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from slack_bolt import Ack, App

from bot.slack import dashlink
from bot.slack.blocks import views
from bot.slack.blocks.text import escape, escape_cut, one_line, slack_date
from bot.slack.deps import Deps, deps_of
from bot.slack.listeners import grants
from bot.slack.replies import DB_DOWN
from hitl import queries, stats
from hitl.errors import RequestNotFound
from hitl.ids import is_request_id
from hitl.status import Mode

log = logging.getLogger(__name__)

# How many requests `/hitl list` shows.
LIST_LIMIT = 20

_CHANNEL_REF = re.compile(r"^<#(C[A-Z0-9]+)(?:\|[^>]*)?>$")


def _channel_arg(deps: Deps, arg: str) -> str | None:
    match = _CHANNEL_REF.match(arg)
    if match:
        return match.group(1)
    return arg or None


def answer(deps: Deps, user: str, text: str, team: str = "") -> tuple[str, list[dict]]:
    """(fallback text, blocks) for one `/hitl` invocation; `team` is the workspace it came from."""
    sub, _, rest = text.strip().partition(" ")
    sub, rest = sub.lower(), rest.strip()
    store = deps.store
    viewer = deps.viewer(user)
    # Admins see everything; anyone else only what `viewer.may_see` allows (bot/access.py).
    visible = None if viewer.admin else viewer.may_see
    if sub == "status":
        st = queries.queue_status(store, None if viewer.admin else viewer.in_channel)
        blocks = views.status_blocks(st.by_channel, st.by_mode, st.oldest, st.next_deadline, st.hidden)
        return f"{sum(st.by_channel.values())} requests waiting", blocks
    if sub == "list":
        if rest == "mine":
            mine = queries.waiting_for(
                store, user, lambda g: deps.groups.groups_of(user, g), LIST_LIMIT, visible=visible
            )
            reqs = [p.req for p in mine]
            return f"{len(reqs)} waiting for you", views.list_blocks(reqs, "Waiting for you")
        channel = _channel_arg(deps, rest)
        reqs = queries.pending(store, channel, LIST_LIMIT, visible=visible)
        title = f"Waiting in #{channel}" if channel else "Waiting"
        return f"{len(reqs)} waiting", views.list_blocks(reqs, title)
    if sub == "show":
        if not rest:
            return "Usage: /hitl show <request id>", views.help_blocks()
        wanted = rest.split()[0]
        # Not found, malformed and not visible read the same: a private request's id
        # reveals nothing to someone outside its channel.
        nothing = f"No request with id '{escape_cut(one_line(wanted, 60), 60)}'."
        if not is_request_id(wanted):
            return nothing, []
        try:
            placed = store.get_placed(wanted)
        except RequestNotFound:
            return nothing, []
        if not viewer.may_see(placed):
            return nothing, []
        req = placed.req
        return f"Request {req.id}", views.show_blocks(req, queries.events_of(store, req.id))
    if sub in ("pause", "resume"):
        return _switch(deps, user, sub, rest or "*")
    if sub == "stats":
        return _stats(deps, rest, dashlink.stats_line(deps.settings, team, user))
    if sub == "dashboard":
        return dashlink.reply(deps.settings, team, user)
    if sub == "policy":
        return _policy_history(deps) if rest.lower() == "history" else _policy(deps)
    if sub == "grants":
        return grants.command(deps, user, rest)
    return "hitl commands", views.help_blocks()


def _section(text: str) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900], "verbatim": True}}]


def _switch(deps: Deps, user: str, verb: str, scope: str) -> tuple[str, list[dict]]:
    """The kill switch: admins only; while paused, auto/notify/override requests wait at a gate."""
    if user not in deps.settings.admins:
        return "Only hitl admins (HITL_ADMINS) can pause or resume agents; nothing changed.", []
    scope = scope.split()[0]
    changed = deps.store.pause(scope, user, on=verb == "pause")
    what = "all actions" if scope == "*" else f"`{escape(scope)}`"
    if verb == "pause":
        text = f"⏸️ Paused {what}: new auto, notify and override requests now wait for approval."
    else:
        text = f"▶️ Resumed {what}: requests follow the policy again."
    if not changed:
        state = "already paused" if verb == "pause" else "was not paused"
        text = f"{what[0].upper()}{what[1:]} {state}; nothing changed."
    return text, []


def _stats(deps: Deps, action: str, dashboard: str | None = None) -> tuple[str, list[dict]]:
    policy = deps.approvals.policy.current().policy
    limits = policy.autonomy  # validated when the policy loaded
    actions = [action.split()[0]] if action else stats.all_actions(deps.store)[:20]
    if not actions:
        return "No requests yet.", []
    lines = []
    for name in actions:
        s = stats.action_stats(deps.store, name)
        c = s.counts
        median = f"{s.median_seconds:.0f}s" if s.median_seconds is not None else "-"
        parts = [
            f"*{escape(name)}*: {c.get('created', 0)} requests",
            f"{c.get('approved', 0)} approved ({c.get('edited', 0)} edited)",
            f"{c.get('rejected', 0)} rejected",
            f"{c.get('expired', 0)} expired",
            f"{c.get('vetoed', 0)} vetoed",
            f"median time to decision {median}",
        ]
        if s.override_rate is not None:
            parts.append(f"override rate {s.override_rate:.0%}")
        if s.shadow_agreement is not None:
            parts.append(f"shadow agreement {s.shadow_agreement:.0%}")
        lines.append(" · ".join(parts))
        entry = policy.actions.get(name)
        current = entry.mode if entry and entry.mode else Mode.GATE
        advice = s.recommendation(current, limits)
        if advice:
            lines.append(f"💡 {escape(advice)}")
    if dashboard:
        lines.append(dashboard)
    return f"Stats for {len(actions)} actions", _section("\n".join(lines))


def _policy(deps: Deps) -> tuple[str, list[dict]]:
    """The published version in force: who applied it, when, from where, and what it says."""
    published = deps.approvals.policy
    in_force = published.current()
    policy, meta = in_force.policy, in_force.meta
    paused = stats.paused_scopes(deps.store)
    if meta is None:
        lines = [
            "*Policy version 0*: none published, built-in defaults (`hitl policy apply FILE` publishes one)"
        ]
    else:
        source = f" from `{escape(meta.source)}`" if meta.source else ""
        lines = [
            f"*Policy version {meta.version}*, applied by {escape(meta.applied_by)} "
            f"{slack_date(meta.applied_at)}{source}"
        ]
    for name, entry in sorted(policy.actions.items()):
        lines.append(f"• `{escape(name)}`: {entry.mode.value if entry.mode else 'default'}")
    if policy.rules:
        lines.append(f"{len(policy.rules)} rules for other actions")
    lines.append(f"Confidence below {policy.confidence.gate_below} raises to gate")
    if paused:
        lines.append("⏸️ Paused: " + ", ".join(escape(p) for p in paused))
    error = published.last_error()
    if error is not None:
        lines.append(
            f"⚠️ last_error: a policy file was not published; version {in_force.version} stays in force: "
            f"{escape(error.message)}"
        )
    return f"Policy version {in_force.version} in force", _section("\n".join(lines))


# Versions `/hitl policy history` shows, newest first (`hitl policy history` prints all).
HISTORY_SHOWN = 20


def _policy_history(deps: Deps) -> tuple[str, list[dict]]:
    """Every version, newest first: who, when, why (file, promotion, demotion), what changed."""
    from hitl.autonomy import change_summary

    versions = deps.approvals.policy.history()
    if not versions:
        return "No policy published yet", _section("No policy published yet: version 0 in force")
    lines, before = [], None
    for v in versions:
        policy = v.policy()
        lines.append(
            f"*v{v.version}* {slack_date(v.applied_at)} by {escape(v.applied_by)} · _{v.reason}_ · "
            f"{escape(change_summary(before, policy))}"
        )
        before = policy
    shown = lines[::-1][:HISTORY_SHOWN]
    if len(lines) > HISTORY_SHOWN:
        shown.append(f"… {len(lines) - HISTORY_SHOWN} older versions: `hitl policy history` lists them all")
    return f"{len(versions)} policy versions", _section("\n".join(shown))


def register(app: App) -> None:
    @app.command("/hitl")
    def hitl(ack: Ack, command: dict[str, Any], context: dict) -> None:
        try:
            deps, team = deps_of(context), command.get("team_id") or ""
            text, blocks = answer(deps, command["user_id"], command.get("text") or "", team)
        except redis.RedisError as exc:
            log.warning("/hitl %r: Redis unreachable: %s", command.get("text"), exc)
            text, blocks = DB_DOWN, []
        if blocks:
            ack(text=text, blocks=blocks, response_type="ephemeral")
        else:
            ack(text=text, response_type="ephemeral")
