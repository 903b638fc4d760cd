"""The review queue: unsure items are marked, listed page by page, and leave the queue when a person corrects them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from classification.config import ClassificationSettings
from classification.main import create_app
from classification.model.embedding import Encoder
from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    FEEDBACK_RAW,
    RawFeedback,
    feedback_id_for,
)
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import publish_events, query_store, read_events, serve_app, store_url

TEXTS = ["The app crashes every time I open the settings page",
         "Please add a dark mode to the editor",
         "How do I change my billing address?",
         "Ticket 42",
         "I love how fast the new search is"]


def _raw(n: int, text: str) -> RawFeedback:
    now = datetime.now(UTC)
    return RawFeedback.model_validate({"feedback_id": feedback_id_for("api", f"review-{n}"), "source": "api",
                                       "external_id": f"review-{n}", "channel": "ticket", "text": text,
                                       "created_at": now, "received_at": now})


async def test_unsure_items_are_queued_paged_filtered_and_cleared_by_a_correction(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        encoder: Encoder) -> None:
    raws = [_raw(n, t) for n, t in enumerate(TEXTS)]
    await ensure_topics(kafka_settings)
    await publish_events(kafka_settings, FEEDBACK_RAW, raws, key="feedback_id")
    # Kind under 0.999 is "unsure" for every item; sentiment never is: the queue holds all five, for `kind`.
    settings = ClassificationSettings(database_url=store_url(tmp_path, "classification"), kafka=kafka_settings,
                                      common=common_settings,
                                      review_thresholds={"sentiment": 0.0, "kind": 0.999, "themes": 0.0})
    async with serve_app(create_app(settings, encoder=encoder)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}, timeout=60) as client:
        events = await read_events(kafka_settings, FEEDBACK_CLASSIFIED, lambda es: len(es) >= len(raws),
                                   what="every item classified")
        assert all(e.data.needs_review and e.data.review_reasons == ["kind"] for e in events)
        assert all(e.data.sentiment.confidence is not None and 0 < e.data.kind_confidence < 1 for e in events)

        first = await client.get("/v1/review", params={"limit": 2})
        assert first.status_code == 200, first.text
        assert first.json()["total"] == 5 and len(first.json()["items"]) == 2 and first.json()["next_cursor"]
        seen = [i["feedback_id"] for i in first.json()["items"]]
        cursor = first.json()["next_cursor"]
        while cursor:
            page = (await client.get("/v1/review", params={"limit": 2, "cursor": cursor})).json()
            seen += [i["feedback_id"] for i in page["items"]]
            cursor = page["next_cursor"]
        assert sorted(seen) == sorted(str(r.feedback_id) for r in raws) and len(seen) == len(set(seen))

        assert (await client.get("/v1/review", params={"reason": "sentiment"})).json()["items"] == []
        assert len((await client.get("/v1/review", params={"reason": "kind"})).json()["items"]) == 5
        bugs = (await client.get("/v1/review", params={"kind": "bug"})).json()["items"]
        assert [i["text"] for i in bugs] == [TEXTS[0]]
        malformed = await client.get("/v1/review", params={"cursor": "not-a-cursor"})
        assert malformed.status_code == 400 and malformed.json()["errors"][0]["field"] == "cursor"
        assert (await client.get("/v1/review", params={"limit": 0})).status_code == 422

        corrected = await client.post(f"/v1/feedback/{raws[3].feedback_id}/labels", json={"kind": "other"})
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["needs_review"] is False and corrected.json()["review_reasons"] == []
        after = (await client.get("/v1/review")).json()
        assert after["total"] == 4 and str(raws[3].feedback_id) not in [i["feedback_id"] for i in after["items"]]
    flags = dict(await query_store(settings.database_url, "SELECT feedback_id, needs_review FROM classifications"))
    assert sum(bool(v) for v in flags.values()) == 4 and not flags[str(raws[3].feedback_id)]
