"""The approval card: a Block Kit message a reviewer can decide on in ten seconds.

Layout, top to bottom: a header saying what is asked (or how it ended), an urgent line
that pings the approvers, the agent's summary as a labelled quote, the facts that decide
the answer (risk, reversibility, confidence, who it acts for, deadline, approvers) as
fields, the first parameters with secrets masked, the agent's reasoning, the buttons for
the request's mode, and last a context line with the status that only the app writes.

Everything here is a pure function of a `Request`: no Redis, no Slack calls. Blocks are
built with `slack_sdk.models.blocks`, which validate Block Kit's limits at `to_dict()`;
the builders also cut every piece of agent text to those limits first, so any input, even
a 100,000-character summary, yields a card Slack accepts. The full text is one click away
in the Details modal (`bot.slack.blocks.views.details_modal`) and is never cut in Redis.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
)

from bot.slack.blocks.text import (
    approver_ref,
    code_inline,
    escape_cut,
    format_value,
    inline_text,
    one_line,
    people,
    plain,
    quote_block,
    slack_date,
    truncate,
    units,
    user_ref,
)
from hitl.masking import MASK, is_secret_key, mask_text, mask_value, masked_head
from hitl.models import Request
from hitl.policy import DEFAULT_GATE_BELOW
from hitl.status import ExecutionState, Mode, Risk, Status

ACTION_APPROVE = "hitl_approve"
ACTION_REJECT = "hitl_reject"
ACTION_EDIT = "hitl_edit"
ACTION_VETO = "hitl_veto"
ACTION_CONFIRM = "hitl_confirm"
ACTION_WOULD_APPROVE = "hitl_would_approve"
# "Approve for 1 hour": approve and grant the next ones like it (hitl.grants); opens a
# modal to choose the time (up to the policy's cap), the uses and the pinned parameters.
ACTION_GRANT = "hitl_grant"
ACTION_WOULD_REJECT = "hitl_would_reject"
ACTION_DETAILS = "hitl_details"

ACTIONS_BLOCK_PREFIX = "hitl_actions"

# What the card shows before "see Details": enough to decide, short enough to read at once.
SUMMARY_CHARS = 1200
SUMMARY_LINES = 10
CONTEXT_CHARS = 600
CONTEXT_LINES = 4
PARAM_KEYS = 8
PARAM_VALUE_CHARS = 120
PARAM_KEY_CHARS = 40
REASON_CHARS = 300
# Block Kit limits (some of which slack_sdk does not check), with a little headroom.
SECTION_TEXT = 2900
FIELD_TEXT = 1900
CONTEXT_TEXT = 2900
HEADER_TEXT = 150
FALLBACK_TEXT = 3000
MAX_MESSAGE_BLOCKS = 50

# Less time than this before the deadline: the status line says so.
SOON_SECONDS = 15 * 60

_RISK_LABEL = {
    Risk.LOW: "🟢 Low",
    Risk.MEDIUM: "🟡 Medium",
    Risk.HIGH: "🟠 *High*",
    Risk.CRITICAL: "🔴 *Critical*",
}

_MODE_LABEL = {
    Mode.GATE: "Gate: waits for approval",
    Mode.OVERRIDE: "Override: already done, veto possible",
    Mode.SHADOW: "Shadow: trial run, the agent does not wait",
    Mode.NOTIFY: "Notify: already done",
    Mode.AUTO: "Auto: logged only",
}

# Header while a request is live, per mode: (emoji, text with {action}).
_LIVE_HEADER = {
    Mode.GATE: ("🔒", "Approval needed: {action}"),
    Mode.OVERRIDE: ("⏱️", "Done, veto possible: {action}"),
    Mode.SHADOW: ("🕶️", "Would you approve {action}?"),
    Mode.NOTIFY: ("ℹ️", "Agent acted: {action}"),
    Mode.AUTO: ("🤖", "Auto-approved: {action}"),
}

# Header once a request is final: the outcome is what matters when scrolling back.
_FINAL_HEADER = {
    Status.APPROVED: ("✅", "Approved: {action}"),
    Status.REJECTED: ("❌", "Rejected: {action}"),
    Status.EXPIRED: ("⌛", "Expired: {action}"),
    Status.CANCELLED: ("🚫", "Cancelled: {action}"),
    Status.VETOED: ("🛑", "Vetoed: {action}"),
    Status.FINALIZED: ("✅", "Done, not vetoed: {action}"),
    Status.JUDGED: ("🕶️", "Shadow verdict: {action}"),
}


# --------------------------------------------------------------------------- small pieces


def md(text: str) -> MarkdownTextObject:
    """A mrkdwn text object with `verbatim` on: Slack must not auto-link or auto-mention."""
    return MarkdownTextObject(text=text, verbatim=True)


def actions_block_id(req: Request, *, item: int | None = None) -> str:
    """`hitl_actions:{version}` on a card; `hitl_actions:{version}:{item}:{id}` in lists.

    The app reads the version back to refuse clicks on a stale card. Lists (digest, App
    Home) hold several actions blocks on one surface, where block ids must be unique: the
    position makes them so, the id is there for whoever reads a payload.
    """
    block_id = f"{ACTIONS_BLOCK_PREFIX}:{req.version}"
    if item is not None:
        block_id = f"{block_id}:{item}:{req.id}"
    return block_id[:255]


def list_action_id(action_id: str, item: int) -> str:
    """`hitl_approve:3`: the action id of a button in a list of requests (digest, App Home).

    Slack refuses a message or view where two elements share an action_id, so the buttons
    of the n-th request in a list carry this suffix; `action_matcher` matches both forms.
    """
    return f"{action_id}:{item}"


def action_matcher(action_id: str) -> re.Pattern[str]:
    """A pattern for `app.action(...)` matching `action_id` on cards and in lists."""
    return re.compile(rf"^{re.escape(action_id)}(?::\d+)?$")


def base_action(action_id: str) -> str:
    """The ACTION_* constant behind a (possibly list-suffixed) action id."""
    return action_id.split(":", 1)[0]


def parse_actions_block_id(block_id: Any) -> int | None:
    """The request version carried by an actions block id, or None if it is not ours."""
    if not isinstance(block_id, str):
        return None
    parts = block_id.split(":")
    if len(parts) < 2 or parts[0] != ACTIONS_BLOCK_PREFIX:
        return None
    version = parts[1]
    if not version.isascii() or not version.isdigit():
        return None
    return int(version)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _is_edited(req: Request) -> bool:
    return req.decided_params is not None and req.decided_params != req.params


def _reason(comment: str | None) -> str:
    """A person's reason, on one line, escaped and in quotes so it reads as quoted text."""
    text = one_line(comment, REASON_CHARS).replace("“", '"').replace("”", '"')
    if not text:
        return ""
    return f"“{inline_text(text, REASON_CHARS)}”"


