"""Group commit against a real server and a real store: concurrent requests share transactions, yet each
one is answered as if it had been alone, and nothing is acknowledged before its transaction commits.

Store failures are real ones: a trigger in the store refuses a row (one poisoned item) or every outbox row
(a failure after the items were written, before the commit).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from feedbackloop.contracts import feedback_id_for
from feedbackloop.db import create_engine
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, serve_app, store_url
from ingest.config import IngestSettings
from ingest.main import create_app

POISON = "poisoned-row"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
CANNY_SECRET = "group-commit-canny-secret"


def _canny(nonce: str) -> dict[str, str]:
    sig = base64.b64encode(hmac.new(CANNY_SECRET.encode(), nonce.encode(), hashlib.sha256).digest()).decode()
    return {"canny-nonce": nonce, "canny-signature": sig, "canny-timestamp": str(int(time.time() * 1000))}


def _triggers(dialect: str, *, table: str, when: str, name: str) -> list[str]:
    """DDL for a trigger refusing inserts into ``table`` whose row matches ``when`` (SQL on ``NEW``)."""
    if dialect == "postgresql":
        return [
            f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN IF {when} THEN "
            f"RAISE EXCEPTION '{POISON}'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
    return [f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN {when} BEGIN SELECT RAISE(ABORT, '{POISON}'); END"]


def _drop(dialect: str, *, table: str, name: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
    return [f"DROP TRIGGER {name}"]


async def _ddl(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _histogram(metrics: str) -> tuple[float, float]:
    """(items, transactions) of the group-commit histogram."""
    found = dict(re.findall(r'^feedbackloop_ingest_group_commit_items_(sum|count)\{service="ingest"\} (\S+)$', metrics,
                            re.M))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def _item(external_id: str, text_: str | None = None) -> dict[str, str]:
    return {"source": "api", "external_id": external_id, "text": text_ or f"Export to CSV times out ({external_id})"}


@pytest.fixture
def settings(tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings) -> IngestSettings:
    # a long linger makes the concurrent requests of each check share transactions on a busy CI machine too
    return IngestSettings(database_url=store_url(tmp_path, "ingest"), kafka=kafka_settings, common=common_settings,
                          group_commit_linger_ms=50, group_commit_max_items=64, canny_secret=CANNY_SECRET)


async def test_concurrent_requests_share_transactions_and_are_each_answered_alone(
    settings: IngestSettings, admin_key: str
) -> None:
    url = settings.database_url
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    distinct = [_item(f"d-{n}") for n in range(40)]
    twice = [_item(f"t-{n}") for n in range(10)]
    async with serve_app(create_app(settings)) as base:
        async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {admin_key}"},
                                     timeout=60) as client:

            async def post(body: object) -> httpx.Response:
                return await client.post("/v1/feedback", json=body)

            before = _histogram((await client.get("/metrics")).text)
            # 40 new items, 10 items posted twice at once (one as a one-item list), a burst of 60 requests;
            # each request's trace must run on into its own event although another task stores it
            answers = await asyncio.gather(
                *(post(b) for b in [*distinct, *twice, *([b] for b in twice)]),
                client.post("/v1/feedback", json=_item("traced"), headers={"traceparent": TRACEPARENT}),
                *(post({**_item(f"same-{n}", "The invoice PDF is blank!"), "author": {"email": "ann@example.com"}})
                  for n in range(2)),
            )
            after = _histogram((await client.get("/metrics")).text)

            # one webhook delivery replayed at once, in the same group: its single-use nonce lets one through
            canny = (Path(__file__).resolve().parents[1] / "fixtures/webhooks/canny/post_created.json").read_bytes()
            replays = await asyncio.gather(
                *(client.post("/v1/webhooks/canny", content=canny, headers=_canny("n-1")) for _ in range(3))
            )

            # one poisoned item among good ones: it alone fails, the others are stored
            await _ddl(url, _triggers(dialect, table="feedback_items", when=f"NEW.external_id = '{POISON}'",
                                      name="poison_item"))
            good = [_item(f"g-{n}") for n in range(12)]
            mixed = await asyncio.gather(*(post(b) for b in [*good[:6], _item(POISON), *good[6:]]))
            await _ddl(url, _drop(dialect, table="feedback_items", name="poison_item"))

            # a failure after the items were written and before the commit: nobody is acknowledged
            await _ddl(url, _triggers(dialect, table="outbox", when="1 = 1", name="poison_outbox"))
            doomed = [_item(f"x-{n}") for n in range(8)]
            failed = await asyncio.gather(*(post(b) for b in doomed))
            await _ddl(url, _drop(dialect, table="outbox", name="poison_outbox"))
            retried = await asyncio.gather(*(post(b) for b in doomed))

    assert [a.status_code for a in answers] == [202] * 63, [a.text for a in answers if a.status_code != 202]
    ids = [a.json()["feedback_ids"] for a in answers]
    assert ids[:40] == [[str(feedback_id_for("api", f"d-{n}"))] for n in range(40)]
    assert ids[40:50] == ids[50:60] == [[str(feedback_id_for("api", f"t-{n}"))] for n in range(10)]
    items, transactions = after[0] - before[0], after[1] - before[1]
    assert items == 63 and transactions < 63, f"63 requests took {transactions} transactions: no group commit"

    assert sorted(r.status_code for r in replays) == [202, 401, 401], [r.text for r in replays]
    assert [r.json()["check"] for r in replays if r.status_code == 401] == ["nonce", "nonce"]
    canny_ids = next(r.json()["feedback_ids"] for r in replays if r.status_code == 202)

    statuses = [r.status_code for r in mixed]
    assert statuses[6] == 503 and statuses[:6] + statuses[7:] == [202] * 12, statuses
    assert mixed[6].json()["title"] == "Not stored" and mixed[6].headers["retry-after"] == "1"

    assert [r.status_code for r in failed] == [503] * 8, [r.text for r in failed]
    assert [r.status_code for r in retried] == [202] * 8

    stored = await query_store(url, "SELECT external_id, COUNT(*) FROM feedback_items GROUP BY external_id")
    expected = {f"d-{n}" for n in range(40)} | {f"t-{n}" for n in range(10)} | {f"g-{n}" for n in range(12)}
    expected |= {f"x-{n}" for n in range(8)} | {"traced", "same-0", "same-1"}
    canny_external = await query_store(url, "SELECT external_id FROM feedback_items WHERE source = 'canny'")
    assert dict(stored) == dict.fromkeys(expected | {canny_external[0][0]}, 1), "each item stored once, poison never"
    events = await query_store(url, "SELECT key, COUNT(*) FROM outbox GROUP BY key")
    assert dict(events) == {**{str(feedback_id_for("api", e)): 1 for e in expected}, canny_ids[0]: 1}
    (headers,) = await query_store(url, "SELECT headers FROM outbox WHERE key = :key",
                                   key=str(feedback_id_for("api", "traced")))
    assert TRACE_ID in str(headers[0]), headers
    # the same author's same words, posted at once: stored both, the later linked to the earlier
    same = await query_store(url, "SELECT feedback_id, item FROM feedback_items WHERE external_id LIKE 'same-%'")
    links = {fid: (item if isinstance(item, dict) else json.loads(item)).get("duplicate_of") for fid, item in same}
    assert sorted(links.values(), key=str) == sorted([None, next(f for f, d in links.items() if d is None)], key=str)
