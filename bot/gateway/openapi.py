"""`GET /openapi.json` and `GET /docs`: the API described from the same pydantic models
the routes use (`hitl.views`, `hitl.models.RequestInput`, whose optional fields are
`hitl.fields.RequestFields`), so the document cannot drift.

The document is OpenAPI 3.1 (its schemas are JSON Schema 2020-12, as pydantic writes them:
`{"type": "null"}` members, numeric `exclusiveMinimum`). Two adjustments make generated
clients right under their defaults:

- request bodies carry no `default` (pydantic writes `"default": null` on every optional
  field, and openapi-typescript makes a property with a default required): an optional
  field is simply absent from `required`, and a non-null default is said in its description;
- answers list every property the server always sends as required (a field with a default
  is still always serialised), so a client need not test for what cannot be missing.

Every refusal the routes give (`bot.gateway.api`, `bot.gateway.auth`) is described with
its status and the `ErrorBody` schema. `/docs` renders with Swagger UI from the
`swagger-ui-bundle` package, served locally (no CDN, so it works offline); that bundle
renders OpenAPI 3.0 only, so the page loads the same document lowered to 3.0
(`for_swagger_ui`), served beside it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hitl.fields import REQUIRED, PlanFields, RequestFields, names
from hitl.models import RequestInput
from hitl.views import BatchInput, BatchView, ErrorBody, ExecutionInput, RequestView, WebhookPayload

_REF = "#/components/schemas/{model}"
OPENAPI_VERSION = "3.1.0"
# Where `/docs` reads the document lowered to OpenAPI 3.0 for its Swagger UI bundle.
SWAGGER_UI_DOCUMENT = "/docs/openapi-3.0.json"

_INPUTS = (RequestInput, BatchInput, ExecutionInput)
_OUTPUTS = (RequestView, BatchView, WebhookPayload, ErrorBody)
# The body fields each input may omit: the declaration's (`hitl.fields`), plus the plan's name.
_OPTIONAL: dict[str, frozenset[str]] = {
    "RequestInput": names(RequestFields),
    "BatchInput": names(PlanFields) | {"action"},
    "ExecutionInput": frozenset({"ok", "result"}),
}


def _without_defaults(name: str, schema: dict[str, Any]) -> None:
    """An input's optional fields as absent-when-omitted, never `"default": null`."""
    optional = _OPTIONAL[name]
    required = set(schema.get("required", []))
    if required & optional or set(schema["properties"]) - optional - required:
        raise RuntimeError(f"{name}: required {sorted(required)} does not match hitl.fields' optional fields")
    for prop in schema["properties"].values():
        if "default" not in prop:
            continue
        default = prop.pop("default")
        if default is not None:
            said = prop.get("description", "").rstrip(".")
            prop["description"] = f"{said}. Default: {json.dumps(default)}.".lstrip(". ")


