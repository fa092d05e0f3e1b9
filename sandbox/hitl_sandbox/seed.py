"""The demo's trust loop, seeded so a newcomer sees it within a minute of `make demo`.

Earned autonomy is the product's promise ("start tight; the data will tell you when to
widen"), but on a fresh Redis there is no data: the proposal to promote an action needs
decisions behind it, and a grant needs a policy that allows one. `seed` publishes the
sandbox's policy (only when nothing is published yet, so a developer's own policy is never
replaced), files and approves a few `tag_ticket` requests as bob would have, runs one pass
of the workers' promotion loop so the proposal card is in #eng-leads at once (the history's
cards are in #general), and files one
more `tag_ticket` request whose card offers **Approve for 1 hour**.

Everything goes through the product's own paths (`Approvals.request`, `decide`, the
promotion loop's `check`), so what the newcomer sees is what a team would see after a
week of tagging tickets.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.slack.listeners.autonomy import check
from hitl.client import Approvals
from hitl.policy import Policy
from hitl.settings import Settings
from hitl.status import Verb

# Where the decided history's cards and the proposal go (the sandbox workspace's channels).
HISTORY_CHANNEL = "C0GENERAL"
PROPOSALS_CHANNEL = "C0ENGLEADS"
ACTION = "tag_ticket"
# The sandbox's policy. The demo agent's samples ask for their own modes; an agent may only
# raise oversight above the policy's, so the policy lists the ones below gate.
POLICY = f"""\
# The sandbox's policy (hitl_sandbox/seed.py), published by `make demo` on a fresh Redis.
defaults:
  mode: gate
  grants: {{max: 8h, max_uses: 20}}   # "Approve for 1 hour" on reversible, non-critical gates
actions:
  update_config: {{mode: override, window: 10m}}
  issue_refund: {{mode: shadow}}
  post_message: {{mode: notify}}
  {ACTION}: {{mode: gate}}
autonomy:                # low thresholds, so the seeded history is enough for a proposal
  min_decisions: 5
  min_approved_unedited: 0.8
  no_critical_rejection_days: 0
  channel: {PROPOSALS_CHANNEL}
"""
TICKETS = (("T-4101", "billing"), ("T-4102", "billing"), ("T-4103", "shipping"), ("T-4104", "billing"),
           ("T-4105", "returns"), ("T-4106", "billing"))


@dataclass(frozen=True)
class Seeded:
    """What `seed` left for the newcomer to find."""

    policy_version: int | None  # None: a policy was already published, left as it was
    decided: int
    proposals: int
    grantable: str | None  # the id of the request whose card offers a grant

    def lines(self) -> list[str]:
        out = []
        if self.policy_version is not None:
            out.append(f"seeded: the sandbox policy (version {self.policy_version}, grants allowed)")
        proposal = "; a promotion proposal waits in #eng-leads" if self.proposals else ""
        out.append(f"seeded: {self.decided} {ACTION} requests approved by bob{proposal}")
        if self.grantable:
            out.append(f"seeded: {ACTION} {self.grantable} waits in #agent-approvals with Approve for 1 hour")
        return out


def seed(approvals: Approvals, client: WebClient, settings: Settings) -> Seeded:
    """Publish the sandbox policy if none is, decide the history, propose, and file the grantable one."""
    store = approvals.policy
    version = None
    if store.version_in_force() == 0:
        policy = Policy.from_yaml(POLICY)
        version = store.publish(policy, POLICY, by="hitl dev", source="hitl_sandbox/seed.py").version
    decided = 0
    for ticket, queue in TICKETS[:-1]:
        req = approvals.request(
            action=ACTION, summary=f"Tag ticket {ticket} as {queue}",
            params={"ticket": ticket, "queue": queue}, agent="support-agent", channel=HISTORY_CHANNEL,
        )
        approvals.decide(req.id, Verb.APPROVE, by="U0BOB")
        decided += 1
    proposals = check(approvals, client, settings)
    ticket, queue = TICKETS[-1]
    live = approvals.request(
        action=ACTION, summary=f"Tag ticket {ticket} as {queue}", params={"ticket": ticket, "queue": queue},
        agent="support-agent", context="Reasoning: the customer asks where their invoice is.",
    )
    return Seeded(version, decided, len(proposals), live.id)
