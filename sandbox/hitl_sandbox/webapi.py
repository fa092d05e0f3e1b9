"""Slack Web API methods, answered the way Slack answers them.

``call(workspace, method, args, token)`` is the whole API: the HTTP server decodes a
request into arguments and a token, this module decides the answer. Keeping the
decision here, away from HTTP, lets tests and the future browser page reuse it.

Behaviour copied from Slack on purpose, because the bot must cope with it:
- every answer is HTTP 200 with ``{"ok": false, "error": ...}`` on failure, except
  rate limits (429 + ``Retry-After``) and injected server errors;
- a missing token is ``not_authed``, an unknown one ``invalid_auth``; an unknown method
  is ``unknown_method`` (checked before the token);
- block problems in messages are ``invalid_blocks`` with Slack's JSON-pointer messages in
  ``response_metadata.messages``; problems in views are ``invalid_arguments``;
- read methods (users.info, conversations.history...) take form or query arguments
  only: Slack ignores a JSON body there, so a client posting JSON gets the "missing
  argument" answer it would get from Slack;
- a ``token`` inside a JSON body is ignored: JSON callers must use the Authorization header.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hitl_sandbox.blockcheck import (
    MAX_VIEW_BYTES,
    BlocksFormatError,
    check_message_blocks,
    check_view,
    parse_blocks,
    parse_json_arg,
    view_size,
)
from hitl_sandbox.workspace import Channel, Message, SlackError, Workspace

MAX_TEXT = 40_000

# Key of the one-entry body dict ``call`` returns for a non-JSON answer (an injected HTML
# error page); the server writes the value as-is.
RAW_BODY_KEY = "__raw__"

# Methods whose Slack docs list only application/x-www-form-urlencoded (JSON bodies ignored).
FORM_ONLY = frozenset(
    {
        "api.test",
        "auth.test",
        "chat.getPermalink",
        "conversations.history",
        "conversations.info",
        "conversations.members",
        "conversations.replies",
        "usergroups.list",
        "usergroups.users.list",
        "users.info",
        "users.lookupByEmail",
    }
)

# The scope each method needs (missing_scope when the workspace's scopes lack it).
NEEDED_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "users.info": ("users:read",),
    "users.lookupByEmail": ("users:read.email",),
    "usergroups.users.list": ("usergroups:read",),
    "usergroups.list": ("usergroups:read",),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.members": ("channels:read", "groups:read"),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.open": ("im:write",),
}


class ConnectionDropped(Exception):
    """Raised by ``call`` when an injected fault says to cut the connection without answering."""


@dataclass
class Context:
    """Who is calling: the workspace and the user the token belongs to."""

    workspace: Workspace
    user_id: str
    token: str


class Args:
    """Typed access to a method's arguments, tolerant of form strings and JSON values alike."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def has(self, key: str) -> bool:
        """Whether the argument was sent (a JSON null counts as not sent)."""
        return key in self.raw and self.raw[key] is not None

    def string(self, key: str) -> str | None:
        """The argument as a string; None when absent or empty (Slack treats both as missing)."""
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else str(value)

    def text(self, key: str) -> str | None:
        """Like ``string`` but keeps an explicit empty string (chat.update's ``text=""``)."""
        value = self.raw.get(key)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def flag(self, key: str, default: bool = False) -> bool:
        """A boolean argument: ``true``/``1``/``yes`` from forms, a JSON bool from JSON bodies."""
        value = self.raw.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def number(self, key: str, default: int) -> int:
        """An integer argument (``limit``...), ``default`` when absent or malformed."""
        value = self.raw.get(key)
        try:
            return int(value) if value not in (None, "") else default
        except (TypeError, ValueError):
            return default


Handler = Callable[[Context, Args], dict[str, Any]]
METHODS: dict[str, Handler] = {}
NO_AUTH: set[str] = set()


