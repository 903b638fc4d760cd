"""The classifications store on a real SQLite file, migrated as the service migrates it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from classification.main import MIGRATIONS
from classification.store.repository import ClassificationRepository
from feedbackloop.contracts import ClassifiedFeedback, feedback_id_for
from feedbackloop.db import create_engine, session_factory, upgrade
from feedbackloop_testing import store_url


def _item(revision: int, kind: str) -> ClassifiedFeedback:
    now = datetime.now(UTC)
    return ClassifiedFeedback.model_validate({
        "feedback_id": feedback_id_for("api", "1"), "source": "api", "external_id": "1", "channel": "api",
        "text": "It crashes", "created_at": now, "received_at": now, "revision": revision,
        "sentiment": {"label": "neutral", "score": 0}, "kind": kind, "urgency": "normal",
        "model": {"name": "test", "version": "1"}, "classified_at": now})


async def test_upsert_is_idempotent_and_never_goes_back_a_revision(tmp_path: Path) -> None:
    engine = create_engine(store_url(tmp_path, "classification"))
    await upgrade(engine, MIGRATIONS)
    sessions = session_factory(engine)
    created = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            repo = ClassificationRepository(session)
            assert await repo.upsert(_item(1, "bug"), created_at=created) is True
            assert await repo.upsert(_item(1, "other"), created_at=created) is False  # same revision: kept as is
            assert await repo.upsert(_item(2, "question"), created_at=created) is True  # a correction wins
            assert await repo.upsert(_item(1, "bug"), created_at=created) is False  # a replay cannot undo it
        async with sessions() as session:
            row = await ClassificationRepository(session).get(str(feedback_id_for("api", "1")))
            assert row is not None
            assert (row.revision, row.kind, row.item["kind"], row.item["revision"]) == (2, "question", "question", 2)
    finally:
        await engine.dispose()
