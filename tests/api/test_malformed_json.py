"""Malformed JSON of any depth or number size is a 400 problem naming the body on every service, never a 500.

Each service runs under a real server with a real broker and store. The shared parts answer for them: the JSON
helpers (``feedbackloop.http.json_input``: ``POST /v1/classify``, cursors) and the problem handlers (FastAPI's
typed bodies: ``POST /v1/rules``; a route's own ``json.loads`` / ``yaml.safe_load``: ``PUT /v1/taxonomy``).
Ingest's routes are tested in services/ingest/tests/integration/test_hostile_input.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app

DEEP_LIST = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
LONG_INTEGER = b'{"text": "hi", "n": ' + b"9" * 5_000 + b"}"
JSON = {"content-type": "application/json"}


def _assert_malformed(answer: httpx.Response, what: str, field: str = "body") -> None:
    assert answer.status_code == 400, f"{what}: {answer.status_code} {answer.text[:300]}"
    assert answer.headers["content-type"] == "application/problem+json", what
    errors = answer.json()["errors"]
    assert errors[0]["field"] == field and errors[0]["message"], f"{what}: {errors}"


@pytest.fixture
def kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    return kafka_settings.model_copy(update={"topic_partitions": 1})


async def test_classification_classify_and_taxonomy(
    kafka: KafkaSettings, common_settings: CommonSettings, database_url: Callable[[str], str], admin_key: str
) -> None:
    from classification.config import ClassificationSettings
    from classification.main import create_app

    settings = ClassificationSettings(database_url=database_url("classification"), kafka=kafka,
                                      common=common_settings, embeddings=False)
    auth = {"authorization": f"Bearer {admin_key}"}
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        for name, body in {"deep list": DEEP_LIST, "deep object": DEEP_OBJECT, "long integer": LONG_INTEGER}.items():
            _assert_malformed(await client.post("/v1/classify", content=body, headers={**auth, **JSON}),
                              f"POST /v1/classify {name}")
            _assert_malformed(await client.put("/v1/taxonomy", content=body, headers={**auth, **JSON}),
                              f"PUT /v1/taxonomy {name}")
        deep_yaml = b"[" * 10_000 + b"]" * 10_000
        _assert_malformed(await client.put("/v1/taxonomy", content=deep_yaml,
                                           headers={**auth, "content-type": "application/yaml"}),
                          "PUT /v1/taxonomy deep YAML")
        still = await client.post("/v1/classify", json={"text": "The app crashes on login"}, headers=auth)
    assert still.status_code == 200, still.text


async def test_notification_typed_bodies_and_cursors(
    kafka: KafkaSettings, common_settings: CommonSettings, database_url: Callable[[str], str], admin_key: str
) -> None:
    from notification.config import NotificationSettings
    from notification.main import create_app

    settings = NotificationSettings(database_url=database_url("notification"), kafka=kafka, common=common_settings)
    auth = {"authorization": f"Bearer {admin_key}"}
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        for name, body in {"deep list": DEEP_LIST, "deep object": DEEP_OBJECT, "long integer": LONG_INTEGER}.items():
            answer = await client.post("/v1/rules", content=body, headers={**auth, **JSON})
            _assert_malformed(answer, f"POST /v1/rules {name}")
            assert answer.json()["title"] == "Malformed JSON"
        for name, raw in {"deep": DEEP_LIST, "long integer": b"[" + b"9" * 5_000 + b", 1]"}.items():
            cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            _assert_malformed(await client.get("/v1/deliveries", params={"cursor": cursor}, headers=auth),
                              f"GET /v1/deliveries cursor {name}", field="cursor")