def header_text(req: Request) -> str:
    """The header: outcome when final, else mode (or URGENT) and the action name."""
    action = plain(req.action, 100)
    if not req.final:
        emoji, label = _LIVE_HEADER[req.mode]
        if req.urgent:
            emoji = "🚨 URGENT ·"
    elif req.status is Status.APPROVED and req.mode in (Mode.AUTO, Mode.NOTIFY):
        emoji, label = _LIVE_HEADER[req.mode]  # nobody decided: "Agent acted" stays true
    else:
        emoji, label = _FINAL_HEADER[req.status]
        if req.status is Status.JUDGED and req.verdict in ("approve", "reject"):
            label = f"Shadow: would {req.verdict} {{action}}"
    return truncate(f"{emoji} {label.format(action=action)}", HEADER_TEXT)


def _deadline_label(req: Request) -> str:
    return {Mode.OVERRIDE: "Veto window ends", Mode.SHADOW: "Answer by"}.get(req.mode, "Deadline")


def _approvers_text(approvers: list[str], limit: int) -> str:
    refs: list[str] = []
    used = 0
    for i, who in enumerate(approvers):
        ref = approver_ref(who)
        if used + units(ref) + 12 > limit:
            refs.append(f"+{len(approvers) - i} more")
            break
        refs.append(ref)
        used += units(ref) + 1
    return " ".join(refs)


