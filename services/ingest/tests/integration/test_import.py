"""``feedbackloop import`` against a real ingest (real server, real store, real broker): every review lands
exactly once, an interrupted import resumes, a re-import adds nothing; the CLI end to end on a Google Play UTF-16
export and on a file with a broken encoding. On reviews the test writes itself, and (the ``handed_data`` tier) on
the handed app-review dataset and its Mac Roman golden set."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feedbackloop.contracts import feedback_id_for
from feedbackloop.db import UnitOfWorkFactory
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import handed_data, serve_app
from ingest.config import IngestSettings
from ingest.main import create_app
from ingest.store.models import FeedbackItem, runtime_tables
from ingest.tools.importer.run import ImportRequest, run_import

DATASET = "datasets/app-reviews-urr/reviews.jsonl"
FEEDBACKLOOP = str(Path(sys.executable).parent / "feedbackloop")


class Stop(Exception):
    """Stands for Ctrl-C between two batches."""


async def _stored(uow: UnitOfWorkFactory, source: str) -> tuple[set[str], int, int]:
    """(feedback ids stored for ``source``, rows for it, outbox events queued in all)."""
    async with uow() as unit:
        ids = set((await unit.session.execute(
            select(FeedbackItem.feedback_id).where(FeedbackItem.source == source))).scalars())
        rows = (await unit.session.execute(
            select(func.count()).select_from(FeedbackItem).where(FeedbackItem.source == source))).scalar_one()
        events = (await unit.session.execute(select(func.count()).select_from(runtime_tables.outbox))).scalar_one()
    return ids, rows, events


async def _cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        FEEDBACKLOOP, "import", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, err.decode()


async def _lands_once_resumes_and_reimports_nothing(
    dataset: Path, batch: int, state: Path, url: str, api_key: str, uow: UnitOfWorkFactory
) -> set[str]:
    """Import ``dataset`` (JSON Lines with ``id``) as source ``urr``: stop after one batch, resume, re-import."""
    reviews = [json.loads(line) for line in dataset.read_text().splitlines() if line.strip()]
    expected = {str(feedback_id_for("urr", r["id"])) for r in reviews}
    total = len(reviews)
    assert len(expected) == total > batch
    request = ImportRequest(path=dataset, kind="generic", url=url, api_key=api_key, source_name="urr",
                            channel="review", state_dir=state, batch_size=batch, retries=0)

    def stop_after_first(done: int, total: int) -> None:
        raise Stop

    try:
        await run_import(request, on_batch=stop_after_first)
        raise AssertionError("the first run should have stopped after one batch")
    except Stop:
        pass
    checkpoints = list(state.glob("*.json"))
    assert len(checkpoints) == 1, checkpoints
    assert json.loads(checkpoints[0].read_text())["items_done"] == batch
    ids, rows, _ = await _stored(uow, "urr")
    assert rows == len(ids) == batch and ids <= expected

    resumed = await run_import(request)
    assert (resumed.resumed_from, resumed.posted, resumed.items, resumed.bad) == (batch, total - batch, total, [])
    assert not list(state.glob("*.json")), "a finished import leaves no checkpoint"
    ids, rows, events = await _stored(uow, "urr")
    assert ids == expected and rows == total and events == total

    again = await run_import(request)
    assert (again.resumed_from, again.posted) == (0, total)
    assert await _stored(uow, "urr") == (expected, total, total), "re-importing must add nothing"
    return expected


async def _cli_imports_google_play_and_refuses_a_broken_encoding(
    tmp_path: Path, broken: Path, state: Path, url: str, api_key: str, uow: UnitOfWorkFactory
) -> None:
    """The CLI, end to end: a Google Play UTF-16 export with a bad row, then ``broken`` (not UTF-8 at line 3)."""
    _, _, events_before = await _stored(uow, "urr")
    play = tmp_path / "reviews_com.example_202503.csv"
    play.write_text(
        "Package Name,Reviewer Language,Review Submit Millis Since Epoch,Star Rating,Review Title,Review Text,"
        "Review Link\n"
        "com.example,en,1740823200000,2,Crash,Crashes when I open settings,https://play.google.com/x?reviewId=gp:1\n"
        "com.example,de,1740823260000,six,Hm,Bad star rating,https://play.google.com/x?reviewId=gp:2\n"
        "com.example,fr,1740823320000,5,,Très bien,https://play.google.com/x?reviewId=gp:3\n",
        encoding="utf-16",
    )
    code, err = await _cli(str(play), "--source", "googleplay", "--url", url, "--api-key", api_key,
                           "--state-dir", str(state))
    assert code == 0, err
    assert "skipped line 3: Star Rating: 'six' is not a number" in err
    assert "imported 2 items from 3 rows" in err
    ids, _, _ = await _stored(uow, "googleplay")
    assert ids == {str(feedback_id_for("googleplay", f"gp:{n}")) for n in (1, 3)}

    code, err = await _cli(str(broken), "--source", "generic", "--url", url, "--api-key", api_key,
                           "--state-dir", str(state))
    assert code == 1
    assert err.strip().count("\n") == 0 and "is not valid UTF-8" in err and "(line 3)" in err, err
    _, _, events = await _stored(uow, "urr")
    assert events == events_before + 2, "a rejected file stores nothing"
    assert not list(state.glob("*.json"))


def _own_reviews(folder: Path, n: int = 130) -> Path:
    """``n`` app reviews written by the test, in the handed dataset's shape (id, text, stars, date, app)."""
    path = folder / "reviews.jsonl"
    lines = [json.dumps({"id": f"r-{i:04d}", "text": f"Review {i}: the timer resets when I rotate the phone",
                         "stars": 1 + i % 5, "date": f"2025-0{1 + i % 9}-1{i % 10}", "app": "lap-timer"})
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _mac_roman_csv(folder: Path) -> Path:
    """A CSV saved as Mac Roman: its "é" (0x8E) is not UTF-8, on line 3."""
    path = folder / "golden_set.csv"
    path.write_bytes(b"id,text\nr-1,Fine app\nr-2,Tr\x8es lent au d\x8emarrage\n")
    return path


async def test_own_reviews_land_once_resume_and_reimport_nothing(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
    database_url: Callable[[str], str],
) -> None:
    state = tmp_path / "imports"
    settings = IngestSettings(database_url=database_url("ingest"), kafka=kafka_settings, common=common_settings)
    app = create_app(settings)
    async with serve_app(app) as url:
        uow: UnitOfWorkFactory = app.state.runtime.uow
        await _lands_once_resumes_and_reimports_nothing(_own_reviews(tmp_path), 50, state, url, admin_key, uow)
        await _cli_imports_google_play_and_refuses_a_broken_encoding(
            tmp_path, _mac_roman_csv(tmp_path), state, url, admin_key, uow)


@pytest.mark.handed_data
async def test_dataset_lands_once_resumes_and_reimports_nothing(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
    database_url: Callable[[str], str],
) -> None:
    dataset = handed_data(DATASET)
    state = tmp_path / "imports"
    settings = IngestSettings(database_url=database_url("ingest"), kafka=kafka_settings, common=common_settings)
    app = create_app(settings)
    async with serve_app(app) as url:
        uow: UnitOfWorkFactory = app.state.runtime.uow
        expected = await _lands_once_resumes_and_reimports_nothing(dataset, 500, state, url, admin_key, uow)
        assert len(expected) == 1584
        broken = handed_data("datasets/app-reviews-urr/original/golden_set.csv")  # Mac Roman, not UTF-8
        await _cli_imports_google_play_and_refuses_a_broken_encoding(tmp_path, broken, state, url, admin_key, uow)
