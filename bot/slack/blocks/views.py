"""Modals (reject, veto, edit, details), the App Home tab and the `/hitl` replies.

Pure functions from requests to Block Kit dicts, built with `slack_sdk.models` so limits
are checked at `to_dict()`. Modals carry where they came from in `private_metadata`
(request id, version, channel, message ts) so the submission handler can re-read the
request from Redis, refuse it if the card went stale, and update the card in place.

Secrets in the edit modal: the edit box is prefilled with the masked parameters, so a
secret is never shown in clear (not even to the reviewer, and never stored in Slack's
view state). On submit, `parse_edited_params` puts the stored value back wherever the
mask was left untouched; a reviewer who wants a new secret types over the mask.
"""

from __future__ import annotations

import json
import time
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.blocks.cards import (
    SECTION_TEXT,
    actions_block_id,
    card_blocks,
    card_fields,
    decision_buttons,
    header_text,
    md,
    request_line,
    status_line,
)
from bot.slack.blocks.text import (
    channel_ref,
    clean,
    code_block_text,
    code_inline,
    escape,
    escape_cut,
    inline_text,
    one_line,
    people,
    plain,
    pretty_json,
    quote_block,
    slack_date,
    split_for_blocks,
    truncate,
    units,
    user_ref,
)
from hitl.masking import (
    MASK,
    MASK_MARGIN,
    clip_json,
    compact_size,
    is_secret_key,
    mask_params,
    mask_value,
    masked_head,
    restore_masked,
)
from hitl.models import MAX_PARAMS_BYTES, CardPlacement, Placed, Request
from hitl.status import Mode

VIEW_REJECT = "hitl_reject_modal"
VIEW_VETO = "hitl_veto_modal"
VIEW_EDIT = "hitl_edit_modal"
VIEW_DETAILS = "hitl_details_modal"

# Input block ids and action ids (the same string for both, as the submission handler reads them).
INPUT_REASON = "reason"
INPUT_PARAMS = "params"
INPUT_COMMENT = "comment"

# Slack's caps: 100 blocks per modal or Home tab, 3,000 chars in a plain_text_input,
# 3,000 in private_metadata, a view payload of about 250 kB.
MAX_VIEW_BLOCKS = 100
INPUT_MAX_CHARS = 3000
METADATA_MAX_CHARS = 3000
# Budget for all variable text in one view, measured as ASCII-escaped JSON (the worst case
# for how the payload is sent), leaving room for the blocks' own structure under 250 kB.
VIEW_TEXT_BUDGET = 200_000
REASON_MAX_CHARS = 2000


# Text prepared for one part of a modal: (pieces, one per section; the whole text's size in
# chars, for "N chars not shown"; whether the pieces hold all of it).
Chunks = tuple[list[str], int, bool]


def _cost(text: str) -> int:
    """Bytes `text` costs in the view payload, as json.dumps with ASCII escapes sends it."""
    return len(json.dumps(text))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=md(text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[md(truncate(text, SECTION_TEXT))])


# --------------------------------------------------------------------------- private metadata


def private_metadata(req: Request, channel: str | None, ts: str | None) -> str:
    """Compact JSON `{"id", "v", "c", "ts"}`: the request, its version, and the card's place."""
    data = {"id": req.id, "v": req.version, "c": channel, "ts": ts}
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if len(text) > METADATA_MAX_CHARS:
        raise ValueError(f"private_metadata would be {len(text)} chars; Slack allows {METADATA_MAX_CHARS}")
    return text


def parse_private_metadata(text: str | None) -> dict[str, Any]:
    """Read back `private_metadata`; ValueError if it is not what our modals write."""
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError:
        raise ValueError("this form's metadata is not readable; open it again from the card") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ValueError("this form does not say which request it is for; open it again from the card")
    version = data.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError("this form does not say which version of the request it shows")
    channel, ts = data.get("c"), data.get("ts")
    return {
        "id": data["id"],
        "v": version,
        "c": channel if isinstance(channel, str) else None,
        "ts": ts if isinstance(ts, str) else None,
    }


# --------------------------------------------------------------------------- reject / veto


