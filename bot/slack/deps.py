"""What every listener needs, built once per bot process and handed over in Bolt's context."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.access import Access, Viewer
from bot.groups import GroupResolver
from hitl.client import Approvals
from hitl.models import Request
from hitl.settings import Settings
from hitl.store import Store


@dataclass
class Deps:
    settings: Settings
    approvals: Approvals
    client: WebClient
    groups: GroupResolver
    access: Access

    @property
    def store(self) -> Store:
        return self.approvals.store

    def viewer(self, user: str) -> Viewer:
        """What `user` may see (private channels stay private); one per command or click."""
        return self.access.viewer(user)

    def groups_for(self, user: str, req: Request) -> list[str]:
        """The request's approver groups that `user` is in (asks Slack only if it has some)."""
        return self.groups.groups_of(user, [a for a in req.approvers if a.startswith("S")])


def deps_of(context: dict) -> Deps:
    return context["hitl"]
