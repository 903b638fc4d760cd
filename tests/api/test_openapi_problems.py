"""Every service's OpenAPI document tells the truth about errors, and the answers match it (RFC 9457).

The documents come from the app factories alone (no server, broker or store): a ``Problem`` component, and on
every operation ``application/problem+json`` responses for what the shared app can answer it with: 401/403 where
a key is needed, 404 where there are path parameters, 400/408/413/415/422 where a body is read, 422 where there
are parameters, 503 everywhere but the probes. FastAPI's ``HTTPValidationError`` (``application/json``), a body we
never send, is gone. Then a few live answers (a real server, broker and store) are checked against the
``Problem`` schema, with their family's ``type`` URI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openapi_spec_validator
import pytest

from feedbackloop.contracts.webhooks import add_webhooks
from feedbackloop.http.problems import PROBLEM_BASE, PROBLEM_JSON, PROBLEM_TYPES, problem_response, problem_type
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app
from tests.api.openapi_documents import SERVICES, build_app

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("openapi")
    return {service: build_app(service, folder).openapi() for service in SERVICES}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def _expected(path: str, method: str, op: dict[str, Any]) -> set[str]:
    if path in ("/healthz", "/metrics"):
        return set()
    params = op.get("parameters", [])
    expected = {"503"}
    if op.get("security"):
        expected |= {"401", "403"}
    if any(p["in"] == "path" for p in params):
        expected.add("404")
    if "requestBody" in op:
        expected |= {"400", "413", "415", "422"}
    if params:
        expected.add("422")
    return expected


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_documents_its_problem_responses(service: str, documents: dict[str, Any]) -> None:
    document = documents[service]
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors"} <= set(problem["properties"])
    assert "HTTPValidationError" not in json.dumps(document), "FastAPI's default 422 body is still documented"
    missing, not_problem = [], []
    for path, method, op in _operations(document):
        statuses = set(op["responses"])
        if lacking := _expected(path, method, op) - statuses:
            missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
        for status, response in op["responses"].items():
            if int(status) >= 400 and response.get("content") != {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}:
                not_problem.append(f"{method.upper()} {path} {status}: {response.get('content')}")
    assert not missing, f"{service}: operations missing problem responses:\n" + "\n".join(missing)
    assert not not_problem, f"{service}: error responses that are not problem+json:\n" + "\n".join(not_problem)


def test_service_descriptions_of_their_errors_are_kept(documents: dict[str, Any]) -> None:
    responses = documents["ingest"]["paths"]["/v1/webhooks/{source}"]["post"]["responses"]
    assert responses["404"]["description"] == "Unknown source"
    assert responses["404"]["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}


def _validator(document: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(document["components"]["schemas"]["Problem"])


async def test_answers_are_documented_problems_with_their_family_type(
    documents: dict[str, Any], tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings,
    admin_key: str,
) -> None:
    app = build_app("notification", tmp_path, kafka_settings.model_copy(update={"topic_partitions": 1}),
                    common_settings)
    validator = _validator(documents["notification"])
    auth = {"authorization": f"Bearer {admin_key}"}
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        answers = {
            "unauthorized": await client.get("/v1/rules"),
            "malformed-json": await client.post("/v1/rules", content=b"{",
                                                headers={**auth, "content-type": "application/json"}),
            "unsupported-media-type": await client.post("/v1/rules", content=b"<rule/>",
                                                        headers={**auth, "content-type": "text/xml"}),
            "validation": await client.post("/v1/rules", json={}, headers=auth),
            "not-found": await client.get("/nowh%C3%A9re%20%1E"),
        }
    for family, answer in answers.items():
        assert answer.headers["content-type"] == PROBLEM_JSON, (family, answer.text)
        body = answer.json()
        validator.validate(body)
        assert body["type"] == PROBLEM_BASE + family and body["status"] == PROBLEM_TYPES[family][0], body
        documented = documents["notification"]["paths"]["/v1/rules"].get("post", {})["responses"]
        if family in ("malformed-json", "unsupported-media-type", "validation"):
            assert str(answer.status_code) in documented, (family, sorted(documented))
    assert answers["validation"].json()["errors"][0]["field"]
    assert answers["not-found"].json()["instance"] == "/nowh%C3%A9re%20%1E", "a URI reference, percent-encoded"
    assert answers["unsupported-media-type"].json()["errors"] == [
        {"field": "content-type", "message": "expected application/json"}]


def test_a_status_without_a_family_is_about_blank() -> None:
    assert problem_type(418) == "about:blank"
    assert problem_type(400) == PROBLEM_BASE + "bad-request"
    assert problem_type(400, "malformed-json") == PROBLEM_BASE + "malformed-json"


def test_the_readme_tables_every_problem_type() -> None:
    text = README.read_text()
    rows = set(re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", text, flags=re.MULTILINE))
    assert rows == {(family, str(status)) for family, (status, _) in PROBLEM_TYPES.items()}
    assert PROBLEM_BASE in text


def test_every_document_is_valid_openapi(documents: dict[str, Any]) -> None:
    for service, document in documents.items():
        try:
            openapi_spec_validator.validate(document)
        except Exception as exc:
            raise AssertionError(f"{service}: {exc}") from exc


def test_notification_webhook_deliveries_as_openapi_webhooks(documents: dict[str, Any]) -> None:
    """``add_webhooks`` describes what notification POSTs; its schema takes the body notification builds."""
    from notification.domain.payload import build_payload

    document = add_webhooks(json.loads(json.dumps(documents["notification"])))
    openapi_spec_validator.validate(document)
    assert set(document["webhooks"]) == {"feedback", "insight"}
    post = document["webhooks"]["insight"]["post"]
    assert {p["name"] for p in post["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    insight = {"insight_id": "6f1d5a0e-3c1b-5b7e-9a43-2f0c7d8e9b10", "type": "spike", "title": "t",
               "severity": "info", "window": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"},
               "created_at": "2026-01-01T01:00:00Z"}
    body = build_payload(event_kind="insight", rule_id="r1", rule_name="on-call", team="sre", data=insight,
                         event_id="e1")
    # The component with the document's components beside it, so that its "#/components/…" references resolve.
    schema = {**document["components"]["schemas"]["InsightDelivery"], "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)
    assert not jsonschema.Draft202012Validator(schema).is_valid({**body, "type": "feedback"})


@pytest.mark.parametrize("path", ["/v1/webhooks/d\x85\U000199a3)õ|z n]", "/a%zz?x#y[1]", "/nowhére \x1e",
                                  "/lone\udcff\ud800surrogates", "/v1/rules/x:y@z!$&'()*+,;=-._~"])
def test_instance_is_a_uri_reference_whatever_the_path(path: str) -> None:
    """The decoded request path, percent-encoded: what the ``Problem`` schema's ``format`` promises."""
    import jsonschema_rs  # schemathesis' validator: the one that checks the documented responses

    instance = json.loads(problem_response(404, "Not found", "x", instance=path).body)["instance"]
    assert jsonschema_rs.validator_for({"format": "uri-reference"}, validate_formats=True).is_valid(instance), instance
