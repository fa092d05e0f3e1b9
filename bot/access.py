"""Who may see, and so decide, a request: private channels must not leak.

A person sees a request (in `/hitl list`, `show`, `status`, App Home, the Details modal)
only if they are in HITL_ADMINS, one of its approvers (by user id or through an approver
user group), or a member of a channel its card is in. Deciding needs the same, except that
a mirror channel the agent asked for (`mirror_channels`) gives sight, never a say: an agent
may add a channel to show its request in, not people to approve it. Then the approver
rules the transition script enforces apply.

Approvers the agent named itself (`approvers_from` "agent": the policy names none) only
narrow who may decide: being named gives neither sight nor a say. Such a request is seen
and decided only by admins and members of its (deciding) channels, and of those only the
named ones may decide.

Channel membership comes from `conversations.members`, cached briefly in Redis
(`hitl.membership.ChannelMembers`) and once per `Viewer` (one slash command or click).
If Slack will not say who is in a channel, nobody but admins and approvers sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.groups import GroupResolver
from hitl.membership import ChannelMembers
from hitl.models import Placed, Request
from hitl.status import ApproverSource

log = logging.getLogger(__name__)

# What a person outside a request's channel is told when they try to act on it.
NOT_VISIBLE = (
    "Nothing changed: this request is in a channel you are not a member of, and you are not "
    "one of its approvers."
)
# What an approver named by the agent (not by the policy) is told when outside its channel.
NAMED_BY_AGENT = (
    "Nothing changed: the agent that filed this request named you as an approver, but an agent "
    "cannot give anyone a say: only members of the request's channel (or hitl admins) may "
    "decide it, and you are not one."
)
# Pages of conversations.members read at most (1,000 members each).
MAX_MEMBER_PAGES = 20


class Access:
    """Visibility rules for one bot process; `viewer(user)` answers for one person."""

    def __init__(
        self,
        client: WebClient,
        members: ChannelMembers,
        groups: GroupResolver,
        admins: Iterable[str],
        default_channel: str | None = None,
    ) -> None:
        self.client = client
        self.members = members
        self.groups = groups
        self.admins = frozenset(admins)
        self.default_channel = default_channel

    def channel_members(self, channel: str) -> frozenset[str]:
        """Who is in `channel` (cached); empty when Slack refuses to say."""
        cached = self.members.get(channel)
        if cached is not None:
            return cached
        found: set[str] = set()
        cursor = None
        try:
            for _ in range(MAX_MEMBER_PAGES):
                resp = self.client.conversations_members(channel=channel, cursor=cursor, limit=1000)
                found.update(resp.get("members") or [])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            log.warning("conversations.members %s failed: %s", channel, exc.response.get("error"))
            return frozenset()
        self.members.put(channel, found)
        return frozenset(found)

    def channels_of(self, placed: Placed) -> list[str]:
        """Every channel the request's cards are in (or will be, for an unposted request)."""
        req, card = placed.req, placed.card
        channels = [req.channel, card.channel, *(ch for ch, _ in card.mirrors)]
        if not any(channels):
            channels.append(self.default_channel)
        return list(dict.fromkeys(c for c in channels if c))

    def deciding_channels_of(self, placed: Placed) -> list[str]:
        """The channels whose members may decide: the routed channel, where its card is, and
        the policy's escalation channels; not the mirrors the agent asked for."""
        req = placed.req
        escalation = [step.channel for step in req.escalation if step.channel]
        asked = set(req.mirror_channels) - {req.channel, placed.card.channel, *escalation}
        channels = [*self.channels_of(placed), *escalation]
        return list(dict.fromkeys(c for c in channels if c not in asked))

    def viewer(self, user: str) -> Viewer:
        return Viewer(self, user)


class Viewer:
    """One person's view, memoising channel and group answers for one command or click."""

    def __init__(self, access: Access, user: str) -> None:
        self.access = access
        self.user = user
        self.admin = user in access.admins
        self._in_channel: dict[str, bool] = {}

    def in_channel(self, channel: str) -> bool:
        if self.admin:
            return True
        if channel not in self._in_channel:
            self._in_channel[channel] = self.user in self.access.channel_members(channel)
        return self._in_channel[channel]

    def groups_for(self, req: Request) -> list[str]:
        """The request's approver groups this person is in."""
        return self.access.groups.groups_of(self.user, [a for a in req.approvers if a.startswith("S")])

    @staticmethod
    def _names_count(req: Request) -> bool:
        """Whether being named as an approver gives sight and a say: only when the policy
        named the approvers, never when the agent did (requests filed before this was
        recorded count as the policy's)."""
        return req.approvers_from is not ApproverSource.AGENT

    def _allowed(self, placed: Placed, channels: list[str]) -> bool:
        req = placed.req
        named = self._names_count(req)
        if self.admin or (named and self.user in req.approvers):
            return True
        if any(self.in_channel(ch) for ch in channels):
            return True
        return named and bool(self.groups_for(req))

    def may_see(self, placed: Placed) -> bool:
        """Admin, policy approver (directly or by group), or member of one of its channels."""
        return self._allowed(placed, self.access.channels_of(placed))

    def may_decide(self, placed: Placed) -> bool:
        """`may_see`, less the sight a mirror channel the agent asked for gives. With
        approvers the agent named, only someone who could decide without the name (admin,
        member of a deciding channel) may; the transition script then checks the names."""
        return self._allowed(placed, self.access.deciding_channels_of(placed))

    def refusal(self, placed: Placed) -> str | None:
        """Why this person may not act on a request (None: the engine's approver rules decide).
        It needs where the card is: a private card channel's members alone may act."""
        if self.may_decide(placed):
            return None
        req = placed.req
        if req.approvers_from is ApproverSource.AGENT and self.user in req.approvers:
            return NAMED_BY_AGENT
        return NOT_VISIBLE