def _always_sent(schema: dict[str, Any]) -> None:
    """An answer's properties as the server sends them: every one, defaults included."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)
    schema["required"] = list(schema.get("properties", {}))


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "validation") for m in _INPUTS] + [(m, "serialization") for m in _OUTPUTS],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    for name, schema in schemas.items():
        if name in _OPTIONAL:
            _without_defaults(name, schema)
        elif name == "ErrorBody":  # `field` is left out (never null) when no one field is at fault
            schema["properties"]["field"] = {
                "type": "string",
                "description": "the field at fault (`Authorization` for a key), when one is",
            }
        elif "properties" in schema:
            _always_sent(schema)
    assert set(REQUIRED) == set(schemas["RequestInput"]["required"])
    return schemas


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(model=ref)}}}}


_RETRY_AFTER = {"description": "whole seconds until a retry may succeed", "schema": {"type": "integer"}}

# Each refusal the routes give, as a caller should read it (bot.gateway.api and .auth).
_REFUSALS: dict[int, str] = {
    400: "malformed JSON, a body that is not an object, or one nested too deep; `field` is `body`",
    401: "missing, wrong or revoked key, or no keys configured; `field` is `Authorization`",
    403: "an action outside the key's action patterns; `field` is `action` (or `items.N.action`)",
    404: "unknown id, or a request another key filed (the same answer); `field` is `id`",
    408: "the body did not arrive within 10 s; `field` is `body`",
    409: "already final (cancel), or the tool call already started or ended (execution); `field` is `id`",
    413: "body over 1 MiB; `field` is `body`",
    422: "invalid input; `field` names it (e.g. `timeout`, `items.2.params`, `wait`)",
    429: "this key is over its rate; wait `Retry-After` seconds",
    503: "Redis unreachable (nothing was recorded), or this process is overloaded (then `Retry-After` "
    "says when to come back); try again",
}


def _answers(ok: dict[int, tuple[str, dict[str, Any]]], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(code): {"description": text, **body} for code, (text, body) in ok.items()}
    for code in errors:
        out[str(code)] = {"description": _REFUSALS[code], **_json("ErrorBody")}
        if code in (429, 503):
            out[str(code)]["headers"] = {"Retry-After": {**_RETRY_AFTER, "required": code == 429}}
        if code == 401:
            out[str(code)]["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}}
            }
    return out


def _inline(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"content": {"application/json": {"schema": schema}}}


def spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    rid = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "the request id the filing call answered"}
    view = ("the request view", _json("RequestView"))
    started = _inline({"started": {"const": True}}, ["started"])
    finished = _inline({"finished": {"const": True}}, ["finished"])
    recorded = {"content": {"application/json": {"schema": {"oneOf": [
        started["content"]["application/json"]["schema"], finished["content"]["application/json"]["schema"],
    ]}}}}
    health = _inline({"ok": {"type": "boolean"}, "redis": {"type": "string", "enum": ["up", "down", "busy"]},
                      "error": {"type": "string"}}, ["ok", "redis"])
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "hitl-router",
            "version": "1",
            "description": "Approvals for AI agents, decided in Slack. Authenticate with "
            "`Authorization: Bearer <secret>` (a key from `hitl keys create`, or HITL_API_KEYS). "
            "A key reads, waits on and cancels only the requests it filed (an admin key: all); "
            "idempotency keys are per API key; every call counts toward the key's rate. "
            "Every refusal is `{\"error\": ..., \"field\": ...}` (ErrorBody).",
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/requests": {
                "post": {
                    "operationId": "createRequest",
                    "summary": "File a request (the Python client's request() arguments)",
                    "requestBody": {"required": True, **_json("RequestInput")},
                    "responses": _answers(
                        {201: ("filed", _json("RequestView")),
                         200: ("same idempotency_key: the earlier request", _json("RequestView"))},
                        400, 401, 403, 408, 413, 422, 429, 503,
                    ),
                }
            },
            "/v1/requests/{id}": {
                "get": {
                    "operationId": "getRequest",
                    "summary": "Read a request; ?wait=S holds until it is final or S seconds pass",
                    "parameters": [
                        rid,
                        {"name": "wait", "in": "query", "required": False,
                         "description": "seconds to hold the call while the request is not final (0 to 60)",
                         "schema": {"type": "number", "minimum": 0, "maximum": 60}},
                    ],
                    "responses": _answers({200: view}, 401, 404, 422, 429, 503),
                }
            },
            "/v1/requests/{id}/cancel": {
                "post": {
                    "operationId": "cancelRequest",
                    "summary": "Withdraw a pending request",
                    "parameters": [rid],
                    "responses": _answers(
                        {200: ("cancelled", _json("RequestView"))}, 401, 404, 409, 429, 503
                    ),
                }
            },
            "/v1/requests/{id}/execution": {
                "post": {
                    "operationId": "recordExecution",
                    "summary": "Record that the approved tool call starts ({\"state\": \"started\"}: "
                    "200 {\"started\": true}, 409 when it already started) or ended "
                    "({\"state\": \"finished\", \"ok\": true})",
                    "parameters": [rid],
                    "requestBody": {"required": True, **_json("ExecutionInput")},
                    "responses": _answers(
                        {200: ("recorded: {\"started\": true} or {\"finished\": true}", recorded)},
                        400, 401, 404, 408, 409, 413, 422, 429, 503,
                    ),
                }
            },
            "/v1/batches": {
                "post": {
                    "operationId": "createBatch",
                    "summary": "File a plan reviewed on one card (request_batch over HTTP)",
                    "requestBody": {"required": True, **_json("BatchInput")},
                    "responses": _answers(
                        {201: ("filed", _json("BatchView"))}, 400, 401, 403, 408, 413, 422, 429, 503
                    ),
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "200 while Redis answers, else 503",
                    "security": [],
                    "responses": {
                        "200": {"description": "healthy", **health},
                        "503": {"description": "Redis down, or this process busy (then `Retry-After`)",
                                "headers": {"Retry-After": _RETRY_AFTER}, **health},
                    },
                }
            },
        },
        "webhooks": {
            "request.final": {
                "post": {
                    "summary": "A request turned final (Standard Webhooks: webhook-id, webhook-timestamp, "
                    "webhook-signature)",
                    "requestBody": {"required": True, **_json("WebhookPayload")},
                    "responses": {"2XX": {"description": "delivered; anything else is retried or given up"}},
                }
            }
        },
    }


def _lowered(node: Any) -> Any:
    """One JSON Schema 2020-12 node as OpenAPI 3.0's schema dialect says it."""
    if isinstance(node, list):
        return [_lowered(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _lowered(v) for k, v in node.items()}
    members = out.get("anyOf")
    if isinstance(members, list) and {"type": "null"} in members:
        rest = [m for m in members if m != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        else:
            out["anyOf" if len(rest) > 1 else "allOf"] = rest
        out["nullable"] = True
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out.pop(bound)
            out[bound] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def for_swagger_ui(document: dict[str, Any]) -> dict[str, Any]:
    """`document` lowered to OpenAPI 3.0.3, which the bundled Swagger UI (4.x) renders; the
    3.1 document at /openapi.json stays the reference."""
    lowered = copy.deepcopy(document)
    lowered["openapi"] = "3.0.3"
    lowered["x-webhooks"] = lowered.pop("webhooks")
    lowered["components"]["schemas"] = _lowered(lowered["components"]["schemas"])
    for item in lowered["paths"].values():
        for operation in item.values():
            for answer in operation["responses"].values():
                for media in answer.get("content", {}).values():
                    media["schema"] = _lowered(media["schema"])
    return lowered


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hitl-router API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<noscript><p>The API is described in <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "SWAGGER_UI_DOCUMENT", dom_id: "#ui"});</script>
<p>The reference document (OpenAPI 3.1): <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
""".replace("SWAGGER_UI_DOCUMENT", SWAGGER_UI_DOCUMENT)


def routes() -> list[BaseRoute]:
    document = spec()
    lowered = for_swagger_ui(document)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def openapi_30(request: Request) -> JSONResponse:
        return JSONResponse(lowered)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route(SWAGGER_UI_DOCUMENT, openapi_30, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui"),
    ]