def _what_block(req: Request, lead: str) -> SectionBlock:
    quoted, _ = quote_block(masked_head(req.summary, 900), 900, max_lines=5)
    return _section(f"{lead} *{code_inline(req.action, 110)}*\n{quoted}")


def _reason_input(*, placeholder: str, hint: str, optional: bool) -> InputBlock:
    return InputBlock(
        block_id=INPUT_REASON,
        label=PlainTextObject(text="Reason" + (" (optional)" if optional else "")),
        element=PlainTextInputElement(
            action_id=INPUT_REASON,
            multiline=True,
            max_length=REASON_MAX_CHARS,
            placeholder=PlainTextObject(text=placeholder),
            focus_on_load=True,
        ),
        hint=PlainTextObject(text=hint),
        optional=optional,
    )


# The reject modal's Critical checkbox: ticked, the action steps back down the autonomy
# ladder at once (`hitl.autonomy.after_decision`).
INPUT_CRITICAL = "critical"


def _critical_input() -> InputBlock:
    return InputBlock(
        block_id=INPUT_CRITICAL,
        label=PlainTextObject(text="Severity"),
        element=CheckboxesElement(
            action_id=INPUT_CRITICAL,
            options=[Option(value=INPUT_CRITICAL, label="Critical: this must not happen unreviewed")],
        ),
        hint=PlainTextObject(text="Critical moves this action back one step of autonomy at once."),
        optional=True,
    )


def reject_modal(req: Request, *, channel: str | None, ts: str | None) -> dict:
    """Ask why before rejecting (the agent gets the reason); shadow asks what you would do."""
    blocks: list[Block]
    if req.mode is Mode.SHADOW:
        title, submit = "Would reject", "Save verdict"
        blocks = [
            _what_block(req, "You would reject"),
            _context("🕶️ Trial run: the agent is not waiting; your verdict is only measured."),
            _reason_input(
                placeholder="What would you have objected to?",
                hint="Helps decide when this agent can be trusted without review.",
                optional=True,
            ),
        ]
    else:
        title, submit = "Reject request", "Reject"
        blocks = [
            _what_block(req, "Reject"),
            _reason_input(
                placeholder="e.g. Only email customers more than 30 days overdue",
                hint="The agent receives this reason and can try again differently.",
                optional=False,
            ),
            _critical_input(),
        ]
    return View(
        type="modal",
        callback_id=VIEW_REJECT,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata(req, channel, ts),
        blocks=blocks,
    ).to_dict()


