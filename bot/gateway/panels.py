"""The dashboard's panels: HTML fragments with charts drawn by pygal (server-side SVG).

Each panel is rendered from one `Board`, read from Redis in a few round trips (the shared
metrics, the last 24 hours, the oldest waiting requests, per-action stats), so every web
process shows the same thing. pygal is told to load no JavaScript: the SVG works offline.
Agent-written text (summaries) is never shown here; action and channel names are escaped.
Each viewer sees what `/hitl` would show them (`Sight`): admins everything, anyone else
no private channel's requests, ids or action names, not even in aggregates.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

import pygal
from pygal.style import Style

from bot.access import Viewer
from hitl import autonomy, metrics, queries, stats
from hitl.client import Approvals
from hitl.models import Placed, Request
from hitl.stats import ActionStats, Readiness
from hitl.status import Mode, Status

# How many waiting requests the queue panel lists, oldest first.
QUEUE_ROWS = 15
# Hours the charts cover.
HOURS = 24
# Actions shown in the readiness panel (most requests first).
MAX_ACTIONS = 20
# Policy versions read for each action's mode over time (the latest; older ones are in
# `hitl policy history`).
MODE_VERSIONS = 50

_STYLE = Style(
    background="transparent", plot_background="transparent", foreground="#1d1c1d",
    foreground_strong="#1d1c1d", foreground_subtle="#8d8d8d", font_family="system-ui, sans-serif",
    colors=("#1264a3", "#e01e5a", "#2eb67d", "#ecb22e", "#36c5f0", "#4a154b", "#616061"),
    label_font_size=11, major_label_font_size=11, legend_font_size=12, title_font_size=14,
)


@dataclass(frozen=True)
class Sight:
    """What one dashboard viewer may see: the rule `/hitl` applies (bot/access.py).

    An admin sees every figure. Anyone else sees the waiting requests `may_see` allows,
    the per-channel counts of channels `in_channel` allows, and request figures (per
    action, over time, readiness) of requests in public channels only: the counters keep
    a public twin for that (hitl.scripts `count`), so no private channel's action names or
    numbers reach an aggregate a non-member sees."""

    admin: bool
    in_channel: Callable[[str], bool]
    may_see: Callable[[Placed], bool]

    @classmethod
    def everything(cls) -> Sight:
        return cls(True, lambda _ch: True, lambda _p: True)

    @classmethod
    def of(cls, viewer: Viewer) -> Sight:
        return cls(viewer.admin, viewer.in_channel, viewer.may_see)

    @classmethod
    def public_only(cls, is_private: Callable[[str], bool], default_channel: str | None = None) -> Sight:
        """For a caller with no Slack identity (an API key): public channels only."""

        def public(channel: str) -> bool:
            channel = channel or default_channel or ""
            return bool(channel) and not is_private(channel)

        def may_see(placed: Placed) -> bool:
            req, card = placed.req, placed.card
            channels = [c for c in (req.channel, card.channel, *(ch for ch, _ in card.mirrors)) if c]
            return any(public(c) for c in channels or [""])

        return cls(False, public, may_see)


@dataclass
class Board:
    """Everything the panels show, read at one moment, for one viewer."""

    now: float
    snap: metrics.Snapshot
    hours: list[metrics.Hour]
    waiting: list[Request]
    readiness: list[tuple[ActionStats, Readiness]]
    # per action shown, the versions at which its mode changed (the latest MODE_VERSIONS only)
    modes: dict[str, list[autonomy.ModeChange]] = field(default_factory=dict)


def collect(approvals: Approvals, sight: Sight | None = None, now: float | None = None) -> Board:
    """Read the board from Redis for `sight` (default: everything; blocking: run it in a
    thread from async code)."""
    now = time.time() if now is None else now
    sight = sight or Sight.everything()
    store = approvals.store
    policy = approvals.policy.current().policy
    public = not sight.admin
    hidden = metrics.ActionLabels(approvals.redis, approvals.keys).private() if public else set()
    rows = []
    for name in [a for a in stats.all_actions(store) if a not in hidden][:MAX_ACTIONS]:
        s = stats.action_stats(store, name)
        if not s.counts:  # the stats of an action outside the policy aged out
            continue
        entry = policy.actions.get(name)
        current = entry.mode if entry and entry.mode else Mode.GATE
        rows.append((s, s.readiness(current, policy.autonomy, now)))
    rows.sort(key=lambda r: (-r[0].counts.get("created", 0), r[0].action))
    snap = metrics.read(approvals.redis, approvals.keys, now, public=public)
    waiting = queries.pending(store, None, QUEUE_ROWS, visible=None if sight.admin else sight.may_see)
    if public:
        snap.pending = {(ch, mode): n for (ch, mode), n in snap.pending.items()
                        if sight.in_channel(ch or approvals.settings.default_channel or "")}
        snap.paused = {scope: on for scope, on in snap.paused.items() if scope == "*" or scope not in hidden}
        oldest = min((r.created_at for r in waiting), default=None)
        snap.oldest_pending_seconds = 0.0 if oldest is None else max(now - oldest, 0.0)
    return Board(
        now=now,
        snap=snap,
        hours=metrics.read_hours(approvals.redis, approvals.keys, HOURS, now, public=public),
        waiting=waiting,
        readiness=rows,
        modes=autonomy.mode_history(
            approvals.policy.history(last=MODE_VERSIONS), [r[0].action for r in rows]
        ),
    )


def render(board: Board) -> dict[str, str]:
    """{panel id: HTML} for the page and its refresh loop."""
    return {
        "queue": queue(board),
        "decision-time": decision_time(board),
        "readiness": readiness(board),
        "outcomes": outcomes(board),
        "slack": slack(board),
    }


def _tid(*parts: str) -> str:
    return escape("-".join(parts), quote=True)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%d %b %H:%M UTC")


def _hour_labels(board: Board) -> list[str]:
    return [datetime.fromtimestamp(h.start, UTC).strftime("%H:00") for h in board.hours]


def _chart(chart: pygal.graph.graph.Graph) -> str:
    return chart.render(is_unicode=True)


def _config(title: str, **extra: object) -> dict[str, object]:
    return {
        "title": title, "style": _STYLE, "js": [], "disable_xml_declaration": True, "height": 300,
        "width": 640, "explicit_size": False, "x_label_rotation": 0, "show_minor_x_labels": False,
        "x_labels_major_every": 4, "truncate_legend": 24, "truncate_label": -1,
        "legend_at_bottom": True, "legend_at_bottom_columns": 4, "print_values": False, "margin": 8,
        "no_data_text": "nothing yet", **extra,
    }


def queue(board: Board) -> str:
    snap = board.snap
    total = sum(snap.pending.values())
    paused = sorted(s for s, on in snap.paused.items() if on)
    rows = "".join(
        f"<tr><td>{escape(ch or '(no channel)')}</td><td>{escape(mode)}</td>"
        f"<td class='num' data-testid='{_tid('pending', ch or 'none', mode)}'>{n}</td></tr>"
        for (ch, mode), n in sorted(snap.pending.items(), key=lambda kv: (-kv[1], kv[0]))
    ) or "<tr><td colspan='3' class='muted'>Nothing is waiting.</td></tr>"
    waiting = "".join(
        f"<tr data-testid='{_tid('waiting', r.id)}'><td><code>{escape(r.id)}</code></td>"
        f"<td>{escape(r.action)}</td><td>{escape(r.channel or '')}</td><td>{escape(r.mode.value)}</td>"
        f"<td class='num'>{_ago(board.now - r.created_at)}</td>"
        f"<td>{_deadline(board, r)}</td></tr>"
        for r in board.waiting
    ) or "<tr><td colspan='6' class='muted'>Nothing is waiting.</td></tr>"
    switch = (
        f"<p class='alert' data-testid='paused'>⏸️ Paused: {escape(', '.join(paused))}</p>" if paused else ""
    )
    return (
        f"<h2>Queue</h2>{switch}"
        f"<p class='big'><span data-testid='pending-total'>{total}</span> waiting"
        f"{f' · oldest {_ago(snap.oldest_pending_seconds)}' if total else ''}</p>"
        "<div class='cols'><table><thead><tr><th>channel</th><th>mode</th><th class='num'>waiting</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        "<table><thead><tr><th>request</th><th>action</th><th>channel</th><th>mode</th>"
        "<th class='num'>waiting for</th><th>deadline</th></tr></thead>"
        f"<tbody>{waiting}</tbody></table></div>"
    )


def _deadline(board: Board, req: Request) -> str:
    if req.deadline is None:
        return "<span class='muted'>none</span>"
    left = req.deadline - board.now
    when = f"in {_ago(left)}" if left > 0 else "due now"
    return f"{_clock(req.deadline)} <span class='muted'>({when})</span>"


def decision_time(board: Board) -> str:
    actions = sorted(board.snap.decision)[:6]
    series: dict[str, list[float | None]] = {}
    for action in actions:
        for q, name in ((0.5, "median"), (0.9, "p90")):
            points = []
            for hour in board.hours:
                hist = hour.decision.get(action)
                value = hist.quantile(q) if hist else None
                points.append(None if value is None or value == float("inf") else value)
            series[f"{action} {name}"] = points
    top = max((v for points in series.values() for v in points if v is not None), default=0.0)
    unit, scale = ("minutes", 60) if top >= 120 else ("seconds", 1)
    chart = pygal.Line(**_config(f"Time to decision ({unit}, bucket bound): median and p90 per hour",
                                 dots_size=3))
    chart.x_labels = _hour_labels(board)
    for name, points in series.items():
        scaled = [None if v is None else round(v / scale, 2) for v in points]
        chart.add(name, scaled, allow_interruptions=True)
    rows = "".join(
        f"<tr><td>{escape(a)}</td><td class='num' data-testid='{_tid('decided', a)}'>{h.count}</td>"
        f"<td class='num'>{_bound(h.quantile(0.5))}</td><td class='num'>{_bound(h.quantile(0.9))}</td>"
        f"<td class='num'>{_ago(h.sum / h.count) if h.count else '-'}</td></tr>"
        for a, h in sorted(board.snap.decision.items())
    ) or "<tr><td colspan='5' class='muted'>No decisions yet.</td></tr>"
    return (
        "<h2>Time to decision</h2>"
        f"<div class='chart'>{_chart(chart)}</div>"
        "<table><thead><tr><th>action</th><th class='num'>final</th><th class='num'>median ≤</th>"
        f"<th class='num'>p90 ≤</th><th class='num'>mean</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _bound(value: float | None) -> str:
    if value is None:
        return "-"
    return "> 3 d" if value == float("inf") else _ago(value)


def readiness(board: Board) -> str:
    if not board.readiness:
        return "<h2>Autonomy readiness</h2><p class='muted'>No requests yet.</p>"
    cards = []
    for s, r in board.readiness:
        step = f"{r.current.value} → {r.next.value}" if r.next else f"{r.current.value} (top of the ladder)"
        bars = "".join(
            f"<div class='crit{' met' if c.met else ''}{'' if c.gating else ' info'}' "
            f"data-testid='{_tid('crit', s.action, c.name)}'>"
            f"<span class='label'>{escape(c.label)}</span>"
            f"<progress max='100' value='{round(c.progress * 100)}'></progress>"
            f"<span class='shown'>{escape(c.shown)}</span></div>"
            for c in r.criteria
        )
        if r.ready:
            verdict = f"<p class='ok'>✅ Ready to move from {escape(step)}.</p>"
        elif r.next is None:
            verdict = "<p class='muted'>Already at the top of the ladder.</p>"
        else:
            why = "".join(f"<li>{escape(w)}</li>" for w in r.why_not)
            verdict = f"<p>Not yet:</p><ul class='why' data-testid='{_tid('why', s.action)}'>{why}</ul>"
        if r.bottleneck:
            verdict += (
                f"<p class='alert' data-testid='{_tid('bottleneck', s.action)}'>Review has become the "
                f"bottleneck: {escape(r.bottleneck)}</p>"
            )
        cards.append(
            f"<div class='action' data-testid='{_tid('readiness', s.action)}'>"
            f"<h3>{escape(s.action)} <span class='muted'>{escape(step)}</span></h3>{bars}{verdict}"
            f"{_mode_over_time(s.action, board.modes.get(s.action, []))}</div>"
        )
    return f"<h2>Autonomy readiness</h2><div class='actions'>{''.join(cards)}</div>"


def _mode_over_time(action: str, changes: list[autonomy.ModeChange]) -> str:
    """The action's modes, oldest first: each with its version, when, and why (a file, a
    promotion someone approved, a demotion nobody waited for)."""
    if not changes:
        return ""
    steps = " → ".join(
        f"<span title='{escape(c.by)}'><b>{escape(c.mode.value)}</b> "
        f"<span class='muted'>v{c.version} {escape(c.reason)} {_clock(c.at)}</span></span>"
        for c in changes
    )
    return f"<p class='modes' data-testid='{_tid('modes', action)}'>Mode over time: {steps}</p>"


def outcomes(board: Board) -> str:
    chart = pygal.StackedBar(**_config("Expiries and vetoes per hour", legend_at_bottom=False))
    chart.x_labels = _hour_labels(board)
    for status in (Status.EXPIRED, Status.VETOED):
        chart.add(status.value, [sum(n for (_a, st), n in h.final.items() if st == status.value) or None
                                 for h in board.hours])
    totals: dict[str, int] = defaultdict(int)
    for (_action, final_status), n in board.snap.final.items():
        totals[final_status] += n
    shown = (Status.APPROVED, Status.REJECTED, Status.EXPIRED, Status.VETOED, Status.FINALIZED,
             Status.JUDGED, Status.CANCELLED)
    cells = "".join(
        f"<div class='stat'><span class='num' data-testid='{_tid('final', st.value)}'>"
        f"{totals.get(st.value, 0)}</span><span class='muted'>{st.value}</span></div>"
        for st in shown
    )
    return f"<h2>Outcomes</h2><div class='stats'>{cells}</div><div class='chart'>{_chart(chart)}</div>"


def slack(board: Board) -> str:
    by_method: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (method, outcome), n in board.snap.slack.items():
        by_method[method][outcome] += n
    total = sum(board.snap.slack.values())
    errors = sum(n for (_m, o), n in board.snap.slack.items() if o == metrics.SlackOutcome.ERROR)
    limited = sum(n for (_m, o), n in board.snap.slack.items() if o == metrics.SlackOutcome.RATELIMITED)
    rows = "".join(
        f"<tr><td><code>{escape(method)}</code></td>"
        + "".join(
            f"<td class='num' data-testid='{_tid('slack', method, o.value)}'>{counts.get(o.value, 0)}</td>"
            for o in metrics.SlackOutcome
        )
        + "</tr>"
        for method, counts in sorted(by_method.items())
    ) or "<tr><td colspan='4' class='muted'>No Slack calls yet.</td></tr>"
    hooks = ", ".join(f"{n} {escape(o)}" for o, n in sorted(board.snap.webhooks.items())) or "none yet"
    late = board.snap.lateness
    p99 = late.quantile(0.99)
    return (
        "<h2>Slack delivery health</h2>"
        f"<p><span data-testid='slack-total'>{total}</span> calls · "
        f"<span data-testid='slack-errors'>{errors}</span> errors · "
        f"<span data-testid='slack-ratelimited'>{limited}</span> rate-limited (429)</p>"
        "<table><thead><tr><th>method</th><th class='num'>ok</th><th class='num'>error</th>"
        f"<th class='num'>429</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p class='muted'>Webhooks: {hooks}. Timers fired: {late.count}"
        f"{f', p99 late ≤ {_bound(p99)}' if p99 is not None else ''}.</p>"
    )