def _confidence_text(req: Request, confidence: float) -> str:
    """The confidence, flagged by the thresholds of the policy that routed the request
    (`urgent` and `low_confidence` are set when it is filed: one source for both)."""
    pct = f"{round(confidence * 100)}%"
    if req.urgent:
        return f"⚠️ *{pct}* (very low)"
    low = req.low_confidence
    if low is None:  # filed before routing recorded it: the policy's default threshold
        low = confidence < DEFAULT_GATE_BELOW
    if low:
        return f"⚠️ {pct} (low)"
    return pct


def card_fields(req: Request, *, with_deadline: bool | None = None) -> list[tuple[str, str]]:
    """The facts a reviewer weighs, as (label, mrkdwn value); at most 10 (Block Kit's cap).

    Risk and reversibility are always shown ("Not stated" when the agent left them out):
    their absence is itself worth noticing. The deadline is dropped once the request is
    final unless asked for, since the status line then says when it ended.
    """
    fields: list[tuple[str, str]] = []
    if req.agent:
        fields.append(("Agent", escape_cut(one_line(req.agent, 200), 200)))
    if req.run_id:
        fields.append(("Run", code_inline(req.run_id, 200)))
    if req.requested_by:
        fields.append(("On behalf of", user_ref(req.requested_by)))
    fields.append(("Risk", _RISK_LABEL.get(req.risk, "Not stated") if req.risk else "Not stated"))
    reversible = {True: "Yes", False: "⚠️ *No*", None: "Not stated"}[req.reversible]
    fields.append(("Reversible", reversible))
    if req.confidence is not None:
        fields.append(("Confidence", _confidence_text(req, req.confidence)))
    mode = _MODE_LABEL[req.mode]
    if req.paused:
        mode = "Gate: agent paused by an operator"
    fields.append(("Mode", mode))
    show_deadline = (not req.final) if with_deadline is None else with_deadline
    if req.deadline is not None and show_deadline:
        fields.append((_deadline_label(req), slack_date(req.deadline)))
    if req.quorum > 1:
        fields.append(("Approvals needed", str(req.quorum)))
    if req.approvers:
        fields.append(("Approvers", _approvers_text(req.approvers, FIELD_TEXT - 20)))
    return fields[:10]


def _fields_block(fields: list[tuple[str, str]]) -> SectionBlock:
    return SectionBlock(
        fields=[md(truncate(f"*{label}*\n{value}", FIELD_TEXT)) for label, value in fields[:10]]
    )


# --------------------------------------------------------------------------- parameters


def _param_order(req: Request) -> tuple[list[str], set[str], set[str], set[str]]:
    """Keys in display order (edited first), and the sets of changed, added, removed keys."""
    effective = req.effective_params
    if not _is_edited(req):
        return list(effective), set(), set(), set()
    original = req.params
    added = {k for k in effective if k not in original}
    changed = {k for k in effective if k in original and original[k] != effective[k]}
    removed = {k for k in original if k not in effective}
    first = [k for k in effective if k in changed or k in added]
    rest = [k for k in effective if k not in changed and k not in added]
    return first + [k for k in original if k in removed] + rest, changed, added, removed


def preview_value(key: Any, value: Any, limit: int) -> str:
    """A parameter value as the card shows it: masked, on one line, at most `limit` chars.

    Only the part that can show is scanned for secrets, so a 10,000-char value or a
    100-key object costs little more than the preview itself.
    """
    if isinstance(value, str):
        return MASK if is_secret_key(key) else format_value(masked_head(value, limit), limit)
    return format_value(mask_value(key, value), limit)


