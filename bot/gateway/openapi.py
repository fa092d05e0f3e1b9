"""`GET /openapi.json` and `GET /docs`: the API described from the same pydantic models
the routes use (`hitl.views`, `hitl.models.RequestInput`), so the document cannot drift.

`/docs` renders with Swagger UI from the `swagger-ui-bundle` package, served locally: no
CDN, so the page works offline and behind a firewall.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hitl.models import RequestInput
from hitl.views import BatchInput, BatchView, ErrorBody, ExecutionInput, RequestView, WebhookPayload

_REF = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "validation") for m in (RequestInput, BatchInput, ExecutionInput, ErrorBody)]
        + [(m, "serialization") for m in (RequestView, BatchView, WebhookPayload)],
        ref_template=_REF,
    )
    return top.get("$defs", {})


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(model=ref)}}}}


def _answers(ok: dict[int, tuple[str, str]], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        str(code): {"description": text, **_json(model)} for code, (text, model) in ok.items()
    }
    reasons = {
        400: "malformed JSON", 401: "missing, wrong or revoked key, or no keys configured",
        403: "an action outside the key's action patterns; `field` is `action` (or `items.N.action`)",
        404: "unknown id, or a request another key filed (the same answer)",
        409: "already final", 413: "body too large", 422: "invalid input; `field` names it",
        429: "this key is over its rate; wait `Retry-After` seconds",
        503: "Redis unreachable",
    }
    for code in errors:
        out[str(code)] = {"description": reasons[code], **_json("ErrorBody")}
        if code == 429:
            wait = {"description": "seconds until the key may call again", "schema": {"type": "integer"}}
            out[str(code)]["headers"] = {"Retry-After": wait}
    return out


def spec() -> dict[str, Any]:
    """The OpenAPI 3.0 document (Swagger UI's bundled version renders 3.0)."""
    rid = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hitl-router",
            "version": "1",
            "description": "Approvals for AI agents, decided in Slack. Authenticate with "
            "`Authorization: Bearer <secret>` (a key from `hitl keys create`, or HITL_API_KEYS). "
            "A key reads, waits on and cancels only the requests it filed (an admin key: all); "
            "idempotency keys are per API key; every call counts toward the key's rate.",
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/requests": {
                "post": {
                    "summary": "File a request (the Python client's request() arguments)",
                    "requestBody": {"required": True, **_json("RequestInput")},
                    "responses": _answers(
                        {201: ("filed", "RequestView"), 200: ("same idempotency_key: the earlier request",
                                                              "RequestView")},
                        400, 401, 403, 413, 422, 429, 503,
                    ),
                }
            },
            "/v1/requests/{id}": {
                "get": {
                    "summary": "Read a request; ?wait=S holds until it is final or S seconds pass",
                    "parameters": [
                        rid,
                        {"name": "wait", "in": "query", "required": False,
                         "schema": {"type": "number", "minimum": 0, "maximum": 60}},
                    ],
                    "responses": _answers(
                        {200: ("the request view", "RequestView")}, 401, 404, 422, 429, 503
                    ),
                }
            },
            "/v1/requests/{id}/cancel": {
                "post": {
                    "summary": "Withdraw a pending request",
                    "parameters": [rid],
                    "responses": _answers({200: ("cancelled", "RequestView")}, 401, 404, 409, 429, 503),
                }
            },
            "/v1/requests/{id}/execution": {
                "post": {
                    "summary": "Record that the approved tool call starts ({\"state\": \"started\"}: "
                    "200 {\"started\": true}, 409 when it already started) or ended "
                    "({\"state\": \"finished\", \"ok\": true})",
                    "parameters": [rid],
                    "requestBody": {"required": True, **_json("ExecutionInput")},
                    "responses": {
                        "200": {"description": "recorded: {\"started\": true} or {\"finished\": true}"},
                        **_answers({}, 400, 401, 404, 409, 422, 429, 503),
                    },
                }
            },
            "/v1/batches": {
                "post": {
                    "summary": "File a plan reviewed on one card (request_batch over HTTP)",
                    "requestBody": {"required": True, **_json("BatchInput")},
                    "responses": _answers({201: ("filed", "BatchView")}, 400, 401, 403, 413, 422, 429, 503),
                }
            },
            "/healthz": {
                "get": {
                    "summary": "200 while Redis answers, else 503",
                    "security": [],
                    "responses": {"200": {"description": "healthy"}, "503": {"description": "Redis down"}},
                }
            },
        },
        "x-webhooks": {"request.final": _json("WebhookPayload")},
    }


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hitl-router API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<noscript><p>The API is described in <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>
"""


def routes() -> list[BaseRoute]:
    document = spec()

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui"),
    ]