def veto_modal(req: Request, *, channel: str | None, ts: str | None) -> dict:
    """Veto an action that already ran: the agent learns it must roll back, and why."""
    blocks: list[Block] = [
        _what_block(req, "Veto"),
        _context("⏱️ *The agent already did this.* A veto tells it to roll back where it can."),
        _reason_input(
            placeholder="e.g. Wrong customer list: undo and wait for the fixed export",
            hint="The agent receives this reason with the veto.",
            optional=False,
        ),
    ]
    return View(
        type="modal",
        callback_id=VIEW_VETO,
        title=PlainTextObject(text="Veto action"),
        submit=PlainTextObject(text="Veto"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata(req, channel, ts),
        blocks=blocks,
    ).to_dict()


# --------------------------------------------------------------------------- edit


# A value longer than this as compact JSON is never offered for editing: even masked it
# could not fit the 3,000-char box (only a secret-heavy value could shrink that much).
_EDITABLE_RAW_MAX = 8_000


def editable_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The masked parameters that fit Slack's 3,000-char edit box, and the keys left out.

    When everything does not fit, the largest values are left out (and kept unchanged on
    submit) so the most keys stay editable. Deterministic: `parse_edited_params` calls it
    again on the same parameters to know which keys were not in the box.
    """
    masked: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    hidden: set[str] = set()
    for key, value in params.items():
        # Cheap checks first: pretty JSON is never shorter than compact JSON.
        if not is_secret_key(key) and compact_size(value) > _EDITABLE_RAW_MAX:
            hidden.add(key)
            continue
        masked[key] = mask_value(key, value)
        if compact_size({key: masked[key]}) > INPUT_MAX_CHARS:
            hidden.add(key)
            continue
        sizes[key] = units(pretty_json({key: masked[key]})) - 4  # its lines inside "{\n … \n}"
    total = 4 + sum(sizes.values()) + 2 * max(0, len(sizes) - 1)
    for key in sorted(sizes, key=lambda k: -sizes[k]):
        if total <= INPUT_MAX_CHARS:
            break
        hidden.add(key)
        total -= sizes[key] + 2
    shown = {k: masked[k] for k in params if k not in hidden}
    return shown, [k for k in params if k in hidden]


def edit_modal(req: Request, *, channel: str | None, ts: str | None) -> dict:
    """Edit the parameters as JSON, then approve with them (and an optional comment)."""
    shown, hidden = editable_params(req.effective_params)
    blocks: list[Block] = [_what_block(req, "Approve with edited parameters:")]
    if req.reversible is False:
        blocks.append(_context("⚠️ *This cannot be undone.* Submitting approves the action."))
    hint = f"Values shown as {MASK} are secrets: they keep their stored value unless you replace them."
    if hidden:
        names = ", ".join(one_line(k, 60) for k in hidden[:20]) + (" …" if len(hidden) > 20 else "")
        hint += f" Too large to edit here and kept as they are: {names}."
    blocks.append(
        InputBlock(
            block_id=INPUT_PARAMS,
            label=PlainTextObject(text="Parameters (JSON)"),
            element=PlainTextInputElement(
                action_id=INPUT_PARAMS,
                multiline=True,
                initial_value=pretty_json(shown),
                max_length=INPUT_MAX_CHARS,
                focus_on_load=True,
            ),
            hint=PlainTextObject(text=plain(hint, 1900)),
        )
    )
    blocks.append(
        InputBlock(
            block_id=INPUT_COMMENT,
            label=PlainTextObject(text="Comment (optional)"),
            element=PlainTextInputElement(
                action_id=INPUT_COMMENT,
                multiline=True,
                max_length=REASON_MAX_CHARS,
                placeholder=PlainTextObject(text="What you changed and why"),
            ),
            hint=PlainTextObject(text="The agent receives this with the edited parameters."),
            optional=True,
        )
    )
    return View(
        type="modal",
        callback_id=VIEW_EDIT,
        title=PlainTextObject(text="Edit and approve"),
        submit=PlainTextObject(text="Approve with edits"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata(req, channel, ts),
        blocks=blocks,
    ).to_dict()


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f'The key "{key}" appears twice. Keep only one.')
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value. Use a number or null.")


def parse_edited_params(text: str | None, original: dict[str, Any]) -> dict[str, Any]:
    """The reviewer's edited parameters, with masked secrets and left-out keys restored.

    `original` must be the parameters the modal was built from (the request's effective
    parameters; the app's version check guarantees they have not changed since). Raises
    ValueError with a message for the reviewer (shown next to the field with
    `response_action="errors"`) when the text is not a JSON object.
    """
    text = (text or "").strip()
    if not text:
        raise ValueError('Enter the parameters as a JSON object, e.g. {"key": "value"}; {} for none.')
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if "double quotes" in exc.msg:
            hint = " Keys and strings need double quotes, and there can be no comma after the last item."
        elif "delimiter" in exc.msg:
            hint = " Check for a missing comma or quote."
        raise ValueError(
            f"That is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).{hint}"
        ) from None
    if not isinstance(data, dict):
        kinds = {list: "a list", str: "a string", bool: "true/false", type(None): "null"}
        kind = kinds.get(type(data), "a number")
        raise ValueError(f'The parameters must be a JSON object like {{"key": "value"}}, not {kind}.')
    _, hidden = editable_params(original)
    result = restore_masked(data, original)
    for key in hidden:
        if key not in result:
            result[key] = original[key]
    size = len(json.dumps(result, ensure_ascii=False).encode())
    if size > MAX_PARAMS_BYTES:
        raise ValueError(f"The parameters are {size:,} bytes as JSON; the limit is {MAX_PARAMS_BYTES:,}.")
    return result


# --------------------------------------------------------------------------- details


class _ViewBudget:
    """Blocks and bytes left in one view, so long text is cut where it must be and said so."""

    def __init__(self, max_blocks: int = MAX_VIEW_BLOCKS, max_bytes: int = VIEW_TEXT_BUDGET) -> None:
        self.blocks: list[Block] = []
        self.max_blocks = max_blocks
        self.bytes_left = max_bytes
        self.cut_chars = 0

    def add(self, block: Block, text: str) -> None:
        self.blocks.append(block)
        self.bytes_left -= _cost(text)

    def add_chunks(
        self, label: str, chunks: Chunks, max_blocks: int, reserve: int, share: float = 1.0
    ) -> None:
        """Add `label` + chunks (one section each) within `max_blocks` and the byte budget.

        `reserve` blocks stay free for what comes after, and this group may use only
        `share` of the bytes left. What does not fit is counted in `cut_chars` and replaced
        by one line saying how much is missing.
        """
        pieces, total, complete = chunks
        allowed = max(1, min(max_blocks, self.max_blocks - len(self.blocks) - reserve))
        spendable = int((self.bytes_left - 1_000 * (reserve + 1)) * share)
        texts = [f"{label}\n{piece}" if i == 0 else piece for i, piece in enumerate(pieces)]
        if complete and len(texts) <= allowed and sum(_cost(t) for t in texts) <= spendable:
            for text in texts:
                self.add(_section(text), text)
            return
        shown_units = 0
        for piece, text in list(zip(pieces, texts, strict=True))[: allowed - 1]:
            spendable -= _cost(text)
            if spendable < 0:
                break
            self.add(_section(text), text)
            shown_units += units(piece)
        missing = max(1, total - shown_units)
        self.cut_chars += missing
        note = f"✂️ _Truncated, about {missing:,} more chars not shown here._"
        if shown_units == 0:
            note = f"{label}\n{note}"
        self.add(_section(note), note)


# Pieces asked for per group: more than a modal can hold, so "all shown" is exact below it.
_MAX_PIECES = MAX_VIEW_BLOCKS + 1


def _quote_chunks(text: str, label: str, max_blocks: int) -> Chunks:
    """Agent text as `>` quoted pieces, one per section; (pieces, total size, all of it?)."""
    cleaned = clean(text).strip("\n")
    budget = max_blocks * SECTION_TEXT
    escaped = escape(masked_head(cleaned, budget))
    pieces = split_for_blocks(
        escaped, SECTION_TEXT - units(label) - 2, line_overhead=1, max_pieces=_MAX_PIECES
    )
    quoted = [">" + piece.replace("\n", "\n>") for piece in pieces]
    complete = len(cleaned) <= budget + MASK_MARGIN and len(pieces) < _MAX_PIECES
    total = units(escaped) + escaped.count("\n") + 1 + max(0, len(cleaned) - budget)
    return quoted, total, complete


# Most parameter text prepared for the Details modal: more than the view can hold, so the
# modal is full before this runs out, yet megabytes of parameters stay quick to render.
_DETAILS_PARAMS_CHARS = 150_000


def _code_chunks(params: dict[str, Any], label: str) -> Chunks:
    """Masked, pretty-printed parameters as ``` pieces; (pieces, total size, all of it?)."""
    clipped = clip_json(params, _DETAILS_PARAMS_CHARS)
    escaped = code_block_text(pretty_json(mask_params(clipped)))
    pieces = split_for_blocks(escaped, SECTION_TEXT - units(label) - 10, max_pieces=_MAX_PIECES)
    not_prepared = max(0, compact_size(params) - compact_size(clipped))
    complete = not_prepared == 0 and clipped == params and len(pieces) < _MAX_PIECES
    return [f"```\n{piece}\n```" for piece in pieces], units(escaped) + not_prepared, complete


def _more_fields(req: Request, card: CardPlacement) -> list[tuple[str, str]]:
    fields = [("Request id", code_inline(req.id, 200)), ("Created", slack_date(req.created_at))]
    channel = card.channel or req.channel
    if channel:
        fields.append(("Channel", channel_ref(channel)))
    if req.idempotency_key:
        fields.append(("Idempotency key", code_inline(req.idempotency_key, 250)))
    if req.votes:
        fields.append(("Approvals so far", f"{len(req.votes)} of {req.quorum}: {people(req.votes)}"))
    if req.escalated:
        fields.append(("Escalated", f"step {req.escalated}"))
    return fields


def details_modal(req: Request, card: CardPlacement | None = None) -> dict:
    """Everything about a request: full summary, reasoning and parameters (secrets masked).

    `card` is where the request shows (its channel is listed, and the modal remembers the
    card); without it, the routed channel is shown.

    Long text is split across sections of at most 3,000 chars, within 100 blocks and the
    view's size; if even that is not enough, each cut part says how much is not shown.
    """
    budget = _ViewBudget()
    budget.add(HeaderBlock(text=PlainTextObject(text=header_text(req), emoji=True)), req.action)
    status = status_line(req)
    budget.add(_context(status), status)
    fields = card_fields(req, with_deadline=True)
    budget.add(SectionBlock(fields=[md(truncate(f"*{k}*\n{v}", 1900)) for k, v in fields]), str(fields))
    card = card or CardPlacement()
    more = _more_fields(req, card)
    budget.add(SectionBlock(fields=[md(truncate(f"*{k}*\n{v}", 1900)) for k, v in more]), str(more))
    budget.add(DividerBlock(), "")

    groups: list[tuple[str, Chunks, int]] = [
        ("*Summary*", _quote_chunks(req.summary, "*Summary*", 6), 6),
    ]
    if req.context and req.context.strip():
        label = "*Agent's reasoning*"
        groups.append((label, _quote_chunks(req.context, label, 15), 15))
    if req.comment and req.comment.strip():
        label = "*Reviewer's comment*"
        groups.append((label, _quote_chunks(req.comment, label, 2), 2))
    if req.decided_params is not None and req.decided_params != req.params:
        label = "*Parameters, as edited by a reviewer*"
        groups.append((label, _code_chunks(req.decided_params, label), 0))
        label = "*Parameters, as the agent sent them*"
        groups.append((label, _code_chunks(req.params, label), MAX_VIEW_BLOCKS))
    elif req.params:
        groups.append(("*Parameters*", _code_chunks(req.params, "*Parameters*"), MAX_VIEW_BLOCKS))
    for i, (label, chunks, cap) in enumerate(groups):
        reserve = 2 * (len(groups) - i - 1) + 1  # later groups get a label + a note at least; footer
        share = 1.0
        if cap == 0:  # edited parameters: share what is left with the original ones
            cap, share = max(2, (MAX_VIEW_BLOCKS - len(budget.blocks) - 1) // 2), 0.5
        budget.add_chunks(label, chunks, cap, reserve, share)
    if not req.params and not req.decided_params:
        budget.add(_section("*Parameters*\n_None._"), "")
    footer = f"Secrets are shown as {MASK}."
    if budget.cut_chars:
        footer += f" Truncated, {budget.cut_chars:,} chars not shown here; the full request is kept."
    budget.blocks.append(_context(footer))
    return View(
        type="modal",
        callback_id=VIEW_DETAILS,
        title=PlainTextObject(text="Request details"),
        close=PlainTextObject(text="Close"),
        private_metadata=private_metadata(req, card.channel, card.ts),
        blocks=budget.blocks[:MAX_VIEW_BLOCKS],
    ).to_dict()


# --------------------------------------------------------------------------- App Home


def home_view(user_id: str, placed: list[Placed], *, now: float | None = None) -> dict:
    """The App Home tab: requests waiting for this user, each with its buttons and the
    channel its card is in."""
    now = time.time() if now is None else now
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text="Waiting for you", emoji=True)),
        _context(f"Requests {user_ref(user_id)} can decide · updated {slack_date(now)}"),
    ]
    live = [p for p in placed if not p.req.final]
    if not live:
        blocks.append(
            _section(
                "🎉 *Nothing is waiting for you.*\n"
                "New requests you can decide show up here and in their channel."
            )
        )
    per_request = 3  # section, actions, divider
    room = (MAX_VIEW_BLOCKS - len(blocks) - 1) // per_request
    for index, (req, card) in enumerate((p.req, p.card) for p in live[:room]):
        where = card.channel or req.channel
        line = request_line(req, summary_chars=600)
        if where:
            line += f"\nin {channel_ref(where)}"
        blocks.append(_section(truncate(line, SECTION_TEXT)))
        blocks.append(
            ActionsBlock(
                block_id=actions_block_id(req, item=index),
                elements=decision_buttons(req, compact=True, item=index),
            )
        )
        blocks.append(DividerBlock())
    if len(live) > room:
        blocks.append(_context(f"+{len(live) - room} more, see `/hitl list mine`"))
    return View(type="home", callback_id="hitl_home", blocks=blocks).to_dict()


# --------------------------------------------------------------------------- /hitl replies


def _packed_sections(lines: list[str], max_blocks: int) -> tuple[list[Block], int]:
    """Pack lines into as few sections as fit (3,000 chars each); returns (blocks, lines left out)."""
    blocks: list[Block] = []
    current: list[str] = []
    size = 0
    for i, raw in enumerate(lines):
        line = truncate(raw, SECTION_TEXT)
        if current and size + units(line) + 1 > SECTION_TEXT:
            if len(blocks) + 1 >= max_blocks:
                blocks.append(_section("\n".join(current)))
                return blocks, len(lines) - i
            blocks.append(_section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += units(line) + 1
    if current:
        blocks.append(_section("\n".join(current)))
    return blocks, 0


def _dicts(blocks: list[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]


def status_blocks(
    counts_by_channel: dict[str, int],
    counts_by_mode: dict[str, int],
    oldest: Request | None,
    next_deadline: float | None,
    hidden: int = 0,
) -> list[dict]:
    """`/hitl status`: how much is waiting, where, in which mode, and what is most pressing.

    `hidden` counts requests in channels the asker is not in: shown as a number only.
    """
    total = sum(counts_by_channel.values())
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="📊 Approval queue", emoji=True))]
    fields = [("Waiting", str(total))]
    if next_deadline is not None:
        fields.append(("Next deadline", slack_date(next_deadline)))
    if oldest is not None:
        fields.append(
            (
                "Oldest",
                f"{code_inline(oldest.action, 110)} `{escape_cut(oldest.id, 80)}`\n"
                f"since {slack_date(oldest.created_at)}",
            )
        )
    blocks.append(SectionBlock(fields=[md(truncate(f"*{k}*\n{v}", 1900)) for k, v in fields]))
    if not total:
        blocks.append(_section("🎉 Nothing is waiting."))
    by_channel = sorted(counts_by_channel.items(), key=lambda kv: -kv[1])
    by_mode = sorted(counts_by_mode.items(), key=lambda kv: -kv[1])
    if by_channel:
        lines = ["*By channel*"] + [f"• {channel_ref(c)}: {n}" for c, n in by_channel]
        packed, left = _packed_sections(lines, 20)
        blocks += packed
        if left:
            blocks.append(_context(f"+{left} more channels"))
    if by_mode:
        lines = ["*By mode*"] + [f"• {escape_cut(m, 40)}: {n}" for m, n in by_mode]
        packed, _ = _packed_sections(lines, 5)
        blocks += packed
    if hidden:
        blocks.append(_context(f"🔒 {hidden} more waiting in channels you are not a member of."))
    return _dicts(blocks)


def _list_line(req: Request) -> str:
    bits = [f"`{escape_cut(req.id, 80)}`", f"*{code_inline(req.action, 110)}*", escape(req.status.value)]
    if req.mode is not Mode.GATE:
        bits.append(req.mode.value)
    if req.urgent and not req.final:
        bits.insert(0, "🚨")
    if req.deadline is not None and not req.final:
        bits.append(f"expires {slack_date(req.deadline)}")
    summary = inline_text(req.summary, 140)
    return " · ".join(bits) + f"\n      {summary}"


def list_blocks(reqs: list[Request], title: str) -> list[dict]:
    """`/hitl list`: one compact line per request, packed into as few blocks as fit."""
    blocks: list[Block] = [_section(f"*{escape_cut(title, 200)}* ({len(reqs)})")]
    if not reqs:
        blocks.append(_section("_Nothing here._"))
        return _dicts(blocks)
    packed, left = _packed_sections([_list_line(r) for r in reqs], 46)
    blocks += packed
    hint = "Use `/hitl show <id>` for one request."
    if left:
        hint = f"+{left} more not shown. " + hint
    blocks.append(_context(hint))
    return _dicts(blocks)


def _event_time(event: dict[str, Any]) -> float | None:
    for key in ("at", "ts", "time", "timestamp"):
        value = event.get(key)
        try:
            if value is not None:
                return float(value)
        except (TypeError, ValueError):
            continue
    stream_id = event.get("id")
    if isinstance(stream_id, str) and "-" in stream_id and stream_id.split("-")[0].isdigit():
        return int(stream_id.split("-")[0]) / 1000  # a Redis stream id: "<ms>-<seq>"
    return None


def _event_line(event: dict[str, Any]) -> str:
    kind = event.get("type") or event.get("event") or "event"
    bits = [f"*{escape_cut(one_line(kind, 40), 40)}*"]
    at = _event_time(event)
    if at is not None:
        bits.insert(0, slack_date(at))
    by = event.get("by") or event.get("user")
    if isinstance(by, str):
        by = [b for b in by.replace(",", " ").split() if b]
    if isinstance(by, list) and by:
        bits.append("by " + people([str(b) for b in by]))
    status = event.get("status")
    if status:
        bits.append(f"→ {escape_cut(one_line(status, 30), 30)}")
    comment = event.get("comment") or event.get("reason")
    line = " · ".join(bits)
    if comment:
        text = one_line(comment, 300).replace("“", '"').replace("”", '"')
        line += f": “{inline_text(text, 300)}”"
    return "• " + line


def show_blocks(req: Request, events: list[dict[str, Any]]) -> list[dict]:
    """`/hitl show <id>`: the card itself (with its buttons) and the request's history."""
    blocks: list[Block] = list(card_blocks(req))
    blocks.append(DividerBlock())
    if not events:
        blocks.append(_section("*History*\n_No events recorded._"))
        return _dicts(blocks)
    room = 50 - len(blocks) - 1
    lines = ["*History*"] + [_event_line(e) for e in events[-100:]]
    packed, left = _packed_sections(lines, room)
    blocks += packed
    skipped = left + max(0, len(events) - 100)
    if skipped:
        blocks.append(_context(f"{skipped} more events not shown."))
    return _dicts(blocks)


_HELP = [
    ("/hitl status", "Queue size by channel and mode, the oldest request, the next deadline."),
    ("/hitl list [#channel|mine]", "Waiting requests: all, one channel's, or the ones you can decide."),
    ("/hitl show <id>", "One request: its card, its buttons and its history."),
    ("/hitl stats [action]", "Decisions, approval rate and time to decide, per action."),
    ("/hitl grants", "Live grants (approve-for-a-while) with Revoke; `/hitl grants revoke <id|action>`."),
    ("/hitl pause [action]", "Kill switch (admins): new requests, or one action's, wait for an approval."),
    ("/hitl resume [action]", "Lift a pause (admins)."),
    ("/hitl policy", "The policy in force: modes per action, risk and reversibility."),
    ("/hitl dashboard", "A private link to the live dashboard: queue, time to decision, autonomy readiness."),
    ("/hitl help", "This help."),
]


def help_blocks() -> list[dict]:
    """`/hitl help`: every subcommand with its arguments and what it does."""
    lines = [f"`{cmd}`: {what}" for cmd, what in _HELP]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text="hitl: approvals for AI agents", emoji=True)),
        _section("\n".join(lines)),
        _context("Decide on the cards themselves; the App Home tab lists what is waiting for you."),
    ]
    return _dicts(blocks)


__all__ = [
    "INPUT_COMMENT",
    "INPUT_CRITICAL",
    "INPUT_PARAMS",
    "INPUT_REASON",
    "VIEW_DETAILS",
    "VIEW_EDIT",
    "VIEW_REJECT",
    "VIEW_VETO",
    "details_modal",
    "edit_modal",
    "editable_params",
    "help_blocks",
    "home_view",
    "list_blocks",
    "parse_edited_params",
    "parse_private_metadata",
    "private_metadata",
    "reject_modal",
    "show_blocks",
    "status_blocks",
    "veto_modal",
]
