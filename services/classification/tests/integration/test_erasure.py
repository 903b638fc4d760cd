"""privacy.v1 on a real broker: classification deletes the items' labels, corrections and retained events, once,
and never labels an erased item whose raw event arrives later."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from classification.config import ClassificationSettings
from classification.main import create_app
from classification.model.embedding import Encoder
from feedbackloop.contracts import FEEDBACK_RAW, PRIVACY, ErasureRequest, RawFeedback, feedback_id_for
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import publish_events, query_store, serve_app, store_url, wait_for


def _raw(external_id: str, customer: str, text: str) -> RawFeedback:
    now = datetime.now(UTC)
    return RawFeedback.model_validate({"feedback_id": feedback_id_for("api", external_id), "source": "api",
                                       "external_id": external_id, "channel": "api", "text": text,
                                       "customer": {"id": customer}, "created_at": now, "received_at": now})


async def test_privacy_event_erases_labels_and_corrections_once(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
    encoder: Encoder,
) -> None:
    acme = _raw("1", "acme", "Acme here: the invoice export crashes every time")
    globex = _raw("2", "globex", "Globex here: the invoice export crashes every time")
    late = _raw("3", "acme", "Acme again: an item still in flight when the erasure came")
    after = _raw("4", "globex", "Globex again: dark mode please")
    settings = ClassificationSettings(database_url=store_url(tmp_path, "classification"), kafka=kafka_settings,
                                      common=common_settings)
    db = settings.database_url
    await ensure_topics(kafka_settings)
    await publish_events(kafka_settings, FEEDBACK_RAW, (acme, globex), key="feedback_id", partition=0)

    async def ids(table: str) -> set[str]:
        return {r[0] for r in await query_store(db, f"SELECT feedback_id FROM {table}")}

    async with serve_app(create_app(settings, encoder=encoder)) as url:
        await wait_for(lambda: ids("classifications"), lambda s: len(s) == 2, what="both items classified",
                       timeout=60)
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            corrected = await client.post(f"/v1/feedback/{acme.feedback_id}/labels", json={"kind": "bug"})
            assert corrected.status_code in (200, 202), corrected.text
        request = ErasureRequest(request_id=uuid.uuid4(), customer_id="acme",
                                 feedback_ids=[acme.feedback_id, late.feedback_id],
                                 requested_at=datetime.now(UTC), reason="test")
        # the same request twice, under two event ids (a replay by hand): applied once
        await publish_events(kafka_settings, PRIVACY, (request, request), key="request_id", partition=0)
        await wait_for(lambda: query_store(db, "SELECT request_id, items FROM erasures"),
                       lambda rows: rows == [(str(request.request_id), 2)], what="the erasure recorded")
        await publish_events(kafka_settings, FEEDBACK_RAW, (late, after), key="feedback_id", partition=0)
        await wait_for(lambda: ids("classifications"), lambda s: str(after.feedback_id) in s,
                       what="the item after the late one classified", timeout=60)

    assert await ids("classifications") == {str(globex.feedback_id), str(after.feedback_id)}
    assert await ids("corrections") == set()
    keys = {r[0] for r in await query_store(db, "SELECT key FROM outbox WHERE topic = 'feedback.classified.v1'")}
    assert keys == {str(globex.feedback_id), str(after.feedback_id)}, "no retained event of an erased item"
    assert await ids("erased_items") == {str(acme.feedback_id), str(late.feedback_id)}
    assert len(await query_store(db, "SELECT request_id FROM erasures")) == 1
