"""The one declaration of a request's optional fields, as an agent passes them.

Every surface that takes a request reads its field names from here:

- the four clients' `request()` (`Approvals`, `AsyncApprovals`, `HttpApprovals`,
  `AsyncHttpApprovals`) take ``**fields: Unpack[RequestFields]`` (PEP 692): a type checker
  flags a misspelt keyword or a value of the wrong type; `request_batch()` takes
  `PlanFields` and `require_approval()` `GateFields`, the subsets that make sense there;
- the MCP tool `request_approval`, the OpenAPI document (`RequestInput`, `BatchInput`) and
  what the HTTP client sends follow `RequestInput`, whose fields must be these (it refuses
  to import otherwise); their per-field descriptions are the docstrings below (`FIELD_DOCS`).

Adding a field is a line here (name, the types a caller may pass, a docstring), its check
in `RequestInput` (the type once validated and its bounds: pydantic reports bad values in
the words every surface uses) and its entry in `Approvals.request`'s Args. The two types
differ on purpose (`Risk` or its string, seconds or a `timedelta`, any sequence of ids
here; `Risk`, seconds, a list there), so the code that routes a checked request keeps
exact types. `tests/test_client_symmetry.py` shows a field reaches every surface.

The required arguments, `action` and `summary`, are spelt out in each signature; `via`
(the API key that filed it) is the server's.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypedDict

from hitl.status import Mode, Risk

# The arguments every `request()` names explicitly (required), in every surface.
REQUIRED = ("action", "summary")


class GateFields(TypedDict, total=False):
    """What `require_approval()` passes on to each request it files: routing and display."""

    context: str | None
    """Why the agent wants this: markdown, shown under the card's Details."""
    agent: str | None
    """The agent's name, shown on the card and counted in stats."""
    risk: Risk | str | None
    """low, medium, high or critical; with reversible, it picks the mode when no rule does."""
    reversible: bool | None
    """Whether the action can be undone; irreversible high-risk actions are gated."""
    confidence: float | None
    """The agent's confidence, 0 to 1; a low one raises the request to gate."""
    mode: Mode | str | None
    """gate, override, notify, shadow or auto; the policy may raise it, never lower it."""
    channel: str | None
    """Slack channel id or #name for the card; besides the policy's, it is mirrored."""
    approvers: Sequence[str] | None
    """Slack user (U…/W…) or user-group (S…) ids who may decide."""
    requested_by: str | None
    """The person the agent acts for (Slack user id or email): they may not approve it."""
    quorum: int | None
    """Distinct approvals a gate needs (1 to 10)."""
    timeout: float | timedelta | None
    """Seconds until a gate or shadow request expires (at most 30 days)."""
    window: float | timedelta | None
    """Seconds an override stays open for a veto."""


class PlanFields(GateFields, total=False):
    """What `request_batch()` shares between a plan and each of its steps."""

    run_id: str | None
    """The agent run this belongs to, to find every request of one run."""
    idempotency_key: str | None
    """The same key returns the same request, never a second card."""
    callback_url: str | None
    """Where the decision is POSTed once final (an allowed HITL_WEBHOOK_ALLOWED prefix)."""


class RequestFields(PlanFields, total=False):
    """Every optional argument of `request()`, besides `action` and `summary`."""

    params: Mapping[str, Any] | None
    """The action's arguments as a JSON object; a reviewer may edit them."""


def names(fields: type) -> frozenset[str]:
    """The keys a TypedDict of this module declares (its parents' too)."""
    keys: frozenset[str] = fields.__optional_keys__ | fields.__required_keys__  # type: ignore[attr-defined]
    return keys


def _docstrings(*classes: type) -> dict[str, str]:
    """The docstring under each field of `classes`, read from their source."""
    docs: dict[str, str] = {}
    for cls in classes:
        try:
            source = inspect.getsource(cls)
        except OSError:  # installed without sources: the schemas go without descriptions
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        for field, doc in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
            ):
                docs[field.target.id] = doc.value.value
    return docs


# Each field's description, for the MCP tool schema and the OpenAPI document.
FIELD_DOCS: Mapping[str, str] = {
    "action": "The tool or action about to run, e.g. send_email (letters, digits and _ . : / -).",
    "summary": "What will happen, in plain language: the card's headline.",
    **_docstrings(GateFields, PlanFields, RequestFields),
}


def check_keywords(method: str, given: Mapping[str, Any], fields: type) -> None:
    """Python's own TypeError for a keyword `fields` does not declare, as the spelt-out
    signatures raised before (``**fields`` would otherwise accept any name at run time)."""
    for name in given:
        if name not in names(fields):
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")


__all__ = ["FIELD_DOCS", "REQUIRED", "GateFields", "PlanFields", "RequestFields", "check_keywords", "names"]
