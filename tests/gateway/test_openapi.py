"""`/openapi.json` is a valid OpenAPI 3.1 document that generated clients read right.

What a TypeScript or Go developer notices: the validator accepts it, an optional field is
optional in the generated type (no `"default": null`), and every refusal the server really
gives is in the document with the body it really has.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
import referencing
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from hitl.apikeys import ApiKeyStore, Rate
from hitl.fields import REQUIRED, PlanFields, RequestFields, names
from tests.gateway.conftest import Gateway

GATE = {"action": "deploy", "summary": "Deploy to prod", "mode": "gate"}


def test_the_served_document_is_valid_openapi_3_1_and_docs_get_a_valid_3_0_copy(gateway: Gateway) -> None:
    with gateway.anonymous() as anon:
        doc = anon.get("/openapi.json").json()
        page = anon.get("/docs").text
        lowered = anon.get("/docs/openapi-3.0.json").json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises, naming the offending node, when the document is not OpenAPI 3.1
    assert lowered["openapi"] == "3.0.3" and "/docs/openapi-3.0.json" in page
    validate(lowered)  # Swagger UI 4 (the bundled one) renders 3.0 only
    assert lowered["paths"].keys() == doc["paths"].keys()
    # Relabelled 3.0 the 3.1 document is invalid: the lowering is what makes /docs render.
    relabelled = {k: v for k, v in doc.items() if k != "webhooks"} | {"openapi": "3.0.3"}
    with pytest.raises(OpenAPIValidationError):
        validate(relabelled)


def test_optional_request_fields_carry_no_default_and_are_not_required(gateway: Gateway) -> None:
    schemas = gateway.http.get("/openapi.json").json()["components"]["schemas"]
    request, batch = schemas["RequestInput"], schemas["BatchInput"]
    assert set(request["required"]) == set(REQUIRED)
    assert set(request["properties"]) - set(request["required"]) == names(RequestFields)
    assert set(batch["properties"]) - set(batch["required"]) == names(PlanFields) | {"action"}
    for name in ("RequestInput", "BatchInput", "ExecutionInput"):
        with_default = [p for p, s in schemas[name]["properties"].items() if "default" in s]
        assert with_default == [], f"{name}: {with_default} carry a default (generators make them required)"
    assert 'Default: "plan"' in batch["properties"]["action"]["description"]
    # An answer's fields are always sent, so a client may rely on each one.
    view = schemas["RequestView"]
    assert set(view["required"]) == set(view["properties"]) >= {"execution", "policy_version"}
    assert schemas["ErrorBody"]["required"] == ["error"]


def _refusal_is_documented(doc: dict[str, Any], path: str, method: str, resp: httpx.Response) -> None:
    answers = doc["paths"][path][method]["responses"]
    code = str(resp.status_code)
    assert code in answers, f"{method.upper()} {path} answered {code}, which the document omits: {resp.text}"
    schema = answers[code]["content"]["application/json"]["schema"]
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        "urn:doc", referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT202012)
    )
    jsonschema.Draft202012Validator({"$ref": "urn:doc" + schema["$ref"]}, registry=registry).validate(resp.json())
    for header, spec in answers[code].get("headers", {}).items():
        if spec.get("required"):
            assert header in resp.headers, f"{code} lacks {header}"


def test_every_refusal_the_api_gives_is_described_with_its_body(gateway: Gateway) -> None:
    doc = gateway.http.get("/openapi.json").json()
    http = gateway.http
    filed = http.post("/v1/requests", json=GATE).json()["id"]
    keys = ApiKeyStore(gateway.approvals.redis, gateway.approvals.keys)
    _, narrow = keys.create("narrow", rate=Rate(20), actions=["send_*"])
    _, slow = keys.create("slow", rate=Rate.parse("0.5/s"))
    seen: set[int] = set()

    def check(path: str, method: str, resp: httpx.Response, status: int) -> None:
        assert resp.status_code == status, resp.text
        _refusal_is_documented(doc, path, method, resp)
        seen.add(status)

    check("/v1/requests", "post", http.post("/v1/requests", content=b"{nope"), 400)
    with gateway.anonymous() as anon:
        check("/v1/requests", "post", anon.post("/v1/requests", json=GATE), 401)
        check("/v1/requests/{id}", "get", anon.get(f"/v1/requests/{filed}"), 401)
        with_narrow = {"Authorization": f"Bearer {narrow}"}
        check("/v1/requests", "post", anon.post("/v1/requests", json=GATE, headers=with_narrow), 403)
        check("/v1/batches", "post", anon.post("/v1/batches", headers=with_narrow,
                                               json={"summary": "plan", "items": [GATE]}), 403)
        with_slow = {"Authorization": f"Bearer {slow}"}
        anon.get("/v1/requests/r0", headers=with_slow)
        check("/v1/requests/{id}", "get", anon.get("/v1/requests/r0", headers=with_slow), 429)
    check("/v1/requests/{id}", "get", http.get("/v1/requests/nope"), 404)
    check("/v1/requests/{id}", "get", http.get(f"/v1/requests/{filed}", params={"wait": "61"}), 422)
    check("/v1/requests", "post", http.post("/v1/requests", json={**GATE, "timeout": -1}), 422)
    check("/v1/requests", "post", http.post("/v1/requests", content=b" " * (1024 * 1024 + 1)), 413)
    check("/v1/batches", "post", http.post("/v1/batches", json={"summary": "plan", "items": []}), 422)
    check("/v1/requests/{id}/execution", "post",
          http.post(f"/v1/requests/{filed}/execution", json={"state": "begun"}), 422)
    assert http.post(f"/v1/requests/{filed}/cancel").status_code == 200
    check("/v1/requests/{id}/cancel", "post", http.post(f"/v1/requests/{filed}/cancel"), 409)
    check("/v1/requests/{id}/cancel", "post", http.post("/v1/requests/nope/cancel"), 404)
    assert seen == {400, 401, 403, 404, 409, 413, 422, 429}


def test_every_route_describes_the_refusals_its_code_can_give(gateway: Gateway) -> None:
    """The ones a test cannot provoke cheaply (408, 503) are in the document all the same."""
    paths = gateway.http.get("/openapi.json").json()["paths"]
    expected = {
        ("/v1/requests", "post"): {400, 401, 403, 408, 413, 422, 429, 503},
        ("/v1/requests/{id}", "get"): {401, 404, 422, 429, 503},
        ("/v1/requests/{id}/cancel", "post"): {401, 404, 409, 429, 503},
        ("/v1/requests/{id}/execution", "post"): {400, 401, 404, 408, 409, 413, 422, 429, 503},
        ("/v1/batches", "post"): {400, 401, 403, 408, 413, 422, 429, 503},
    }
    for (path, method), codes in expected.items():
        answers = paths[path][method]["responses"]
        refusals = {int(c) for c in answers if int(c) >= 400}
        assert refusals == codes, (path, method)
        for code in codes:
            assert answers[str(code)]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
        assert answers["503"]["headers"]["Retry-After"]["required"] is False
