"""The consumer's batch routing (:mod:`notification.service.routing_batch`) against a real SQLite store: a batch of
events queues exactly what routing them one by one queues; an event whose savepoint is rolled back leaves nothing,
not even a throttle count; an erasure in the middle of a batch blanks what the batch queued before it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notification_testkit import classified, insight, notification_settings
from sqlalchemy import text

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, PRIVACY, ErasureRequest
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.db import UnitOfWorkFactory, create_engine, session_factory, upgrade
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import store_url
from notification.consumer import subscriptions
from notification.domain.erasure import ERASED_ERROR
from notification.domain.targets import TargetPolicy
from notification.main import MIGRATIONS
from notification.service.routing import route_event
from notification.service.routing_batch import BatchEvent, NoiseSettings, start_batch
from notification.service.rules import RuleDraft, create_rule
from notification.service.teams import TeamDraft, create_team
from notification.store.models import runtime_tables

POLICY = TargetPolicy(https_only=False, allow_private=True)
SCHEDULE = (0.0,)


def _hook(name: str) -> dict[str, Any]:
    return {"type": "webhook", "url": f"https://hooks.example.com/{name}", "secret": f"s-{name}"}


async def _store(tmp_path: Path, name: str) -> tuple[UnitOfWorkFactory, Any]:
    engine = create_engine(store_url(tmp_path, name))
    await upgrade(engine, MIGRATIONS)
    uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
    now = datetime.now(UTC)
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"),
             "end": (now + timedelta(hours=1)).strftime("%H:%M"), "timezone": "UTC"}
    await create_team(uow, TeamDraft("night", quiet))
    eq = [{"field": "kind", "op": "eq", "value": "bug"}]
    for draft in [RuleDraft("bugs, throttled", "day", {"all": eq}, [_hook("a"), _hook("b")],
                            throttle={"limit": 2, "window_s": 3600}),
                  RuleDraft("everything", "day", {"all": []}, [_hook("c")]),
                  RuleDraft("quiet bugs", "night", {"all": eq}, [_hook("d")]),
                  RuleDraft("nothing", "day", {"any": []}, [_hook("e")])]:
        await create_rule(uow, draft, POLICY)
    return uow, engine


def _events() -> list[BatchEvent]:
    kinds = ["bug", "question", "bug", "bug", "praise", "bug"]
    out = []
    for n, kind in enumerate(kinds):
        data = classified(kind=kind).model_dump(mode="json", by_alias=True)
        out.append(BatchEvent("feedback", f"evt-{n}", data, data["feedback_id"], data["feedback_id"]))
    for n in range(2):  # two insights of one episode: the second is not sent again
        data = insight("warning").model_dump(mode="json", by_alias=True)
        out.append(BatchEvent("insight", f"ins-{n}", data, data["insight_id"], data["insight_id"]))
    return out


async def _outcome(engine: Any) -> dict[str, Any]:
    """What the store holds, named so that two stores compare (rule names, not ids; no times)."""
    async with engine.connect() as conn:
        deliveries = sorted(tuple(r) for r in (await conn.execute(text(
            "SELECT d.event_id, r.name, d.channel_index, d.status, d.digest_id IS NOT NULL, d.event_kind "
            "FROM deliveries d JOIN rules r ON r.id = d.rule_id WHERE d.event_kind != 'digest'"))).all())
        digests = sorted(tuple(r) for r in (await conn.execute(text(
            "SELECT r.name, d.channel_index, d.status FROM deliveries d JOIN rules r ON r.id = d.rule_id "
            "WHERE d.event_kind = 'digest'"))).all())
        windows = sorted(tuple(r) for r in (await conn.execute(text(
            "SELECT r.name, w.channel_index, w.sent FROM throttle_windows w JOIN rules r ON r.id = w.rule_id"
        ))).all())
        episodes = sorted(tuple(r) for r in (await conn.execute(text(
            "SELECT r.name, e.event_id, e.severity FROM insight_episodes e JOIN rules r ON r.id = e.rule_id"
        ))).all())
    return {"deliveries": deliveries, "digests": digests, "windows": windows, "episodes": episodes}


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[tuple[UnitOfWorkFactory, Any], tuple[UnitOfWorkFactory, Any]]]:
    one, batch = await _store(tmp_path, "one"), await _store(tmp_path, "batch")
    yield one, batch
    await one[1].dispose()
    await batch[1].dispose()


async def test_a_batch_queues_what_routing_each_event_alone_queues(
        stores: tuple[tuple[UnitOfWorkFactory, Any], tuple[UnitOfWorkFactory, Any]]) -> None:
    (one_uow, one_engine), (batch_uow, batch_engine) = stores
    events = _events()
    for event in events:
        async with one_uow() as uow:
            await route_event(uow, event.kind, event.id, event.data, schedule=SCHEDULE,  # type: ignore[arg-type]
                              subject=event.subject)
            await uow.commit()
    woken = []
    async with batch_uow() as uow:
        batch = await start_batch(uow, schedule=SCHEDULE, jitter=0.1, noise=NoiseSettings(),
                                  wake=lambda: woken.append(1))
        batch.expect(events)
        for event in events:
            async with uow.savepoint():
                await batch.handle(uow.session, event)
        assert not woken, "the worker is woken after the commit, not before"
        await uow.commit()
    assert woken == [1]
    alone, together = await _outcome(one_engine), await _outcome(batch_engine)
    assert together == alone
    assert ("bugs, throttled", 0, 2) in together["windows"], "two bugs let through, the other two digested"
    assert {status for *_, status, _, _ in together["deliveries"]} == {"pending", "digested"}
    assert len([d for d in together["deliveries"] if d[0].startswith("ins-")]) == 1, "the episode is sent once"


async def test_an_event_rolled_back_leaves_no_delivery_and_no_throttle_count(
        stores: tuple[tuple[UnitOfWorkFactory, Any], tuple[UnitOfWorkFactory, Any]]) -> None:
    _, (batch_uow, engine) = stores
    bugs = [e for e in _events() if e.data.get("kind") == "bug"][:3]
    async with batch_uow() as uow:
        batch = await start_batch(uow, schedule=SCHEDULE, jitter=0.1, noise=NoiseSettings(), wake=lambda: None)
        batch.expect(bugs)
        async with uow.savepoint():
            await batch.handle(uow.session, bugs[0])
        with pytest.raises(RuntimeError):
            async with uow.savepoint():  # routed, then the event fails (say, its processed mark): rolled back
                await batch.handle(uow.session, bugs[1])
                raise RuntimeError("after routing")
        async with uow.savepoint():
            await batch.handle(uow.session, bugs[2])
        await uow.commit()
    outcome = await _outcome(engine)
    assert {d[0] for d in outcome["deliveries"]} == {bugs[0].id, bugs[2].id}
    assert ("bugs, throttled", 0, 2) in outcome["windows"], "the rolled-back event did not use up a slot"
    assert all(d[3] == "pending" for d in outcome["deliveries"] if d[1] == "bugs, throttled")


async def test_an_erasure_in_the_batch_blanks_what_the_batch_queued_before_it(
        tmp_path: Path, stores: tuple[tuple[UnitOfWorkFactory, Any], tuple[UnitOfWorkFactory, Any]],
        kafka_settings: KafkaSettings, common_settings: CommonSettings) -> None:
    _, (batch_uow, engine) = stores
    handlers = {s.topic.name: s for s in subscriptions(notification_settings(tmp_path, kafka_settings,
                                                                             common_settings))}
    item = classified(kind="question")
    first = new_envelope(FEEDBACK_CLASSIFIED, item, source="/tests", event_id="evt-first")
    again = new_envelope(FEEDBACK_CLASSIFIED, item, source="/tests", event_id="evt-again")
    other = new_envelope(INSIGHTS, insight("info"), source="/tests", event_id="evt-insight")
    erase = new_envelope(PRIVACY, ErasureRequest(request_id=uuid.uuid4(), feedback_ids=[item.feedback_id],
                                                 requested_at=datetime.now(UTC)),
                         source="/tests")
    feedback, insights, privacy = (handlers[t.name] for t in (FEEDBACK_CLASSIFIED, INSIGHTS, PRIVACY))
    await feedback.prepare([first, again])  # type: ignore[misc]
    await insights.prepare([other])  # type: ignore[misc]
    async with batch_uow() as uow:
        for sub, envelope in [(feedback, first), (insights, other), (privacy, erase), (feedback, again)]:
            async with uow.savepoint():
                await sub.handler(uow, envelope)
        await uow.commit()
    async with engine.connect() as conn:
        rows = {r[0]: (r[1], r[2]) for r in (await conn.execute(text(
            "SELECT event_id, status, last_error FROM deliveries WHERE event_kind = 'feedback'"))).all()}
    assert rows == {"evt-first": ("failed", ERASED_ERROR)}, "queued before the erasure: blanked; after it: none"