def params_section_text(req: Request) -> tuple[str, int]:
    """The parameters as a short list for the card; returns (mrkdwn, number not shown).

    At most PARAM_KEYS keys, each value cut to PARAM_VALUE_CHARS, secrets masked, edited
    values marked with what they were (unless the old value was a secret).
    """
    order, changed, added, removed = _param_order(req)
    effective = req.effective_params
    title = "*Parameters*" + (" ✏️ _edited by a reviewer_" if changed or added or removed else "")
    lines: list[str] = []
    used = units(title) + 60  # leave room for the "+N more" line
    for key in order:
        if len(lines) >= PARAM_KEYS:
            break
        name = code_inline(key, PARAM_KEY_CHARS)
        if key in removed:
            line = f"• ~{name}~ ✏️ _removed_"
        else:
            value = preview_value(key, effective[key], PARAM_VALUE_CHARS)
            line = f"• {name}: {code_inline(value, PARAM_VALUE_CHARS * 6)}"
            if key in added:
                line += " ✏️ _added_"
            elif key in changed:
                old = preview_value(key, req.params[key], 60)
                line += " ✏️ _edited_"
                if old != MASK:
                    line += f" (was {code_inline(old, 60 * 6)})"
        if used + units(line) + 1 > SECTION_TEXT:
            break
        lines.append(line)
        used += units(line) + 1
    hidden = len(order) - len(lines)
    if hidden:
        lines.append(f"_+{hidden} more, see Details_")
    return "\n".join([title, *lines]), hidden


# --------------------------------------------------------------------------- buttons


def _button(text: str, action_id: str, req: Request, item: int | None, **kwargs: Any) -> ButtonElement:
    label = PlainTextObject(text=text, emoji=True)
    if item is not None:
        action_id = list_action_id(action_id, item)
    return ButtonElement(text=label, action_id=action_id, value=req.id, **kwargs)


def _summary_for_dialog(req: Request, budget: int) -> str:
    return ">" + inline_text(req.summary, budget - 1)


def _approve_confirm(req: Request) -> ConfirmObject:
    head = "*This cannot be undone.*\n"
    return ConfirmObject(
        title=PlainTextObject(text=plain(f"Approve {req.action}?", 100)),
        text=md(head + _summary_for_dialog(req, 300 - units(head))),
        confirm=PlainTextObject(text="Approve"),
        deny=PlainTextObject(text="Cancel"),
        style="primary",
    )


def _veto_confirm(req: Request) -> ConfirmObject:
    head = "*The agent already did this.* A veto tells it to roll back where it can.\n"
    return ConfirmObject(
        title=PlainTextObject(text=plain(f"Veto {req.action}?", 100)),
        text=md(head + _summary_for_dialog(req, 300 - units(head))),
        confirm=PlainTextObject(text="Veto"),
        deny=PlainTextObject(text="Cancel"),
        style="danger",
    )


def offers_grant(req: Request) -> bool:
    """Whether the card offers "Approve for 1 hour": the policy in force made the request
    grantable (`Request.grantable`), and nothing keeps a grant from covering the next ones
    (the kill switch, low confidence, a plan)."""
    return (
        req.grantable is not None and req.mode is Mode.GATE and req.status is Status.PENDING
        and not req.paused and not req.low_confidence and not req.batch and not req.items
    )


def decision_buttons(req: Request, *, compact: bool = False, item: int | None = None) -> list[ButtonElement]:
    """The buttons for the request's mode and state; only Details once it is final.

    `compact` (digest, App Home) leaves out Edit, which needs the full card's context;
    `item` is the request's position in such a list (see `list_action_id`). Every
    button's value is the request id and nothing else: state is read from Redis.
    """
    buttons: list[ButtonElement] = []
    if not req.final:
        if req.mode is Mode.GATE and req.status is Status.PENDING:
            confirm = _approve_confirm(req) if req.reversible is False else None
            buttons.append(_button("Approve", ACTION_APPROVE, req, item, style="primary", confirm=confirm))
            buttons.append(_button("Reject", ACTION_REJECT, req, item, style="danger"))
            if not compact:
                buttons.append(_button("Edit", ACTION_EDIT, req, item))
                if offers_grant(req):
                    buttons.append(_button("Approve for 1 hour…", ACTION_GRANT, req, item))
        elif req.mode is Mode.OVERRIDE and req.status is Status.OPEN:
            buttons.append(
                _button("Veto", ACTION_VETO, req, item, style="danger", confirm=_veto_confirm(req))
            )
            buttons.append(_button("Looks good", ACTION_CONFIRM, req, item))
        elif req.mode is Mode.SHADOW and req.status is Status.PENDING:
            buttons.append(_button("Would approve", ACTION_WOULD_APPROVE, req, item, style="primary"))
            buttons.append(_button("Would reject", ACTION_WOULD_REJECT, req, item))
    buttons.append(_button("Details", ACTION_DETAILS, req, item))
    return buttons


