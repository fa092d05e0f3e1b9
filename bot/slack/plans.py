"""Plans (`request_batch`): deciding every waiting step at once.

Shared by the button listeners (Approve all) and the view listeners (Reject all's reason),
so it lives beside them rather than in either. Closing the plan is not done here: the
engine's transition closes it when its last step turns final, however that step was decided.
"""

from __future__ import annotations

from bot.slack.deps import Deps
from bot.slack.replies import refusal, stale_or_final
from hitl.errors import HitlError
from hitl.status import Verb


def decide_plan(
    deps: Deps, plan_id: str, verb: Verb, user: str, comment: str | None = None, *, critical: bool = False
) -> str | None:
    """Apply `verb` to every step still waiting; a refusal's text, or None. Each step's
    rejection counts toward its own action's demotion (`Approvals.decide`)."""
    plan = deps.store.get(plan_id)
    if plan.final:
        return refusal(stale_or_final(plan))
    groups = deps.groups_for(user, plan)
    refused = []
    for item in deps.store.get_many(plan.items):
        if item.final:
            continue
        try:
            deps.approvals.decide(item.id, verb, by=user, comment=comment, groups=groups, critical=critical)
        except HitlError as exc:
            refused.append(exc)
    if refused:
        return f"{len(refused)} steps were not changed: {refusal(refused[0])}"
    return None
