"""``reclassify`` over a real store: a taxonomy change, a dry run, a real run through the outbox, corrections kept."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classification.config import ClassificationSettings
from classification.main import MIGRATIONS
from classification.model.classifier import build_classifier
from classification.model.embedding import Encoder
from classification.service import LiveState, classify_item, correct_item, put_taxonomy
from classification.service.reclassify import reclassify
from classification.store.models import runtime_tables
from feedbackloop.cli.main import app as cli
from feedbackloop.contracts import RawFeedback, feedback_id_for
from feedbackloop.db import UnitOfWorkFactory, create_engine, session_factory, upgrade
from feedbackloop_testing import query_store, store_url

TEXTS = ["Your podcast recommendations keep suggesting true crime shows to me",
         "The podcast recommendations are all true crime, I hate true crime",
         "Please add more podcast episodes about cooking",
         "How do I reset my password?",
         "I was charged twice for my subscription this month",
         "Love the new dashboard, great work!"]


def _raw(n: int, text: str) -> RawFeedback:
    now = datetime.now(UTC)
    return RawFeedback.model_validate({"feedback_id": feedback_id_for("api", str(n)), "source": "api",
                                       "external_id": str(n), "channel": "api", "text": text,
                                       "created_at": now, "received_at": now})


async def _outbox(url: str) -> list[tuple[str, int]]:
    """(key, revision) of each outbox row in order; the value is read as text on either dialect."""
    rows = await query_store(url, "SELECT key, value FROM outbox ORDER BY id")
    return [(key, json.loads(value)["data"]["revision"]) for key, value in rows]


async def test_dry_run_then_real_run_republishes_only_changes_and_keeps_corrections(
        tmp_path: Path, encoder: Encoder, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ClassificationSettings(database_url=store_url(tmp_path, "classification"))
    db = settings.database_url
    engine = create_engine(settings.database_url)
    await upgrade(engine, MIGRATIONS)
    units = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/feedbackloop/classification")
    live = LiveState(build_classifier(settings, encoder))
    for n, text in enumerate(TEXTS):
        async with units() as uow:
            await classify_item(uow, _raw(n, text), live)
            await uow.commit()
    corrected_id = str(feedback_id_for("api", "1"))
    await correct_item(units, live, corrected_id, {"kind": "complaint", "themes": []}, who="pat", key_id="k1")
    await live.close()
    document = {"version": "with-podcasts", "themes": [
        *({"id": t.id, "name": t.name, "description": t.description, "keywords": list(t.keywords),
           "parent": t.parent} for t in live.classifier.taxonomy.themes),
        {"id": "podcasts", "name": "Podcasts", "description": "Podcast shows, episodes and recommendations",
         "keywords": ["podcast*"]}]}
    await put_taxonomy(units, live, document, changed_by="test")
    await engine.dispose()
    published_before = await _outbox(db)
    assert len(published_before) == len(TEXTS) + 1

    shadow = await reclassify(settings, datetime.now(UTC) - timedelta(hours=1), dry_run=True,
                              state_dir=tmp_path / "state", encoder=encoder, progress=False)
    assert await _outbox(db) == published_before, "a dry run publishes nothing"
    assert shadow.seen == len(TEXTS) and shadow.kept_corrected == 1
    assert shadow.transitions["themes"]["(none) → podcasts"] == 2, shadow.summary()
    assert 0 < shadow.changed < len(TEXTS) and "DRY RUN" in shadow.summary()
    assert "(none) → podcasts" in shadow.summary()

    real = await reclassify(settings, datetime.now(UTC) - timedelta(hours=1), batch_size=2,
                            state_dir=tmp_path / "state", encoder=encoder, progress=False)
    assert (real.changed, real.published) == (shadow.changed, shadow.changed)
    assert real.transitions == shadow.transitions
    new_events = (await _outbox(db))[len(published_before):]
    assert len(new_events) == real.published
    stored = {fid: (json.loads(item) if isinstance(item, str) else item, kind, revision) for fid, item, kind, revision
              in await query_store(db, "SELECT feedback_id, item, kind, revision FROM classifications")}
    rows = {fid: (item["themes"][0]["id"] if item["themes"] else None) for fid, (item, _, _) in stored.items()}
    _, kind, revision = stored[corrected_id]
    assert rows[str(feedback_id_for("api", "0"))] == "podcasts"
    assert rows[corrected_id] is None and kind == "complaint", "the person's labels stand"
    assert revision == 2, "a corrected item whose other labels did not change is not re-published"
    assert not list((tmp_path / "state").glob("*.json")), "a finished run leaves no checkpoint"

    again = await reclassify(settings, datetime.now(UTC) - timedelta(hours=1), state_dir=tmp_path / "state",
                             encoder=encoder, progress=False)
    assert (again.changed, again.published) == (0, 0) and (await _outbox(db))[len(published_before):] == new_events

    monkeypatch.setenv("CLASSIFICATION_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CLASSIFICATION_MODEL_DIR", str(request.config.rootpath / "var" / "models"))
    # The command runs its own event loop: off this test's loop.
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["reclassify", "--since", "1h", "--dry-run",
                                                               "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    # A fresh process embeds in other batches (int8 dynamic quantization: a borderline label may move), so
    # only the wiring is checked here; the diffs themselves are checked above.
    assert "DRY RUN" in result.output and "'with-podcasts'" in result.output, result.output
    assert (await _outbox(db))[len(published_before):] == new_events
    bad = CliRunner().invoke(cli, ["reclassify", "--since", "yesterday-ish"])
    assert bad.exit_code == 1 and "--since" in bad.output
