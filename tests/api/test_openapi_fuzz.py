"""Bad input at scale: schemathesis generates requests from each service's own OpenAPI document.

Each service runs in-process under a real uvicorn server (``serve_app``) with a real broker and a fresh
store, and every operation of its ``/openapi.json`` gets ``API_FUZZ_EXAMPLES`` generated requests (valid
and invalid ones), sent with an admin key. Two checks decide: no request may get a 5xx, and every
response must match the schema the document gives for its status. A failing operation is reported with
the request schemathesis shrank it to; the others still run, so one test names every failure of a service.

The server runs on its own event loop in a thread: schemathesis' calls are synchronous.
Classification runs on its rules alone (``embeddings=False``): the API surface is the same, and loading
the embedding model would cost more than the fuzzing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app
from tests.api.openapi_documents import APPS

#: schemathesis draws some values with `random` inside its strategies, which Hypothesis warns about.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

#: Generated requests per operation: bounded so that the four services take well under two minutes.
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, response_schema_conformance]


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``serve_app(app)`` on an event loop of its own in a thread; yields the base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    url: list[str] = []
    stop: list[asyncio.Event] = []
    failure: list[BaseException] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        try:
            async with serve_app(app) as base:
                url.append(base)
                ready.set()
                await stop[0].wait()
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(90)
    if failure or not url:
        raise RuntimeError(f"the app did not start: {failure!r}")
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(60)
        loop.close()


def wait_ready(base_url: str, timeout: float = 90) -> None:
    """Until ``/readyz`` answers 200: before its consumer joined its group a service rightly answers 503 there."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{base_url}/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)  # a poll interval under a deadline (this test is synchronous: no wait_for)
    raise AssertionError(f"{base_url} not ready within {timeout}s; last /readyz: {last!r}")


@dataclass
class Fuzzed:
    cases: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz(base_url: str, key: str) -> Fuzzed:
    """Run every operation of the service's OpenAPI document; collect the shrunk failure of each one that fails."""
    document = requests.get(f"{base_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    result = Fuzzed()
    session = requests.Session()
    session.headers["authorization"] = f"Bearer {key}"
    for operation_result in schema.get_all_operations():
        operation = operation_result.ok()
        for mode in schemathesis.GenerationMode:  # valid requests, then requests that break the document
            failure = _fuzz_operation(operation, mode, base_url, session, result)
            if failure:
                result.failures.append(failure)
    return result


def _fuzz_operation(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, base_url: str,
                    session: requests.Session, result: Fuzzed) -> str | None:
    """``EXAMPLES`` requests for one operation in one mode; the failure (shrunk) with its request, or None."""
    last: dict[str, str] = {}

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        result.cases += 1
        last["request"] = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:600]
        response = case.call(base_url=base_url, session=session, timeout=30)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return None  # nothing in this operation can be made invalid (no parameters, no body)
    except Exception as exc:  # a failed check: report it, and go on with the other operations
        return (f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}\n"
                f"  request: {last.get('request')}")
    return None


@pytest.fixture
def kafka(broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=1)


@pytest.mark.parametrize("service", list(APPS))
def test_generated_requests_get_no_5xx_and_documented_responses(
    service: str, kafka: KafkaSettings, common_settings: CommonSettings, database_url: Callable[[str], str],
    admin_key: str, generated_cases: dict[str, int],
) -> None:
    app = APPS[service](database_url(service), kafka, common_settings)
    with served(app) as base_url:
        wait_ready(base_url)
        result = fuzz(base_url, admin_key)
    generated_cases[service] = result.cases
    assert result.cases >= EXAMPLES, f"{service}: only {result.cases} cases generated"
    assert not result.failures, f"{service}: {len(result.failures)} operations failed:\n" + "\n".join(result.failures)