def method(name: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler for a Slack method name."""

    def register(func: Handler) -> Handler:
        """Store the handler under its Slack method name."""
        METHODS[name] = func
        if not auth:
            NO_AUTH.add(name)
        return func

    return register


def _headers(workspace: Workspace, authed: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    # Lower-case names as Slack's HTTP/2 front end sends them; Bolt reads "x-oauth-scopes"
    # from auth.test with a case-sensitive dict lookup.
    """Response headers as Slack sends them."""
    headers = {
        "content-type": "application/json; charset=utf-8",
        "x-slack-req-id": secrets.token_hex(16),
    }
    if authed:
        headers["x-oauth-scopes"] = ",".join(workspace.scopes)
        headers["x-accepted-oauth-scopes"] = ""
    if extra:
        headers.update(extra)
    return headers


def call(
    workspace: Workspace,
    method: str,
    args: dict[str, Any],
    token: str | None,
    *,
    json_body: dict[str, Any] | None = None,
    body_error: str | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Answer one Web API call: ``(http_status, headers, body)``.

    ``args`` are query-string and form arguments; ``json_body`` is a decoded JSON body,
    honoured only by methods that accept JSON. ``body_error`` (``invalid_json``,
    ``json_not_object``) reports a body the server could not decode. Queued faults and
    rate limits apply first; a queued "drop" raises ``ConnectionDropped``. Every call is
    logged in ``workspace.calls()``.
    """
    effective = dict(args)
    effective.pop("token", None)
    if json_body is not None and method not in FORM_ONLY:
        effective.update({k: v for k, v in json_body.items() if k != "token"})

    delay = workspace.faults.latency(method)
    if delay > 0:
        time.sleep(delay)
    held = workspace.faults.take_hold(method)
    if held is not None:
        held.wait()
    fault = workspace.faults.take(method)
    if fault is not None:
        if fault.kind == "drop":
            workspace.record_call(method, effective, 0, None)
            raise ConnectionDropped(method)
        if fault.kind == "drop_after":
            # Slack did the work but the answer never arrived: the caller cannot tell.
            call(workspace, method, args, token, json_body=json_body, body_error=body_error)
            raise ConnectionDropped(method)
        workspace.record_call(
            method, effective, fault.status, fault.body if isinstance(fault.body, dict) else None
        )
        headers = _headers(workspace, False, fault.headers)
        if not isinstance(fault.body, dict):
            headers["content-type"] = "text/html; charset=utf-8"
            return fault.status, headers, {RAW_BODY_KEY: fault.body}
        return fault.status, headers, dict(fault.body)

    status = 200
    authed = False
    extra_headers: dict[str, str] = {}
    # The effect and its log entry are one step under the workspace lock: whoever sees the
    # message a call posted also sees the call in `workspace.calls()`.
    with workspace.cond:
        handler = METHODS.get(method)
        if handler is None:
            body = {"ok": False, "error": "unknown_method", "req_method": method}
        else:
            try:
                user_id = None
                if method not in NO_AUTH:
                    user_id = _authenticate(workspace, token)
                    authed = True
                    _check_scopes(workspace, method)
                if body_error is not None:
                    raise SlackError(body_error)
                result = handler(Context(workspace, user_id or "", token or ""), Args(effective))
                body = {"ok": True, **result}
            except SlackError as exc:
                status = exc.status
                body = {"ok": False, "error": exc.error}
                body.update(exc.extra)
                if exc.messages:
                    body["response_metadata"] = {"messages": list(exc.messages)}
                extra_headers = exc.headers
        workspace.record_call(method, effective, status, body)
    return status, _headers(workspace, authed, extra_headers), body


def _authenticate(workspace: Workspace, token: str | None) -> str:
    """Map the token to its user, with Slack's ``not_authed`` / ``invalid_auth``."""
    if not token:
        raise SlackError("not_authed")
    user_id = workspace.token_user(token)
    if user_id is None:
        raise SlackError("invalid_auth")
    return user_id


def _check_scopes(workspace: Workspace, method: str) -> None:
    """Answer ``missing_scope`` (with needed/provided) when a test removed a scope."""
    needed = NEEDED_SCOPES.get(method)
    if needed and not any(scope in workspace.scopes for scope in needed):
        raise SlackError("missing_scope", extra={"needed": needed[0], "provided": ",".join(workspace.scopes)})


def _invalid_arguments(*problems: str) -> SlackError:
    """Slack's ``invalid_arguments`` with ``[ERROR]`` messages."""
    return SlackError("invalid_arguments", [f"[ERROR] {p}" for p in problems])


def _rate_check(ctx: Context, method_name: str, channel_id: str) -> None:
    """Apply a configured rate limit: 429 ``ratelimited`` with ``retry-after``."""
    wait = ctx.workspace.faults.check_rate(method_name, channel_id, ctx.workspace.clock)
    if wait is not None:
        raise SlackError("ratelimited", status=429, headers={"retry-after": str(wait)})


# -- shared argument handling ----------------------------------------------------------------


def _visible_channel(
    ctx: Context, args: Args, *, resolve_users: bool = False, need_member: bool = True
) -> Channel:
    """The channel named by ``args["channel"]``; Slack's errors when it is missing or hidden."""
    ref = args.string("channel")
    if ref is None:
        raise SlackError("channel_not_found")
    ws = ctx.workspace
    channel = ws.resolve_channel(ref) if resolve_users else ws.channel(ref)
    if channel is None or (channel.is_private and not channel.bot_is_member):
        raise SlackError("channel_not_found")
    if need_member and not channel.is_im and not channel.bot_is_member:
        raise SlackError("not_in_channel")
    return channel


def _content(args: Args, *, require: bool) -> tuple[str | None, list[Any] | None, list[Any] | None]:
    """Decode and check text / blocks / attachments for the chat.* methods."""
    text = args.text("text")
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    if args.has("blocks"):
        try:
            blocks = parse_blocks(args.raw["blocks"])
        except BlocksFormatError as exc:
            raise SlackError("invalid_blocks_format") from exc
    if args.has("attachments"):
        try:
            attachments = parse_json_arg(args.raw["attachments"])
        except ValueError as exc:
            raise SlackError("invalid_attachments") from exc
        if not isinstance(attachments, list):
            raise SlackError("invalid_attachments")
    if require and not text and not blocks and not attachments:
        raise SlackError("no_text")
    if text is not None and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if blocks:
        problems = check_message_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", [f"[ERROR] {p}" for p in problems], extra={"errors": problems})
    return text, blocks, attachments


def _message_json(ctx: Context, message: Message) -> dict[str, Any]:
    """A stored message as the API returns it (bot messages carry bot_profile)."""
    ws = ctx.workspace
    return message.to_api(ws.bot_profile() if message.bot_id else None)


def _view_arg(args: Args, expected_type: str | None) -> dict[str, Any]:
    """Decode and validate the ``view`` argument of the views.* methods."""
    if not args.has("view"):
        raise _invalid_arguments("missing required field: view")
    try:
        view = parse_json_arg(args.raw["view"])
    except ValueError as exc:
        raise _invalid_arguments("must provide an object [json-pointer:/view]") from exc
    problems = check_view(view, expected_type=expected_type)
    if problems:
        raise SlackError("invalid_arguments", [f"[ERROR] {p}" for p in problems])
    if view_size(view) > MAX_VIEW_BYTES:
        raise SlackError("view_too_large")
    return view


# -- auth / api --------------------------------------------------------------------------------


@method("api.test", auth=False)
def api_test(ctx: Context, args: Args) -> dict[str, Any]:
    """Echo the arguments; ``error=x`` makes it fail with ``x`` (as Slack's api.test does)."""
    if args.string("error"):
        raise SlackError(args.string("error") or "")
    return {"args": dict(args.raw)}


@method("auth.test")
def auth_test(ctx: Context, args: Args) -> dict[str, Any]:
    """Who the token is: Bolt calls this first and reads bot_id / user_id from it."""
    ws = ctx.workspace
    user = ws.user(ctx.user_id)
    body: dict[str, Any] = {
        "url": f"https://{ws.domain}.slack.com/",
        "team": ws.team_name,
        "user": user.name if user else ctx.user_id,
        "team_id": ws.team_id,
        "user_id": ctx.user_id,
    }
    if user is not None and user.bot_id:
        body["bot_id"] = user.bot_id
    body["is_enterprise_install"] = False
    return body


# -- chat --------------------------------------------------------------------------------------


@method("chat.postMessage")
def chat_post_message(ctx: Context, args: Args) -> dict[str, Any]:
    """Post a message; channel may be an id, ``#name``, ``name`` or a user id (DM)."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args, resolve_users=True)
    if channel.is_archived:
        raise SlackError("is_archived")
    _rate_check(ctx, "chat.postMessage", channel.id)
    text, blocks, attachments = _content(args, require=True)
    metadata = None
    if args.has("metadata"):
        try:
            metadata = parse_json_arg(args.raw["metadata"])
        except ValueError as exc:
            raise SlackError("invalid_metadata_format") from exc
    message = ws.post_message(
        channel.id,
        text or "",
        user=ctx.user_id,
        blocks=blocks,
        attachments=attachments,
        thread_ts=args.string("thread_ts"),
        reply_broadcast=args.flag("reply_broadcast"),
        metadata=metadata if isinstance(metadata, dict) else None,
    )
    return {"channel": channel.id, "ts": message.ts, "message": _message_json(ctx, message)}


@method("chat.update")
def chat_update(ctx: Context, args: Args) -> dict[str, Any]:
    """Edit a message in place; blocks left out are kept, ``blocks=[]`` removes them."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args, need_member=False)
    ts = args.string("ts")
    if ts is None:
        raise SlackError("message_not_found")
    current = ws.message(channel.id, ts)
    if current is None:
        raise SlackError("message_not_found")
    if current.user != ctx.user_id:
        raise SlackError("cant_update_message")
    _rate_check(ctx, "chat.update", channel.id)
    text, blocks, attachments = _content(args, require=False)
    if text is None and blocks is None and attachments is None:
        raise SlackError("no_text")
    updated = ws.update_message(
        channel.id,
        ts,
        text=text,
        blocks=blocks,
        attachments=attachments,
        # Slack stamps "edited" on text edits but not when an app replaces blocks.
        mark_edited=blocks is None and text is not None and text != current.text,
        editor=ctx.user_id,
    )
    message = _message_json(ctx, updated)
    for key in ("ts", "type", "team", "thread_ts", "reply_count", "reply_users_count", "latest_reply"):
        message.pop(key, None)
    return {"channel": channel.id, "ts": ts, "text": updated.text, "message": message}


@method("chat.delete")
def chat_delete(ctx: Context, args: Args) -> dict[str, Any]:
    """Delete one of the bot's messages."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args, need_member=False)
    ts = args.string("ts")
    current = ws.message(channel.id, ts) if ts else None
    if ts is None or current is None:
        raise SlackError("message_not_found")
    if current.user != ctx.user_id:
        raise SlackError("cant_delete_message")
    ws.delete_message(channel.id, ts)
    return {"channel": channel.id, "ts": ts}


@method("chat.postEphemeral")
def chat_post_ephemeral(ctx: Context, args: Args) -> dict[str, Any]:
    """Show a message to one member of a channel; it is never stored in history."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args, resolve_users=True)
    user_id = args.string("user")
    if user_id is None or ws.user(user_id) is None or not channel.has_member(user_id):
        raise SlackError("user_not_in_channel")
    text, blocks, _attachments = _content(args, require=True)
    ephemeral = ws.post_ephemeral(
        channel.id, user_id, text or "", blocks=blocks, thread_ts=args.string("thread_ts")
    )
    return {"message_ts": ephemeral.message_ts}


@method("chat.getPermalink")
def chat_get_permalink(ctx: Context, args: Args) -> dict[str, Any]:
    """The message's permalink, as a card's "open in Slack" link needs."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args, need_member=False)
    ts = args.string("message_ts")
    if ts is None or ws.message(channel.id, ts) is None:
        raise SlackError("message_not_found")
    return {"channel": channel.id, "permalink": ws.permalink(channel.id, ts)}


# -- views -------------------------------------------------------------------------------------


def _modal_for_trigger(ctx: Context, args: Args, *, push: bool) -> dict[str, Any]:
    """Check the modal, spend the trigger_id (under 3 s, single use), open or push it."""
    trigger_id = args.string("trigger_id")
    if trigger_id is None:
        raise _invalid_arguments("missing required field: trigger_id")
    view = _view_arg(args, "modal")
    ws = ctx.workspace
    trigger = ws.consume_trigger(trigger_id)
    shown = ws.push_view(trigger.user_id, view) if push else ws.open_view(trigger.user_id, view)
    return {"view": shown.to_api()}


@method("views.open")
def views_open(ctx: Context, args: Args) -> dict[str, Any]:
    """Open a modal with a fresh trigger_id."""
    return _modal_for_trigger(ctx, args, push=False)


@method("views.push")
def views_push(ctx: Context, args: Args) -> dict[str, Any]:
    """Push a modal onto the open stack (trigger_id from an interaction inside the modal)."""
    return _modal_for_trigger(ctx, args, push=True)


@method("views.update")
def views_update(ctx: Context, args: Args) -> dict[str, Any]:
    """Replace an open view by view_id or external_id; a stale ``hash`` is a ``hash_conflict``."""
    ws = ctx.workspace
    view_id = args.string("view_id")
    external_id = args.string("external_id")
    if view_id is None and external_id is None:
        raise _invalid_arguments("missing required field: view_id")
    view = _view_arg(args, None)
    updated = ws.update_view(view, view_id=view_id, external_id=external_id, hash=args.string("hash"))
    return {"view": updated.to_api()}


@method("views.publish")
def views_publish(ctx: Context, args: Args) -> dict[str, Any]:
    """Publish a user's App Home tab."""
    ws = ctx.workspace
    user_id = args.string("user_id")
    if user_id is None:
        raise _invalid_arguments("missing required field: user_id")
    view = _view_arg(args, "home")
    if ws.user(user_id) is None:
        raise _invalid_arguments("invalid user_id [json-pointer:/user_id]")
    return {"view": ws.publish_home(user_id, view, hash=args.string("hash")).to_api()}


# -- people ------------------------------------------------------------------------------------


@method("users.info")
def users_info(ctx: Context, args: Args) -> dict[str, Any]:
    """One user's profile (name, tz...)."""
    ws = ctx.workspace
    user_id = args.string("user")
    user = ws.user(user_id) if user_id else None
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.to_api(ws.team_id)}


