"""The importer's bounded retry of one batch (tenacity): 5xx, 429 and unreachable ingest are retried, Retry-After
honoured, anything else refused at once, and it gives up after ``retries``. An in-process transport stands in for
ingest; the waits are recorded, not slept."""

from __future__ import annotations

import httpx
import pytest

from ingest.tools.importer.errors import ImportInterrupted, ImportRefused
from ingest.tools.importer.run import _post

BODY: list[dict[str, object]] = [{"source": "api", "external_id": "1", "text": "hi"}]


def _client(answers: list[httpx.Response | Exception]) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.AsyncClient(base_url="http://ingest.test", transport=httpx.MockTransport(handler)), seen


def _accepted(n: int = 1) -> httpx.Response:
    return httpx.Response(202, json={"feedback_ids": [f"id-{i}" for i in range(n)]})


async def test_transient_failures_are_retried_and_retry_after_is_honoured() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client, seen = _client([
        httpx.Response(503, json={"detail": "store locked"}, headers={"retry-after": "7"}),
        httpx.Response(429, json={"detail": "slow down"}, headers={"retry-after": "500"}),
        httpx.ConnectError("refused"),
        httpx.Response(502, text="bad gateway"),
        _accepted(),
    ])
    async with client:
        await _post(client, BODY, retries=5, sleep=sleep)
    assert len(seen) == 5
    assert waits[:2] == [7.0, 60.0], "Retry-After is honoured, capped at 60 s"
    assert 2.0 <= waits[2] <= 2.5 and 4.0 <= waits[3] <= 4.5, f"0.5 s doubling per attempt, jittered: {waits}"


async def test_it_gives_up_after_the_retries_with_the_last_problem() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client, seen = _client([httpx.Response(500, json={"detail": f"boom {n}"}) for n in range(3)])
    async with client:
        with pytest.raises(ImportInterrupted, match="ingest answered 500: boom 2"):
            await _post(client, BODY, retries=2, sleep=sleep)
    assert len(seen) == 3 and len(waits) == 2


@pytest.mark.parametrize(("answer", "message"), [
    (httpx.Response(401, json={"detail": "bad key"}), "ingest refused the API key (401): bad key"),
    (httpx.Response(422, json={"detail": "text missing"}), "ingest answered 422: text missing"),
    (_accepted(2), "ingest acknowledged 2 of 1 items"),
])
async def test_answers_a_retry_will_not_change_are_refused_at_once(answer: httpx.Response, message: str) -> None:
    async def sleep(seconds: float) -> None:
        raise AssertionError("no retry expected")

    client, seen = _client([answer])
    async with client:
        with pytest.raises(ImportRefused) as refused:
            await _post(client, BODY, retries=5, sleep=sleep)
    assert str(refused.value) == message and len(seen) == 1