# --------------------------------------------------------------------------- status line


def _when(ts: float | None) -> str:
    return f" · {slack_date(ts)}" if ts is not None else ""


def _escalated(req: Request) -> str:
    return f" · 📣 Escalated (step {req.escalated})" if req.escalated > 0 else ""


def _votes(req: Request) -> str:
    return f"{len(req.votes)} of {req.quorum} approvals: {people(req.votes)}"


def _then(reason: str) -> str:
    """A reason after the line, when there is one."""
    return f": {reason}" if reason else ""


def _pending_deadline(deadline: float | None, now: float) -> str:
    if deadline is None:
        return ""
    if now >= deadline:
        return f" · deadline passed {slack_date(deadline)}, closing"
    soon = " (less than 15 min left)" if deadline - now <= SOON_SECONDS else ""
    return f" · expires {slack_date(deadline)}{soon}"


def _pending_line(req: Request, now: float) -> str:
    if req.mode is Mode.SHADOW:
        line = "⏳ Waiting for a verdict (trial run: the agent is not waiting)"
    else:
        line = "⏳ Waiting for approval"
    if req.votes:
        line += f" · {_votes(req)}"
    return line + _escalated(req) + _pending_deadline(req.deadline, now)


def _open_line(req: Request) -> str:
    window = f" · veto window closes {slack_date(req.deadline)}" if req.deadline is not None else ""
    return f"⏱️ Executed{window}{_escalated(req)}"


def _approved_line(req: Request) -> str:
    if req.grant is not None:
        grant = req.grant
        return (
            f"✅ Approved by grant `{grant.id}` from {people(grant.by)}{_when(req.decided_at)}"
            f" · {grant.uses_left} uses left, until {slack_date(grant.until)}"
        )
    if req.by:
        line = f"✅ Approved by {people(req.by)}{_when(req.decided_at)}"
    else:
        line = f"✅ Approved automatically ({req.mode.value} mode){_when(req.decided_at or req.created_at)}"
    if _is_edited(req):
        line += " · with edited parameters"
    return line + _then(_reason(req.comment))


def _given(reason: str) -> str:
    """A reason that must be shown, or that none was given."""
    return f": {reason or '(no reason given)'}"


def _rejected_line(req: Request) -> str:
    return f"❌ Rejected by {people(req.by)}{_when(req.decided_at)}{_given(_reason(req.comment))}"


def _expired_line(req: Request) -> str:
    what = "verdict" if req.mode is Mode.SHADOW else "decision"
    votes = f" ({_votes(req)})" if req.votes else ""
    return f"⌛ Expired with no {what}{_when(req.decided_at or req.deadline)}{votes}"


def _cancelled_line(req: Request) -> str:
    who = f"by {people(req.by)}" if req.by else "by the agent"
    return f"🚫 Cancelled {who}{_when(req.decided_at)}{_then(_reason(req.comment))}"


def _vetoed_line(req: Request) -> str:
    return f"🛑 Vetoed by {people(req.by)}{_when(req.decided_at)}{_given(_reason(req.comment))}"


def _finalized_line(req: Request) -> str:
    if req.by:
        return f"✅ Confirmed by {people(req.by)}{_when(req.decided_at)}"
    return f"✅ Window closed without a veto{_when(req.decided_at or req.deadline)}"


def _judged_line(req: Request) -> str:
    verdict = req.verdict if req.verdict in ("approve", "reject") else "decide"
    return f"🕶️ Shadow: {people(req.by)} would {verdict}{_when(req.decided_at)}{_then(_reason(req.comment))}"


