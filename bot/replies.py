"""What a refused click is told: one sentence a reviewer can act on."""

from __future__ import annotations

from hitl.errors import AlreadyDecided, RequestNotFound, StaleVersion, TransitionRefused


def _people(ids: list[str]) -> str:
    return ", ".join(f"<@{u}>" for u in ids)


def refusal(exc: Exception) -> str:
    if isinstance(exc, AlreadyDecided):
        who = f" by {_people(exc.by)}" if exc.by else ""
        return f"Nothing changed: this request was already {exc.status}{who}."
    if isinstance(exc, StaleVersion):
        return "Nothing changed: the request was edited since this card was drawn. Look at the updated card."
    if isinstance(exc, RequestNotFound):
        return "Nothing changed: this request no longer exists (it may have aged out)."
    if isinstance(exc, TransitionRefused):
        return f"Nothing changed: {exc}."
    return "Something went wrong; nothing changed. Try again in a moment."
