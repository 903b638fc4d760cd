"""The group commit's one-round-trip read and insert on SQLite store and find exactly what the session's
statements (the repository's) store and find."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from feedbackloop.db import create_engine, session_factory
from ingest.store.group_sql import GroupSql
from ingest.store.models import Base
from ingest.store.repository import FeedbackRepository

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _row(n: int, key: str | None, created: datetime) -> dict[str, Any]:
    return {
        "feedback_id": f"00000000-0000-0000-0000-{n:012d}", "source": "api", "external_id": f"é-{n}",
        "created_at": created, "received_at": created + timedelta(seconds=1),
        "item": {"text": "Zahlung schlägt fehl ✓", "n": n, "tags": ["a", "b"], "none": None},
        "raw": {"text": "Zahlung schlägt fehl ✓", "author": {"email": "jane@example.com"}}, "content_key": key,
    }


async def test_one_round_trip_stores_and_finds_what_the_session_does(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ingest.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = session_factory(engine)
        by_session = [_row(n, "k1" if n % 2 else None, T0 + timedelta(hours=n)) for n in range(0, 6)]
        by_group = [_row(n, "k1" if n % 2 else "k2", T0 + timedelta(hours=n - 6)) for n in range(6, 12)]
        async with sessions() as session, session.begin():
            await FeedbackRepository(session).insert_many(by_session)
        async with sessions() as session, session.begin():
            await GroupSql(session).insert_many(by_group)
        async with sessions() as session:
            stored = (await session.execute(text(
                "SELECT created_at, received_at, item, raw, external_id FROM feedback_items ORDER BY feedback_id"
            ))).all()
        # the same values stored the same way: only the number and the hour differ
        assert {(type(r[0]), len(r[0]), type(r[2])) for r in stored} == {(str, len(stored[0][0]), str)}
        assert stored[0][2].replace('"n": 0', "") == stored[6][2].replace('"n": 6', "")
        assert stored[0][3] == stored[6][3] and stored[0][0][10:] == stored[6][0][10:]

        ids = [r["feedback_id"] for r in by_session[:3] + by_group[:3]] + ["00000000-0000-0000-0000-999999999999"]
        window = (T0 - timedelta(hours=5), T0 + timedelta(hours=3))
        async with sessions() as session, session.begin():
            repo = FeedbackRepository(session)
            expected = (await repo.existing_ids(ids), await repo.with_content({"k1", "k2"}, *window))
        async with sessions() as session, session.begin():
            found = await GroupSql(session).load(ids, ({"k1", "k2"}, *window))
            nothing = await GroupSql(session).load(ids, None)
        assert found == expected
        assert nothing == (expected[0], {})
        assert sum(len(v) for v in expected[1].values()) == 6  # both keys, both writers, the end of the window
    finally:
        await engine.dispose()
