"""What a refused click is told: one sentence a reviewer can act on."""

from __future__ import annotations

from bot.slack.blocks.text import escape, one_line, people
from hitl.errors import AlreadyDecided, HitlError, RequestNotFound, StaleVersion, TransitionRefused
from hitl.masking import mask_text
from hitl.models import Request


def _people(ids: list[str]) -> str:
    """Who decided: mentions for real user ids only (`people` escapes anything else)."""
    return people(list(ids))


# What a `/hitl` command answers while Redis cannot be reached.
DB_DOWN = "hitl-router cannot reach its database right now; nothing was changed — try again in a minute."
# What a click or a form answers while Redis cannot be reached: the decision is lost.
NOT_RECORDED = (
    "⚠️ Your decision was NOT recorded: hitl-router cannot reach its database right now. "
    "Nothing changed; please try again in a minute."
)


def refusal(exc: Exception) -> str:
    if isinstance(exc, AlreadyDecided):
        who = f" by {_people(exc.by)}" if exc.by else ""
        return f"Nothing changed: this request was already {escape(exc.status)}{who}."
    if isinstance(exc, StaleVersion):
        return "Nothing changed: the request was edited since this card was drawn. Look at the updated card."
    if isinstance(exc, RequestNotFound):
        return "Nothing changed: this request no longer exists (it may have aged out)."
    if isinstance(exc, TransitionRefused):
        return f"Nothing changed: {escape(mask_text(one_line(exc, 500)))}."
    return "Something went wrong; nothing changed. Try again in a moment."


def stale_or_final(req: Request) -> HitlError:
    """The error a click on this request's out-of-date card stands for."""
    if req.final:
        return AlreadyDecided(req.id, req.status.value, req.by)
    return StaleVersion(req.id, "stale", "edited since")


def why_not(req: Request, user: str) -> str:
    """Why `user` may not decide `req` (checked before opening a form in vain)."""
    if req.requested_by == user:
        return "Nothing changed: you requested this action, so someone else has to decide it."
    return "Nothing changed: you are not one of the approvers of this request."