@method("users.lookupByEmail")
def users_lookup_by_email(ctx: Context, args: Args) -> dict[str, Any]:
    """The user with that email (case-insensitive), as Slack answers: users_not_found otherwise."""
    email = (args.string("email") or "").strip().lower()
    if not email:
        raise _invalid_arguments("email is required")
    for user in ctx.workspace.users():
        if user.email and user.email.lower() == email and not user.deleted:
            return {"user": user.to_api(ctx.workspace.team_id)}
    raise SlackError("users_not_found")


@method("usergroups.users.list")
def usergroups_users_list(ctx: Context, args: Args) -> dict[str, Any]:
    """The members of a user group (approvers named as ``S...``)."""
    ws = ctx.workspace
    group_id = args.string("usergroup")
    if group_id is None:
        raise _invalid_arguments("missing required field: usergroup")
    group = ws.usergroup(group_id)
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


@method("usergroups.list")
def usergroups_list(ctx: Context, args: Args) -> dict[str, Any]:
    """All user groups; ``users`` only with ``include_users=true``, as in Slack."""
    ws = ctx.workspace
    groups = []
    for group in ws.usergroups():
        data = group.to_api(ws.team_id)
        if not args.flag("include_users"):
            data.pop("users")
        groups.append(data)
    return {"usergroups": groups}