# The line for each final status (the undecided ones also read the clock).
_FINAL_LINES: dict[Status, Callable[[Request], str]] = {
    Status.APPROVED: _approved_line,
    Status.REJECTED: _rejected_line,
    Status.EXPIRED: _expired_line,
    Status.CANCELLED: _cancelled_line,
    Status.VETOED: _vetoed_line,
    Status.FINALIZED: _finalized_line,
    Status.JUDGED: _judged_line,
}


def status_line(req: Request, *, now: float | None = None) -> str:
    """The card's own status, in the last (context) block: who decided, when and why.

    Built only from the stored state; the one piece of free text, a reviewer's reason, is
    escaped, put on one line and in quotes so it cannot pose as another status line.
    """
    if req.status is Status.PENDING:
        line = _pending_line(req, _now(now))
    elif req.status is Status.OPEN:
        line = _open_line(req)
    else:
        line = _FINAL_LINES[req.status](req)
    return truncate(line, CONTEXT_TEXT)


# --------------------------------------------------------------------------- the card


def fallback_text(req: Request) -> str:
    """The message's `text`: what notifications and screen readers get. Escaped too."""
    summary = inline_text(req.summary, 300)
    text = f"{header_text(req)} · “{summary}”"
    if req.urgent and not req.final and req.approvers:
        text += " · " + _approvers_text(req.approvers, 1000)
    return truncate(text, FALLBACK_TEXT)


def _summary_block(req: Request) -> SectionBlock:
    quoted, cut = quote_block(masked_head(req.summary, SUMMARY_CHARS), SUMMARY_CHARS, max_lines=SUMMARY_LINES)
    tail = "\n_Full summary in Details._" if cut else ""
    return SectionBlock(text=md(f"*Summary*\n{quoted}{tail}"))


def _context_block(req: Request) -> SectionBlock | None:
    if not req.context or not req.context.strip():
        return None
    quoted, cut = quote_block(masked_head(req.context, CONTEXT_CHARS), CONTEXT_CHARS, max_lines=CONTEXT_LINES)
    tail = "\n_More in Details._" if cut else ""
    return SectionBlock(text=md(f"*Agent's reasoning*\n{quoted}{tail}"))


def _via_block(req: Request) -> ContextBlock | None:
    """Which API key filed the request: reviewers see which agent is asking (the name is
    agent-facing text like any other, so it is escaped and cut)."""
    if not req.via:
        return None
    return ContextBlock(elements=[md(f"filed by agent key {code_inline(req.via, 100)}")])


def _urgent_block(req: Request) -> SectionBlock | None:
    if not req.urgent or req.final:
        return None
    who = _approvers_text(req.approvers, 2000) if req.approvers else ""
    text = f"🚨 *Urgent*: {who} please decide now." if who else "🚨 *Urgent*: please decide now."
    return SectionBlock(text=md(text))


# Said on the card when a re-run of the agent found its tool call started and never
# finished (`hitl.executions`): the agent did not run it again.
OUTCOME_UNKNOWN_LINE = (
    "⚠️ Outcome unknown: check before retrying. The agent started this call and stopped before it "
    "finished; it was not run again."
)


