"""What a framework adapter tells the agent once a request is final.

A `Decision` says what happened to a request; an `Outcome` says what it means for the
tool call: run it (as asked or as edited) or do not, and the words the model reads
instead of the tool's result. Expiry is worded apart from rejection on purpose: nobody
said no, so the model should not treat the action as forbidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hitl.models import Decision
from hitl.status import ExecutionState, Mode, Status

if TYPE_CHECKING:
    from hitl.client import Approvals, AsyncApprovals


class OutcomeKind(StrEnum):
    APPROVED = "approved"  # run with the arguments as asked
    EDITED = "edited"  # run with the reviewer's arguments
    REJECTED = "rejected"  # a reviewer said no (reason in `comment`)
    VETOED = "vetoed"  # override mode: it ran, then a reviewer vetoed it
    FINALIZED = "finalized"  # override mode: it ran and the veto window closed without a veto
    EXPIRED = "expired"  # nobody decided in time
    CANCELLED = "cancelled"  # the request was withdrawn
    UNDECIDED = "undecided"  # still pending: an answer was refused or the resume came early
    UNKNOWN = "unknown"  # approved, but its call started before and never finished: not run again
    ALREADY_RAN = "already_ran"  # approved, and its call already ran once: not run again


RUNS: frozenset[OutcomeKind] = frozenset({OutcomeKind.APPROVED, OutcomeKind.EDITED, OutcomeKind.FINALIZED})

_BY_STATUS: dict[Status, OutcomeKind] = {
    Status.REJECTED: OutcomeKind.REJECTED,
    Status.VETOED: OutcomeKind.VETOED,
    Status.EXPIRED: OutcomeKind.EXPIRED,
    Status.CANCELLED: OutcomeKind.CANCELLED,
}


@dataclass(frozen=True)
class Outcome:
    """The decision on one tool call, in the terms a framework needs."""

    kind: OutcomeKind
    request_id: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    by: tuple[str, ...] = ()
    comment: str | None = None
    mode: Mode | None = None  # the request's mode (policy decides); OVERRIDE means a veto may follow

    @classmethod
    def from_decision(cls, decision: Decision, asked: dict[str, Any]) -> Outcome:
        """`asked` is the arguments the agent proposed; different approved params = an edit."""
        if decision.approved:
            kind = OutcomeKind.EDITED if decision.params != asked else OutcomeKind.APPROVED
        elif not decision.status.final:
            kind = OutcomeKind.UNDECIDED  # nobody decided: never worded as a rejection
        else:
            kind = _BY_STATUS.get(decision.status, OutcomeKind.REJECTED)
        args = decision.params if decision.approved else asked
        return cls(
            kind, decision.request_id, decision.action, dict(args), tuple(decision.by), decision.comment,
            decision.mode,
        )

    def undecided(self, reason: str) -> Outcome:
        """This request, still undecided, with `reason` (why no decision was taken here)."""
        kind = OutcomeKind.UNDECIDED
        return Outcome(kind, self.request_id, self.action, dict(self.args), (), reason, self.mode)

    def start(self, approvals: Approvals) -> Outcome:
        """Record that this outcome's tool call is starting; call it right before the tool.

        Returns the outcome itself when the tool may run now. A request's call runs at most
        once (`Approvals.start_execution`): when it started before, this returns UNKNOWN
        (that start never finished) or ALREADY_RAN, which do not run, and whose `message`
        tells the model to check before retrying. Outcomes that do not run are returned as
        they are.
        """
        if not self.runs:
            return self
        if approvals.start_execution(self.request_id):
            return self
        return self._not_again(approvals.get(self.request_id).fetch().execution)

    async def astart(self, approvals: AsyncApprovals) -> Outcome:
        """`start` for asyncio code (an `AsyncApprovals`)."""
        if not self.runs:
            return self
        if await approvals.start_execution(self.request_id):
            return self
        handle = await approvals.get(self.request_id)
        return self._not_again((await handle.fetch()).execution)

    def finish(self, approvals: Approvals, *, ok: bool = True) -> None:
        """Record that the tool call `start` let run has ended (`ok` False when it raised),
        so a re-run hears that it ran rather than "outcome unknown"."""
        approvals.finish_execution(self.request_id, ok=ok)

    async def afinish(self, approvals: AsyncApprovals, *, ok: bool = True) -> None:
        """`finish` for asyncio code."""
        await approvals.finish_execution(self.request_id, ok=ok)

    def _not_again(self, state: ExecutionState | None) -> Outcome:
        kind = OutcomeKind.ALREADY_RAN if state is not None and state.ran else OutcomeKind.UNKNOWN
        return Outcome(kind, self.request_id, self.action, dict(self.args), self.by, self.comment, self.mode)

    @property
    def vetoable(self) -> bool:
        """Whether the tool ran under an override window that a reviewer may still veto."""
        return self.mode is Mode.OVERRIDE and self.kind in (OutcomeKind.APPROVED, OutcomeKind.EDITED)

    def _closed(self, decision: Decision) -> Outcome:
        if decision.status is Status.FINALIZED:
            return Outcome(
                OutcomeKind.FINALIZED, self.request_id, self.action, dict(self.args),
                tuple(decision.by), decision.comment, decision.mode,
            )
        return Outcome.from_decision(decision, self.args)

    def watch_veto(self, approvals: Approvals, timeout: float | None = None) -> Outcome:
        """Block until this override's veto window closes; the agent's way to learn of a veto.

        In override mode the tool runs at once, so a veto arrives after the fact: this
        returns VETOED (the reviewer's reason in `comment`, the model-facing text in
        `message`) or FINALIZED when the window closed (or was confirmed) without one.
        Any other outcome is returned as it is, without waiting. Raises `WaitTimeout`
        after `timeout` seconds while the window is still open.
        """
        if not self.vetoable:
            return self
        return self._closed(approvals.get(self.request_id).wait(timeout))

    async def awatch_veto(self, approvals: AsyncApprovals, timeout: float | None = None) -> Outcome:
        """`watch_veto` for asyncio code (an `AsyncApprovals`)."""
        if not self.vetoable:
            return self
        handle = await approvals.get(self.request_id)
        return self._closed(await handle.wait(timeout))

    @property
    def runs(self) -> bool:
        """Whether the tool may run (approved, or approved with edited arguments)."""
        return self.kind in RUNS

    @property
    def message(self) -> str:
        """What the model reads in place of the tool's result when the tool does not run."""
        who = ", ".join(self.by) or "a reviewer"
        if self.kind is OutcomeKind.REJECTED:
            reason = self.comment or "no reason given"
            return f"Rejected by {who}: {reason}. `{self.action}` was not run."
        if self.kind is OutcomeKind.VETOED:
            reason = self.comment or "no reason given"
            return f"Vetoed by {who} after it ran: {reason}. Undo `{self.action}` if you can."
        if self.kind is OutcomeKind.EXPIRED:
            return (
                f"No one decided on `{self.action}` in time, so it was not run. This is not a "
                "rejection: nobody reviewed it. Ask again later or tell the user it is waiting."
            )
        if self.kind is OutcomeKind.CANCELLED:
            return f"The approval request for `{self.action}` was withdrawn, so it was not run."
        if self.kind is OutcomeKind.UNDECIDED:
            why = f" {self.comment}" if self.comment else ""
            return (
                f"Not decided yet: `{self.action}` is still waiting for a decision in Slack, so it was "
                f"not run.{why} Do not treat this as an approval or a rejection."
            )
        if self.kind is OutcomeKind.UNKNOWN:
            return (
                f"Outcome unknown: check before retrying. `{self.action}` was started once for this "
                "approval and stopped before it finished, so it was not run again. Check whether it "
                "took effect before asking to run it again."
            )
        if self.kind is OutcomeKind.ALREADY_RAN:
            return (
                f"`{self.action}` already ran once for this approval, so it was not run again (its "
                "result was not kept). Check its effect before asking to run it again."
            )
        if self.kind is OutcomeKind.FINALIZED:
            return f"`{self.action}` stands: the veto window closed without a veto."
        if self.kind is OutcomeKind.EDITED:
            return f"Approved by {who} with edited arguments: {self.args}."
        return f"Approved by {who}."