# -- conversations -----------------------------------------------------------------------------


@method("conversations.info")
def conversations_info(ctx: Context, args: Args) -> dict[str, Any]:
    """A channel's details (name for card links, membership)."""
    channel = _visible_channel(ctx, args, need_member=False)
    return {"channel": channel.to_api(ctx.workspace.team_id)}


@method("conversations.members")
def conversations_members(ctx: Context, args: Args) -> dict[str, Any]:
    """Who is in a channel."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args, need_member=False)
    if channel.is_im:
        members = [channel.im_user or "", ws.bot_user_id]
    elif channel.members is None:
        members = [u.id for u in ws.users() if not u.deleted]
    else:
        members = sorted(channel.members | ({ws.bot_user_id} if channel.bot_is_member else set()))
    return {"members": members, "response_metadata": {"next_cursor": ""}}


@method("conversations.open")
def conversations_open(ctx: Context, args: Args) -> dict[str, Any]:
    """Open (or find) the bot's DM with one user, for reminders and escalation pings."""
    ws = ctx.workspace
    users = [u for u in (args.string("users") or "").split(",") if u]
    if args.string("channel"):
        channel = ws.resolve_channel(args.string("channel") or "")
        if channel is None:
            raise SlackError("channel_not_found")
    elif len(users) == 1:
        if ws.user(users[0]) is None:
            raise SlackError("user_not_found")
        channel = ws.resolve_channel(users[0])
    elif not users:
        raise SlackError("users_list_not_supplied")
    else:
        # Group DMs are not modelled by the stand-in; say so instead of faking one.
        raise SlackError("method_not_supported_for_channel_type")
    if channel is None:
        raise SlackError("channel_not_found")
    if args.flag("return_im"):
        return {"no_op": True, "already_open": True, "channel": channel.to_api(ws.team_id)}
    return {"no_op": True, "already_open": True, "channel": {"id": channel.id}}


