"""In-memory Slack workspace: the state behind the Web API stand-in.

Everything Slack would remember between calls lives here: people, user groups,
channels, messages and threads, ephemeral messages, modal stacks and App Home tabs,
trigger ids, response URLs, and a log of every API call. The web API handlers
(``hitl_sandbox.webapi``), tests and the future browser page all read and change it through
this one object.

Thread safety: one re-entrant lock guards all state, wrapped in a ``threading.Condition``
that is notified after every change. ``wait_for`` builds on it so tests wait for "the
card lost its buttons" instead of sleeping. Readers get deep copies, never live objects.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hitl_sandbox.blockcheck import check_view, normalize_blocks
from hitl_sandbox.faults import Faults

T = TypeVar("T")

TEAM_ID = "T0SANDBOX"
BOT_USER_ID = "U0HITLBOT"
BOT_ID = "B0HITLBOT"
APP_ID = "A0HITLAPP"

DEFAULT_SCOPES = (
    "chat:write",
    "chat:write.public",
    "commands",
    "users:read",
    "users:read.email",
    "usergroups:read",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "im:write",
)

TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5
MAX_VIEW_STACK = 3


class SlackError(Exception):
    """A Slack error answer: ``error`` code, optional ``response_metadata.messages``, HTTP status.

    Workspace operations raise it so the Web API layer can answer exactly as Slack does.
    """

    def __init__(
        self,
        error: str,
        messages: list[str] | None = None,
        *,
        status: int = 200,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


def _rand(alphabet: str, length: int) -> str:
    """A random string (ids, hashes) from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _tz_details(tz: str) -> tuple[str, int]:
    """Return Slack's ``tz_label`` and ``tz_offset`` (seconds) for an IANA zone name."""
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return "Coordinated Universal Time", 0
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset else 0


@dataclass
class User:
    """A Slack user (person or bot user)."""

    id: str
    name: str
    real_name: str
    is_bot: bool = False
    tz: str = "UTC"
    bot_id: str | None = None
    email: str | None = None
    deleted: bool = False
    is_admin: bool = False

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The user object as users.info returns it."""
        label, offset = _tz_details(self.tz)
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "first_name": self.real_name.split(" ")[0],
            "team": team_id,
            "image_48": f"https://avatars.sandbox.invalid/{self.id}_48.png",
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = APP_ID
            profile["always_active"] = True
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1732200000,
            "is_email_confirmed": not self.is_bot,
        }


@dataclass
class UserGroup:
    """A user group (``S...``), mentioned as ``<!subteam^S...>``."""

    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The group as usergroups.list returns it."""
        return {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.name,
            "description": "",
            "handle": self.handle,
            "is_external": False,
            "date_create": 1732200000,
            "date_update": 1732200000,
            "date_delete": 0,
            "auto_type": None,
            "created_by": "U0ALICE",
            "updated_by": "U0ALICE",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "users": list(self.users),
            "user_count": len(self.users),
        }