def card_blocks(req: Request, *, now: float | None = None) -> list[Block]:
    """The card as slack_sdk Block objects (see `build_card` for the dict form)."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=header_text(req), emoji=True))]
    urgent = _urgent_block(req)
    if urgent is not None:
        blocks.append(urgent)
    blocks.append(_summary_block(req))
    blocks.append(_fields_block(card_fields(req)))
    if req.effective_params or _is_edited(req):
        text, _ = params_section_text(req)
        blocks.append(SectionBlock(text=md(text)))
    context = _context_block(req)
    if context is not None:
        blocks.append(context)
    via = _via_block(req)
    if via is not None:
        blocks.append(via)
    blocks.append(ActionsBlock(block_id=actions_block_id(req), elements=decision_buttons(req)))
    if req.execution is ExecutionState.UNKNOWN:
        blocks.append(ContextBlock(elements=[md(OUTCOME_UNKNOWN_LINE)]))
    blocks.append(ContextBlock(elements=[md(status_line(req, now=now))]))
    return blocks


def build_card(req: Request, *, now: float | None = None) -> tuple[str, list[dict]]:
    """(fallback text, blocks) for chat.postMessage / chat.update.

    The last block is always the status context line; decision buttons appear only while
    the request is live; buttons carry only the request id and the actions block id
    carries the version.
    """
    return fallback_text(req), [b.to_dict() for b in card_blocks(req, now=now)]


# --------------------------------------------------------------------------- the digest


def request_line(req: Request, *, summary_chars: int = 300) -> str:
    """One request in a list (digest, App Home): action, risk, reversibility, deadline, summary."""
    bits = [f"*{code_inline(req.action, 110)}*"]
    if req.urgent and not req.final:
        bits.insert(0, "🚨 *URGENT*")
    if req.risk:
        bits.append(_RISK_LABEL[req.risk])
    if req.reversible is False:
        bits.append("⚠️ *irreversible*")
    if req.mode is not Mode.GATE:
        bits.append(req.mode.value)
    if req.deadline is not None and not req.final:
        verb = "window closes" if req.mode is Mode.OVERRIDE else "expires"
        bits.append(f"{verb} {slack_date(req.deadline)}")
    return " · ".join(bits) + "\n>" + inline_text(req.summary, summary_chars)


# The "⋯" menu of a request in a digest; its options' values are "verb|request id".
ACTION_ITEM = "hitl_item"
# Requests one digest card can hold: one section each, plus its header and footer.
DIGEST_CAPACITY = MAX_MESSAGE_BLOCKS - 2

# Menu entries per mode and state: (label, verb). "details" opens the Details modal.
_ITEM_CHOICES = {
    (Mode.GATE, Status.PENDING): [("✅ Approve", "approve"), ("❌ Reject…", "reject")],
    (Mode.OVERRIDE, Status.OPEN): [("🛑 Veto…", "veto"), ("👍 Looks good", "confirm")],
    (Mode.SHADOW, Status.PENDING): [("Would approve", "would_approve"), ("Would reject", "would_reject")],
}


def item_menu(req: Request, index: int) -> OverflowMenuElement:
    """One request's decisions as an overflow menu: a digest line stays one block."""
    choices = [*_ITEM_CHOICES.get((req.mode, req.status), []), ("🔎 Details", "details")]
    confirm = _approve_confirm(req) if req.reversible is False and req.mode is Mode.GATE else None
    return OverflowMenuElement(
        action_id=list_action_id(ACTION_ITEM, index),
        options=[Option(text=PlainTextObject(text=text), value=f"{verb}|{req.id}") for text, verb in choices],
        confirm=confirm,
    )


def parse_item_value(value: str) -> tuple[str, str]:
    """("approve", request id) from a digest menu option's value."""
    verb, _, request_id = value.partition("|")
    return verb, request_id


def build_digest(reqs: list[Request], *, now: float | None = None) -> tuple[str, list[dict]]:
    """Several waiting requests in one message, for bursts: each one line with its own menu.

    One section per request (its decisions in an overflow menu, so 48 fit in Slack's 50
    blocks); the rest is counted in a "+N more" line pointing at `/hitl list`.
    """
    live = sum(1 for r in reqs if not r.final)
    total = len(reqs)
    if live:
        title = f"⏳ {live} {'request' if live == 1 else 'requests'} waiting for a decision"
    else:
        title = f"{total} {'request' if total == 1 else 'requests'}, all decided"
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=truncate(title, HEADER_TEXT), emoji=True))]
    lines = _item_lines(reqs, DIGEST_CAPACITY, now)
    blocks.extend(lines)
    shown = len(lines)
    if shown < total:
        blocks.append(ContextBlock(elements=[md(f"+{total - shown} more, see `/hitl list`")]))
    actions = ", ".join(dict.fromkeys(one_line(r.action, 100) for r in reqs[:50]))
    text = truncate(escape_cut(mask_text(f"{title}: {actions}"), FALLBACK_TEXT), FALLBACK_TEXT)
    return text, [b.to_dict() for b in blocks]