def _page(
    items: list[dict[str, Any]], args: Args, cap: int | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Cursor pagination as Slack does it (opaque base64 cursors, next_cursor); ``cap``
    bounds a page whatever ``limit`` asks (the non-Marketplace limits)."""
    limit = max(1, min(args.number("limit", 100), 999, cap or 999))
    start = 0
    cursor = args.string("cursor")
    if cursor:
        try:
            start = int(base64.b64decode(cursor).decode().split(":", 1)[1])
        except (ValueError, IndexError) as exc:
            raise SlackError("invalid_cursor") from exc
    page = items[start : start + limit]
    more = start + limit < len(items)
    next_cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return page, next_cursor


@method("conversations.history")
def conversations_history(ctx: Context, args: Args) -> dict[str, Any]:
    """Top-level messages, newest first (thread replies only when broadcast)."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args)
    _rate_check(ctx, "conversations.history", channel.id)
    messages = ws.messages(channel.id, include_replies=False)
    oldest = args.string("oldest")
    latest = args.string("latest")
    inclusive = args.flag("inclusive")

    def within(m: Message) -> bool:
        """Whether a message falls inside the oldest/latest window."""
        ts = float(m.ts)
        if oldest is not None and (ts < float(oldest) or (ts == float(oldest) and not inclusive)):
            return False
        return not (latest is not None and (ts > float(latest) or (ts == float(latest) and not inclusive)))

    items = [_message_json(ctx, m) for m in reversed(messages) if within(m)]
    page, next_cursor = _page(items, args, ws.faults.history_cap)
    body: dict[str, Any] = {
        "messages": page,
        "has_more": bool(next_cursor),
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if next_cursor:
        body["response_metadata"] = {"next_cursor": next_cursor}
    return body


@method("conversations.replies")
def conversations_replies(ctx: Context, args: Args) -> dict[str, Any]:
    """A thread: its parent first, then replies oldest first."""
    ws = ctx.workspace
    channel = _visible_channel(ctx, args)
    _rate_check(ctx, "conversations.replies", channel.id)
    ts = args.string("ts")
    thread = ws.replies(channel.id, ts) if ts else []
    if not thread:
        raise SlackError("thread_not_found")
    page, next_cursor = _page([_message_json(ctx, m) for m in thread], args, ws.faults.history_cap)
    body: dict[str, Any] = {"messages": page, "has_more": bool(next_cursor)}
    if next_cursor:
        body["response_metadata"] = {"next_cursor": next_cursor}
    return body
