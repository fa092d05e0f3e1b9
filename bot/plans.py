"""Plans (`request_batch`): deciding every step at once, and closing the plan.

Shared by the button listeners (Approve all, a step's menu) and the view listeners
(Reject all's reason), so it lives beside them rather than in either.
"""

from __future__ import annotations

import logging

from bot.deps import Deps
from bot.replies import refusal, stale_or_final
from hitl.errors import HitlError
from hitl.status import Status

log = logging.getLogger(__name__)


def settle_plan(deps: Deps, plan_id: str, user: str, groups: list[str]) -> None:
    """Close a plan once every step is final: approved if any step was, else rejected."""
    plan = deps.store.get(plan_id)
    if plan.final:
        return
    items = deps.store.get_many(plan.items)
    if any(not i.final for i in items):
        return
    approved = sum(1 for i in items if i.status is Status.APPROVED)
    verb = "approve" if approved else "reject"
    comment = f"{approved} of {len(items)} steps approved"
    try:
        deps.approvals.decide(plan_id, verb, by=user, comment=comment, groups=groups)
    except HitlError as exc:  # a concurrent click closed it first, or a quorum still waits
        log.info("plan %s not closed by %s: %s", plan_id, user, exc)


def decide_plan(deps: Deps, plan_id: str, verb: str, user: str, comment: str | None = None) -> str | None:
    """Apply `verb` to every step still waiting, then close the plan; a refusal's text or None."""
    plan = deps.store.get(plan_id)
    if plan.final:
        return refusal(stale_or_final(plan))
    groups = deps.groups_for(user, plan)
    refused = []
    for item in deps.store.get_many(plan.items):
        if item.final:
            continue
        try:
            deps.approvals.decide(item.id, verb, by=user, comment=comment, groups=groups)
        except HitlError as exc:
            refused.append(exc)
    settle_plan(deps, plan_id, user, groups)
    if refused:
        return f"{len(refused)} steps were not changed: {refusal(refused[0])}"
    return None