def _item_lines(reqs: list[Request], capacity: int, now: float | None) -> list[Block]:
    """One section per request, its decisions in a menu (Details only once decided)."""
    blocks: list[Block] = []
    for index, req in enumerate(reqs[:capacity]):
        text = request_line(req, summary_chars=200)
        if req.final:
            text += "\n" + status_line(req, now=now)
        elif req.votes:
            text += f"\n{len(req.votes)} of {req.quorum} approvals"
        # a decided request keeps only its Details button (a menu needs two choices)
        accessory = (
            _button("Details", ACTION_DETAILS, req, index) if req.final else item_menu(req, index)
        )
        blocks.append(
            SectionBlock(
                block_id=actions_block_id(req, item=index),
                text=md(truncate(text, SECTION_TEXT)),
                accessory=accessory,
            )
        )
    return blocks


# Plan cards: decide every item at once.
ACTION_PLAN_APPROVE = "hitl_plan_approve"
ACTION_PLAN_REJECT = "hitl_plan_reject"
# Item lines a plan card shows (the card's own blocks take the rest of Slack's 50).
PLAN_CAPACITY = MAX_MESSAGE_BLOCKS - 8


def build_plan(plan: Request, items: list[Request], *, now: float | None = None) -> tuple[str, list[dict]]:
    """One card for a whole plan: its summary, each step with its own menu, and buttons to
    approve or reject every step still waiting at once."""
    waiting = sum(1 for i in items if not i.final)
    approved = sum(1 for i in items if i.status is Status.APPROVED)
    title = f"📋 Plan: {plan.action}" if not plan.final else f"📋 Plan {plan.status.value}: {plan.action}"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(title, HEADER_TEXT), emoji=True)),
        _summary_block(plan),
        SectionBlock(text=md(
            f"*{len(items)} steps* · {approved} approved · {waiting} waiting · "
            f"{len(items) - approved - waiting} rejected or expired"
        )),
        DividerBlock(),
    ]
    lines = _item_lines(items, PLAN_CAPACITY, now)
    blocks.extend(lines)
    if len(lines) < len(items):
        more = len(items) - len(lines)
        blocks.append(ContextBlock(elements=[md(f"+{more} more steps, decided with the plan")]))
    via = _via_block(plan)
    if via is not None:
        blocks.append(via)
    if waiting and not plan.final:
        confirm = None
        if any(i.reversible is False for i in items):
            confirm = ConfirmObject(
                title="Approve every step?",
                text=f"{waiting} steps will run, some cannot be undone.",
                confirm="Approve all", deny="Cancel", style="primary",
            )
        blocks.append(ActionsBlock(block_id=actions_block_id(plan), elements=[
            ButtonElement(text=f"Approve all {waiting}", action_id=ACTION_PLAN_APPROVE, value=plan.id,
                          style="primary", confirm=confirm),
            ButtonElement(text="Reject all", action_id=ACTION_PLAN_REJECT, value=plan.id, style="danger"),
        ]))
    blocks.append(ContextBlock(elements=[md(status_line(plan, now=now))]))
    summary = mask_text(one_line(plan.summary, FALLBACK_TEXT))
    text = truncate(escape_cut(f"{mask_text(one_line(title))}: {summary}", FALLBACK_TEXT), FALLBACK_TEXT)
    return text, [b.to_dict() for b in blocks]


# --------------------------------------------------------------------------- reminders

# Most people a reminder mentions; the rest are counted.
REMINDER_MENTIONS = 20


def reminder_text(req: Request, step: int, notify: list[str]) -> str:
    """The escalation reminder posted in the card's thread.

    Only well-formed user (`U…`/`W…`) and group (`S…`) ids become mentions; anything else
    an agent put in `approvers` shows as escaped text, so `<!channel>` or a link cannot
    ride along in a message from the bot.
    """
    deadline = slack_date(req.deadline, "{date_short_pretty} at {time}") if req.deadline else "soon"
    refs = [approver_ref(who) for who in notify[:REMINDER_MENTIONS]]
    if len(notify) > REMINDER_MENTIONS:
        refs.append(f"+{len(notify) - REMINDER_MENTIONS} more")
    text = f"⏰ Still waiting for a decision (reminder {step}); expires {deadline}. {' '.join(refs)}"
    return truncate(text.strip(), FALLBACK_TEXT)