@dataclass
class Channel:
    """A conversation: public or private channel, or a DM (``is_im``) with one user.

    ``members`` is ``None`` when everyone in the workspace is a member; ``bot_is_member``
    drives ``not_in_channel`` answers.
    """

    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    bot_is_member: bool = True
    members: set[str] | None = None
    is_archived: bool = False
    created: int = 1732200000

    def has_member(self, user_id: str) -> bool:
        """Whether ``user_id`` can see the channel (for ephemeral messages)."""
        if self.is_im:
            return user_id == self.im_user
        return self.members is None or user_id in self.members

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The conversation object as conversations.info returns it."""
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": team_id,
                "updated": self.created * 1000,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": team_id,
            "updated": self.created * 1000,
            "parent_conversation": None,
            "creator": "U0ALICE",
            "is_member": self.bot_is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }


@dataclass
class Message:
    """A message in a channel, top level or in a thread.

    ``thread_ts`` is set on the parent (once it has replies) and on every reply;
    ``reply_ts`` lists the parent's replies in order.
    """

    channel: str
    ts: str
    text: str
    user: str
    team: str = TEAM_ID
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    subtype: str | None = None
    edited: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    reply_ts: list[str] = field(default_factory=list)
    reply_users: list[str] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        """True for a message inside a thread (not the thread's parent)."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def has_actions(self) -> bool:
        """Whether the message still carries an ``actions`` block (handy in ``wait_for``)."""
        return any(isinstance(b, dict) and b.get("type") == "actions" for b in self.blocks or [])

    def to_api(self, bot_profile: dict[str, Any] | None = None) -> dict[str, Any]:
        """The message object as chat.postMessage / conversations.history return it."""
        data: dict[str, Any] = {"type": "message"}
        if self.subtype:
            data["subtype"] = self.subtype
        data["text"] = self.text
        data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
            if bot_profile is not None:
                data["bot_profile"] = bot_profile
        data["ts"] = self.ts
        data["team"] = self.team
        if self.blocks is not None:
            data["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            data["attachments"] = copy.deepcopy(self.attachments)
        if self.edited:
            data["edited"] = dict(self.edited)
        if self.metadata:
            data["metadata"] = copy.deepcopy(self.metadata)
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.reply_ts:
            data["reply_count"] = len(self.reply_ts)
            data["reply_users_count"] = len(self.reply_users)
            data["latest_reply"] = self.reply_ts[-1]
            data["reply_users"] = list(self.reply_users)
            data["is_locked"] = False
            data["subscribed"] = False
        return data


@dataclass
class Ephemeral:
    """An ephemeral message: shown to one user in one channel, never stored by Slack."""

    channel: str
    user: str
    message_ts: str
    text: str
    blocks: list[Any] | None = None
    thread_ts: str | None = None


@dataclass
class View:
    """A modal or App Home view as Slack stores it."""

    id: str
    team_id: str
    user_id: str
    type: str
    definition: dict[str, Any]
    hash: str
    state: dict[str, Any] = field(default_factory=dict)
    root_view_id: str | None = None
    previous_view_id: str | None = None

    @property
    def callback_id(self) -> str:
        """The app's callback_id ("" when none), which Bolt's ``app.view()`` matches on."""
        return str(self.definition.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        """The app's private_metadata ("" when none)."""
        return str(self.definition.get("private_metadata", ""))

    @property
    def external_id(self) -> str:
        """The app's external_id ("" when none)."""
        return str(self.definition.get("external_id", ""))

    @property
    def blocks(self) -> list[Any]:
        """The view's (normalised) blocks."""
        return list(self.definition.get("blocks", []))

    def to_api(self) -> dict[str, Any]:
        """The view object as views.open / interaction payloads carry it."""
        d = self.definition
        data: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": copy.deepcopy(d.get("blocks", [])),
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": copy.deepcopy(self.state)},
            "hash": self.hash,
            "title": copy.deepcopy(d.get("title")),
            "clear_on_close": bool(d.get("clear_on_close", False)),
            "notify_on_close": bool(d.get("notify_on_close", False)),
            "close": copy.deepcopy(d.get("close")),
            "submit": copy.deepcopy(d.get("submit")),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id or self.id,
            "app_id": APP_ID,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }
        if "submit_disabled" in d:
            data["submit_disabled"] = bool(d["submit_disabled"])
        return data


@dataclass(frozen=True)
class Call:
    """One request the stand-in answered (or dropped), for test assertions."""

    method: str
    args: dict[str, Any]
    status: int
    ok: bool
    error: str | None
    at: float


@dataclass
class Trigger:
    """A trigger_id the stand-in issued: single use, valid for ``TRIGGER_TTL`` seconds."""

    id: str
    user_id: str
    issued: float
    view_id: str | None = None
    used: bool = False


@dataclass
class ResponseUrl:
    """A response_url: answers an interaction in place, 5 uses within 30 minutes."""

    token: str
    user_id: str
    channel: str | None
    message_ts: str | None
    issued: float
    uses: int = 0


class Workspace:
    """One Slack workspace's state, seeded with the hitl-router demo team by default.

    ``clock`` (monotonic seconds) drives trigger expiry, response URL expiry and rate
    limits; tests may replace it to move time forward without sleeping.
    """

    def __init__(
        self,
        *,
        team_id: str = TEAM_ID,
        team_name: str = "Sandbox",
        domain: str = "sandbox",
        seed: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.team_id = team_id
        self.team_name = team_name
        self.domain = domain
        self.bot_user_id = BOT_USER_ID
        self.bot_id = BOT_ID
        self.app_id = APP_ID
        self.scopes: list[str] = list(DEFAULT_SCOPES)
        self.clock = clock
        self.trigger_ttl = TRIGGER_TTL
        self.faults = Faults()
        # Base URL of the serving stand-in (set by SlackStandIn.start) for response URLs.
        self.public_url: str | None = None
        self.version = 0

        self._users: dict[str, User] = {}
        self._groups: dict[str, UserGroup] = {}
        self._channels: dict[str, Channel] = {}
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, View] = {}
        self._stacks: dict[str, list[str]] = {}
        self._homes: dict[str, str] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._tokens: dict[str, str] = {}
        self._calls: list[Call] = []
        self._last_ts_us = 0

        self.add_user(BOT_USER_ID, "hitl-bot", "hitl-bot", is_bot=True, bot_id=BOT_ID)
        if seed:
            self._seed()

    def _seed(self) -> None:
        """The demo workspace: four people, the leads group, three channels."""
        self.add_user("U0ALICE", "alice", "Alice Archer", tz="Europe/London", email="alice@sandbox.invalid")
        self.add_user("U0BOB", "bob", "Bob Brown", tz="America/New_York", email="bob@sandbox.invalid")
        self.add_user("U0CAROL", "carol", "Carol Chen", tz="Europe/Berlin", email="carol@sandbox.invalid")
        self.add_user("U0DAVE", "dave", "Dave Diaz", tz="Asia/Tokyo", email="dave@sandbox.invalid")
        self.add_usergroup("S0LEADS", "leads", ["U0ALICE", "U0BOB"], name="Leads")
        self.add_channel("agent-approvals", "C0APPROVALS")
        self.add_channel("eng-leads", "C0ENGLEADS")
        self.add_channel("general", "C0GENERAL")

    # -- locking and waiting ---------------------------------------------------------------

    @property
    def lock(self) -> threading.Condition:
        """The workspace lock (a Condition usable as a context manager)."""
        return self.cond

    def _changed(self) -> None:
        """Bump the version and wake every waiter. Call with the lock held."""
        self.version += 1
        self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, *, what: str | None = None) -> T:
        """Block until ``predicate()`` returns something truthy; return that value.

        The predicate runs under the workspace lock after every state change (and once
        at the start), so no polling or sleeping is involved. Raises ``TimeoutError``
        naming ``what`` (or the predicate) when ``timeout`` seconds pass first.
        """
        with self.cond:
            result = self.cond.wait_for(predicate, timeout)
        if not result:
            label = what or getattr(predicate, "__name__", "condition")
            raise TimeoutError(f"sandbox: {label} not met within {timeout} s")
        return result

    def wait_for_change(self, since: int, timeout: float = 30.0) -> int:
        """Block until the state version moves past ``since`` (or timeout); return the version.

        Meant for a long-polling browser page: remember the version, ask again.
        """
        with self.cond:
            self.cond.wait_for(lambda: self.version > since, timeout)
            return self.version

    # -- ids and clocks --------------------------------------------------------------------

    def next_ts(self) -> str:
        """A new message timestamp: wall-clock based, strictly increasing, unique in the workspace."""
        with self.cond:
            now_us = int(time.time() * 1_000_000)
            self._last_ts_us = max(now_us, self._last_ts_us + 1)
            seconds, micros = divmod(self._last_ts_us, 1_000_000)
            return f"{seconds}.{micros:06d}"

    # -- people and channels ---------------------------------------------------------------

    def add_user(
        self,
        id: str,
        name: str,
        real_name: str | None = None,
        *,
        is_bot: bool = False,
        tz: str = "UTC",
        email: str | None = None,
        bot_id: str | None = None,
        is_admin: bool = False,
    ) -> User:
        """Add (or replace) a user."""
        user = User(id, name, real_name or name, is_bot, tz, bot_id, email, False, is_admin)
        with self.cond:
            self._users[id] = user
            self._changed()
        return copy.deepcopy(user)

    def user(self, user_id: str) -> User | None:
        """A copy of the user, or None."""
        with self.cond:
            user = self._users.get(user_id)
            return copy.deepcopy(user) if user else None

    def users(self) -> list[User]:
        """Copies of every user."""
        with self.cond:
            return copy.deepcopy(list(self._users.values()))

    def add_usergroup(
        self, id: str, handle: str, users: Iterable[str], *, name: str | None = None
    ) -> UserGroup:
        """Add (or replace) a user group."""
        group = UserGroup(id, handle, name or handle, list(users))
        with self.cond:
            self._groups[id] = group
            self._changed()
        return copy.deepcopy(group)

    def set_usergroup_users(self, id: str, users: Iterable[str]) -> None:
        """Change who is in a group (escalation tests move people around)."""
        with self.cond:
            self._groups[id].users = list(users)
            self._changed()

    def usergroup(self, group_id: str) -> UserGroup | None:
        """A copy of the group, or None."""
        with self.cond:
            group = self._groups.get(group_id)
            return copy.deepcopy(group) if group else None

    def usergroups(self) -> list[UserGroup]:
        """Copies of every group."""
        with self.cond:
            return copy.deepcopy(list(self._groups.values()))

    def add_channel(
        self,
        name: str,
        id: str | None = None,
        *,
        is_private: bool = False,
        bot_is_member: bool = True,
        members: Iterable[str] | None = None,
    ) -> Channel:
        """Add a channel; ``id`` defaults to a fresh ``C...`` id.

        ``members=None`` means every user is a member; otherwise ephemeral messages to
        others fail with ``user_not_in_channel``.
        """
        with self.cond:
            channel_id = id or ("C0" + _rand(string.ascii_uppercase + string.digits, 9))
            channel = Channel(
                channel_id,
                name.lstrip("#"),
                is_private=is_private,
                bot_is_member=bot_is_member,
                members=set(members) if members is not None else None,
            )
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
            self._changed()
            return copy.deepcopy(channel)

    def set_bot_membership(self, channel: str, member: bool) -> None:
        """Make the bot join or leave a channel (``not_in_channel`` when it is out)."""
        with self.cond:
            found = self._find_channel(channel)
            if found is None:
                raise KeyError(channel)
            found.bot_is_member = member
            self._changed()

    def _find_channel(self, ref: str) -> Channel | None:
        """The live channel for an id, ``#name`` or ``name`` (lock held)."""
        if ref in self._channels:
            return self._channels[ref]
        name = ref.removeprefix("#")
        for channel in self._channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    def channel(self, ref: str) -> Channel | None:
        """A copy of the channel named by id, ``#name`` or ``name``, or None."""
        with self.cond:
            found = self._find_channel(ref)
            return copy.deepcopy(found) if found else None

    def channel_id(self, ref: str) -> str:
        """The id of the channel named by id, ``#name`` or ``name`` (KeyError if unknown)."""
        found = self.channel(ref)
        if found is None:
            raise KeyError(ref)
        return found.id

    def resolve_channel(self, ref: str) -> Channel | None:
        """Resolve a channel argument the way chat.postMessage does.

        Accepts ids, ``#name`` or ``name``, and a user id (``U...``/``W...``), which
        posts to the bot's DM with that user (the DM is created on first use).
        """
        with self.cond:
            found = self._resolve_channel(ref)
            return copy.deepcopy(found) if found else None

    def _resolve_channel(self, ref: str) -> Channel | None:
        """Like ``_find_channel``, plus user ids, which mean the DM with that user."""
        found = self._find_channel(ref)
        if found is not None:
            return found
        if ref in self._users and ref != self.bot_user_id:
            dm_id = "D" + ref[1:]
            if dm_id not in self._channels:
                self._channels[dm_id] = Channel(dm_id, ref, is_im=True, im_user=ref)
                self._messages[dm_id] = []
                self._changed()
            return self._channels[dm_id]
        return None

    def add_token(self, token: str, user_id: str) -> None:
        """Accept ``token`` as belonging to ``user_id`` (the bot token is added by the server)."""
        with self.cond:
            self._tokens[token] = user_id

    def token_user(self, token: str) -> str | None:
        """The user a token belongs to, or None for an unknown token."""
        with self.cond:
            return self._tokens.get(token)

    def bot_profile(self) -> dict[str, Any]:
        """The ``bot_profile`` Slack attaches to the bot's messages."""
        return {
            "id": self.bot_id,
            "deleted": False,
            "name": "hitl-bot",
            "updated": 1732200000,
            "app_id": self.app_id,
            "icons": {"image_48": "https://avatars.sandbox.invalid/hitl-bot_48.png"},
            "team_id": self.team_id,
        }

    # -- messages --------------------------------------------------------------------------

    def _message(self, channel_id: str, ts: str) -> Message | None:
        """The live message at ``ts`` in a channel (lock held)."""
        for message in self._messages.get(channel_id, []):
            if message.ts == ts:
                return message
        return None

    def post_message(
        self,
        channel: str,
        text: str = "",
        *,
        user: str | None = None,
        blocks: list[Any] | None = None,
        attachments: list[Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Store a new message (no validation: the Web API layer validates first).

        ``user`` defaults to the bot. A ``thread_ts`` that names no message posts at top
        level, as Slack does; one that names a reply joins that reply's thread.
        """
        with self.cond:
            found = self._resolve_channel(channel)
            if found is None:
                raise KeyError(channel)
            author = user or self.bot_user_id
            is_bot = author == self.bot_user_id
            message = Message(
                channel=found.id,
                ts=self.next_ts(),
                text=text,
                user=author,
                team=self.team_id,
                blocks=normalize_blocks(blocks) if blocks else None,
                attachments=copy.deepcopy(attachments) if attachments else None,
                bot_id=self.bot_id if is_bot else None,
                app_id=self.app_id if is_bot else None,
                metadata=copy.deepcopy(metadata) if metadata else None,
            )
            parent = self._message(found.id, thread_ts) if thread_ts else None
            if parent is not None:
                if parent.is_reply and parent.thread_ts:
                    parent = self._message(found.id, parent.thread_ts) or parent
                parent.thread_ts = parent.ts
                parent.reply_ts.append(message.ts)
                if author not in parent.reply_users:
                    parent.reply_users.append(author)
                message.thread_ts = parent.ts
                if reply_broadcast:
                    message.subtype = "thread_broadcast"
            self._messages[found.id].append(message)
            self._changed()
            return copy.deepcopy(message)

    def update_message(
        self,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[Any] | None = None,
        attachments: list[Any] | None = None,
        mark_edited: bool = False,
        editor: str | None = None,
    ) -> Message:
        """Replace parts of a stored message; fields passed as None are kept.

        ``mark_edited`` sets Slack's ``edited`` stamp (Slack leaves it off when a bot
        updates blocks).
        """
        with self.cond:
            found = self._find_channel(channel)
            message = self._message(found.id, ts) if found else None
            if message is None:
                raise KeyError((channel, ts))
            if text is not None:
                message.text = text
            if blocks is not None:
                # blocks=[] removes the blocks, as in Slack.
                message.blocks = normalize_blocks(blocks) if blocks else None
            if attachments is not None:
                message.attachments = copy.deepcopy(attachments)
            if mark_edited:
                message.edited = {"user": editor or message.user, "ts": self.next_ts()}
            self._changed()
            return copy.deepcopy(message)

    def delete_message(self, channel: str, ts: str) -> None:
        """Remove a message (and detach it from its thread)."""
        with self.cond:
            found = self._find_channel(channel)
            message = self._message(found.id, ts) if found else None
            if found is None or message is None:
                raise KeyError((channel, ts))
            self._messages[found.id].remove(message)
            if message.is_reply and message.thread_ts:
                parent = self._message(found.id, message.thread_ts)
                if parent is not None and ts in parent.reply_ts:
                    parent.reply_ts.remove(ts)
            self._changed()

    def message(self, channel: str, ts: str) -> Message | None:
        """A copy of the message at ``ts`` in ``channel`` (id or name), or None."""
        with self.cond:
            found = self._find_channel(channel)
            message = self._message(found.id, ts) if found else None
            return copy.deepcopy(message) if message else None

    def channels(self) -> list[Channel]:
        """Copies of every conversation (channels and DMs), in creation order."""
        with self.cond:
            return copy.deepcopy(list(self._channels.values()))

    def messages(self, channel: str, *, include_replies: bool = True) -> list[Message]:
        """Copies of a channel's messages, oldest first."""
        with self.cond:
            found = self._find_channel(channel)
            if found is None:
                return []
            items = self._messages.get(found.id, [])
            if not include_replies:
                items = [m for m in items if not m.is_reply or m.subtype == "thread_broadcast"]
            return copy.deepcopy(items)

    def latest_message(self, channel: str) -> Message | None:
        """The newest top-level message in a channel, or None."""
        items = self.messages(channel, include_replies=False)
        return items[-1] if items else None

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The thread's parent followed by its replies, oldest first."""
        with self.cond:
            found = self._find_channel(channel)
            if found is None:
                return []
            parent = self._message(found.id, thread_ts)
            if parent is None:
                return []
            if parent.is_reply and parent.thread_ts:
                parent = self._message(found.id, parent.thread_ts) or parent
            items = [parent] + [
                m for m in self._messages[found.id] if m.is_reply and m.thread_ts == parent.ts
            ]
            return copy.deepcopy(items)

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str = "",
        *,
        blocks: list[Any] | None = None,
        thread_ts: str | None = None,
    ) -> Ephemeral:
        """Record an ephemeral message shown to ``user`` in ``channel``."""
        with self.cond:
            found = self._resolve_channel(channel)
            if found is None:
                raise KeyError(channel)
            ephemeral = Ephemeral(
                found.id,
                user,
                self.next_ts(),
                text,
                normalize_blocks(blocks) if blocks is not None else None,
                thread_ts,
            )
            self._ephemerals.append(ephemeral)
            self._changed()
            return copy.deepcopy(ephemeral)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Copies of ephemeral messages, optionally only those in ``channel`` / for ``user``."""
        with self.cond:
            channel_id = None
            if channel is not None:
                found = self._find_channel(channel)
                channel_id = found.id if found else channel
            return copy.deepcopy(
                [
                    e
                    for e in self._ephemerals
                    if (channel_id is None or e.channel == channel_id) and (user is None or e.user == user)
                ]
            )

    def permalink(self, channel_id: str, ts: str) -> str:
        """A message's permalink in Slack's format (``/archives/C.../p<ts digits>``)."""
        with self.cond:
            message = self._message(channel_id, ts)
            link = f"https://{self.domain}.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
            if message is not None and message.is_reply:
                link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
            return link

    # -- triggers and views ----------------------------------------------------------------

    def issue_trigger_id(
        self, user_id: str = "U0ALICE", *, view_id: str | None = None, age: float = 0.0
    ) -> str:
        """Issue a trigger_id as Slack does with every interaction.

        ``view_id`` ties it to an open modal (interactions inside a modal); ``age``
        back-dates it so tests can get an expired trigger without sleeping.
        """
        digits = string.digits
        trigger_id = f"{int(time.time())}{_rand(digits, 3)}.{_rand(digits, 10)}.{secrets.token_hex(16)}"
        with self.cond:
            self._triggers[trigger_id] = Trigger(trigger_id, user_id, self.clock() - age, view_id)
            self._changed()
        return trigger_id

    def consume_trigger(self, trigger_id: str) -> Trigger:
        """Exchange a trigger_id: single use, ``trigger_ttl`` seconds, else Slack's errors."""
        with self.cond:
            trigger = self._triggers.get(trigger_id)
            if trigger is None:
                raise SlackError("invalid_trigger_id")
            if trigger.used:
                raise SlackError("exchanged_trigger_id")
            if self.clock() - trigger.issued > self.trigger_ttl:
                raise SlackError("expired_trigger_id")
            trigger.used = True
            self._changed()
            return copy.deepcopy(trigger)

    def _new_view(self, user_id: str, definition: dict[str, Any], kind: str) -> View:
        """Create and store a view with a fresh id and hash (lock held)."""
        view_id = "V0" + _rand(string.ascii_uppercase + string.digits, 9)
        stored = copy.deepcopy(definition)
        stored["blocks"] = normalize_blocks(stored.get("blocks", []))
        view = View(view_id, self.team_id, user_id, kind, stored, _new_hash())
        self._views[view_id] = view
        return view

    def _check_external_id(self, definition: dict[str, Any], own_view: str | None = None) -> None:
        """external_id is unique per workspace: ``duplicate_external_id`` otherwise."""
        external_id = definition.get("external_id")
        if not external_id:
            return
        for view in self._views.values():
            if view.external_id == external_id and view.id != own_view:
                raise SlackError("duplicate_external_id")

    def open_view(self, user_id: str, definition: dict[str, Any]) -> View:
        """Open a modal as the root of a new stack for ``user_id`` (replacing any open one)."""
        with self.cond:
            self._check_external_id(definition)
            for old in self._stacks.pop(user_id, []):
                self._views.pop(old, None)
            view = self._new_view(user_id, definition, "modal")
            view.root_view_id = view.id
            self._stacks[user_id] = [view.id]
            self._changed()
            return copy.deepcopy(view)

    def push_view(self, user_id: str, definition: dict[str, Any]) -> View:
        """Push a modal onto the user's open stack (at most 3 views, like Slack)."""
        with self.cond:
            stack = self._stacks.get(user_id)
            if not stack:
                raise SlackError("not_found")
            if len(stack) >= MAX_VIEW_STACK:
                raise SlackError("push_limit_reached")
            self._check_external_id(definition)
            view = self._new_view(user_id, definition, "modal")
            view.root_view_id = stack[0]
            view.previous_view_id = stack[-1]
            stack.append(view.id)
            self._changed()
            return copy.deepcopy(view)

    def update_view(
        self,
        definition: dict[str, Any],
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash: str | None = None,
    ) -> View:
        """Replace a view's content in place; a stale ``hash`` answers ``hash_conflict``.

        Input state survives for blocks whose block_id is still there, as in Slack.
        """
        with self.cond:
            view = self._lookup_view(view_id, external_id)
            if view is None:
                raise SlackError("not_found")
            if hash is not None and hash != view.hash:
                raise SlackError("hash_conflict")
            if definition.get("type") != view.type:
                raise SlackError(
                    "invalid_arguments", ["[ERROR] must be a valid enum value [json-pointer:/view/type]"]
                )
            self._check_external_id(definition, view.id)
            stored = copy.deepcopy(definition)
            stored["blocks"] = normalize_blocks(stored.get("blocks", []))
            view.definition = stored
            kept = {b.get("block_id") for b in stored["blocks"] if isinstance(b, dict)}
            view.state = {k: v for k, v in view.state.items() if k in kept}
            view.hash = _new_hash()
            self._changed()
            return copy.deepcopy(view)

    def publish_home(self, user_id: str, definition: dict[str, Any], *, hash: str | None = None) -> View:
        """Publish (create or replace) a user's App Home view."""
        with self.cond:
            current = self._views.get(self._homes.get(user_id, ""))
            if current is not None:
                if hash is not None and hash != current.hash:
                    raise SlackError("hash_conflict")
                self._check_external_id(definition, current.id)
                stored = copy.deepcopy(definition)
                stored["blocks"] = normalize_blocks(stored.get("blocks", []))
                current.definition = stored
                current.hash = _new_hash()
                self._changed()
                return copy.deepcopy(current)
            self._check_external_id(definition)
            view = self._new_view(user_id, definition, "home")
            view.root_view_id = view.id
            self._homes[user_id] = view.id
            self._changed()
            return copy.deepcopy(view)

    def _lookup_view(self, view_id: str | None, external_id: str | None) -> View | None:
        """The live view by id or external_id (lock held)."""
        if view_id:
            return self._views.get(view_id)
        if external_id:
            for view in self._views.values():
                if view.external_id == external_id:
                    return view
        return None

    def view(self, view_id: str | None = None, *, external_id: str | None = None) -> View | None:
        """A copy of a view by id or external_id, or None."""
        with self.cond:
            view = self._lookup_view(view_id, external_id)
            return copy.deepcopy(view) if view else None

    def view_stack(self, user_id: str) -> list[View]:
        """Copies of the user's open modals, root first (empty when none is open)."""
        with self.cond:
            return copy.deepcopy([self._views[v] for v in self._stacks.get(user_id, [])])

    def top_view(self, user_id: str) -> View | None:
        """The modal the user sees now, or None."""
        stack = self.view_stack(user_id)
        return stack[-1] if stack else None

    def home_view(self, user_id: str) -> View | None:
        """A copy of the user's App Home view, or None."""
        with self.cond:
            view = self._views.get(self._homes.get(user_id, ""))
            return copy.deepcopy(view) if view else None

    def set_view_state(self, view_id: str, values: dict[str, Any]) -> View:
        """Set ``state.values`` (block_id -> action_id -> value) as if the user typed into the modal."""
        with self.cond:
            view = self._views[view_id]
            view.state = copy.deepcopy(values)
            self._changed()
            return copy.deepcopy(view)

    def apply_view_response(
        self, view_id: str, response: dict[str, Any] | str | None
    ) -> dict[str, str] | None:
        """Do what Slack does with the app's answer (its ``ack()``) to a view_submission.

        No ``response_action`` closes the submitted view; ``clear`` closes the whole stack;
        ``update`` replaces the submitted view; ``push`` pushes a new one; ``errors``
        keeps the view open and returns the per-block error messages. ``response`` may be
        the raw response body (Bolt's ``BoltResponse.body``). An invalid view in
        ``update``/``push`` raises ``SlackError("invalid_arguments")`` (Slack shows the
        user an error instead of the new view).
        """
        if isinstance(response, str):
            response = json.loads(response) if response.strip() else None
        action = (response or {}).get("response_action")
        with self.cond:
            view = self._views.get(view_id)
            if view is None:
                raise SlackError("not_found")
            if action == "errors":
                return dict((response or {}).get("errors") or {})
            if action in ("update", "push"):
                definition = (response or {}).get("view")
                problems = check_view(definition, expected_type="modal")
                if problems:
                    raise SlackError("invalid_arguments", [f"[ERROR] {p}" for p in problems])
                assert isinstance(definition, dict)
                if action == "update":
                    self.update_view(definition, view_id=view_id)
                else:
                    self.push_view(view.user_id, definition)
                return None
            if action == "clear":
                self.close_views(view.user_id)
                return None
            stack = self._stacks.get(view.user_id, [])
            if view_id in stack:
                stack.remove(view_id)
                self._views.pop(view_id, None)
                if not stack:
                    self._stacks.pop(view.user_id, None)
            self._changed()
            return None

    def pop_view(self, user_id: str) -> View | None:
        """Close the top modal (Slack does this after a plain ``ack()`` of a submission)."""
        with self.cond:
            stack = self._stacks.get(user_id)
            if not stack:
                return None
            view = self._views.pop(stack.pop())
            if not stack:
                del self._stacks[user_id]
            self._changed()
            return copy.deepcopy(view)

    def close_views(self, user_id: str) -> list[View]:
        """Close the user's whole modal stack (``response_action: clear``, or the user quits)."""
        with self.cond:
            closed = [self._views.pop(v) for v in self._stacks.pop(user_id, [])]
            self._changed()
            return copy.deepcopy(closed)

    # -- response URLs ---------------------------------------------------------------------

    def issue_response_url(
        self, user_id: str, channel: str | None = None, message_ts: str | None = None
    ) -> str:
        """A response_url for an interaction; it points at the stand-in when one is serving."""
        token = f"{_rand(string.digits, 13)}/{secrets.token_urlsafe(18)}"
        with self.cond:
            channel_id = None
            if channel is not None:
                found = self._find_channel(channel)
                channel_id = found.id if found else channel
            self._response_urls[token] = ResponseUrl(token, user_id, channel_id, message_ts, self.clock())
            base = (self.public_url or "https://hooks.slack.com").rstrip("/")
            return f"{base}/actions/{self.team_id}/{token}"

    def use_response_url(self, token: str, body: dict[str, Any]) -> None:
        """Apply a response_url post: replace or delete the original, or post (ephemerally).

        Raises ``SlackError`` (HTTP 404) for unknown, used-up or expired URLs.
        """
        with self.cond:
            entry = self._response_urls.get(token)
            if entry is None:
                raise SlackError("invalid_token", status=404)
            if entry.uses >= RESPONSE_URL_USES or self.clock() - entry.issued > RESPONSE_URL_TTL:
                raise SlackError("expired_url", status=404)
            entry.uses += 1
            text = str(body.get("text", ""))
            blocks = body.get("blocks")
            original = (
                self._message(entry.channel, entry.message_ts) if entry.channel and entry.message_ts else None
            )
            if _truthy(body.get("delete_original")):
                if original is not None:
                    self.delete_message(original.channel, original.ts)
                return
            if _truthy(body.get("replace_original")) and original is not None:
                original.text = text
                original.blocks = normalize_blocks(blocks) if isinstance(blocks, list) else None
                self._changed()
                return
            if entry.channel is None:
                return
            thread_ts = body.get("thread_ts")
            if body.get("response_type") == "in_channel":
                self.post_message(entry.channel, text, blocks=blocks, thread_ts=thread_ts)
            else:
                self.post_ephemeral(entry.channel, entry.user_id, text, blocks=blocks, thread_ts=thread_ts)

    # -- call log --------------------------------------------------------------------------

    def record_call(
        self, method: str, args: dict[str, Any], status: int, body: dict[str, Any] | None
    ) -> None:
        """Log one answered request (what tests assert on)."""
        ok = bool(body and body.get("ok"))
        error = None if ok or body is None else str(body.get("error", "")) or None
        with self.cond:
            self._calls.append(Call(method, copy.deepcopy(args), status, ok, error, time.time()))
            self._changed()

    def calls(self, method: str | None = None) -> list[Call]:
        """Logged calls, oldest first, optionally only those to ``method``."""
        with self.cond:
            return [c for c in self._calls if method is None or c.method == method]

    def clear_calls(self) -> None:
        """Forget logged calls (e.g. after a test's setup)."""
        with self.cond:
            self._calls.clear()
            self._changed()


def _new_hash() -> str:
    """A view hash in Slack's ``<seconds>.<random>`` form; it changes on every update."""
    return f"{int(time.time())}.{_rand(string.ascii_letters + string.digits, 8)}"


def _truthy(value: Any) -> bool:
    """Interpret a JSON or form boolean."""
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)
