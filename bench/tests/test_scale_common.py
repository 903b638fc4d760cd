"""The pure parts of the scale proofs: the generated reviews (through the importer's own reading and mapping),
the metrics and summaries they read, the taxonomy edit a replay puts, and the soak's start-vs-end arithmetic."""

from __future__ import annotations

import sqlite3
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from backfill import import_summary
from replay import NEW_THEME, items_with_theme, reclassify_summary
from scale_common import (
    IMPORT_MAP,
    flatten_taxonomy,
    growth_pct,
    handled_count,
    review_rows,
    run_on_terminal,
    with_theme,
    write_csv,
)
from soak import (
    cpu_per_minute,
    drift,
    edge_minutes,
    mean_between,
    p99_between,
    per_minute,
    summarize,
    trend,
    trends,
    verdict,
)

from classification.domain.taxonomy import TaxonomyError, parse_taxonomy
from classification.service.reclassify import ReclassifyReport
from ingest.tools.importer.mapping import parse_column_map
from ingest.tools.importer.run import ImportRequest, load_mapped

END = datetime(2026, 6, 1, tzinfo=UTC)


def test_reviews_are_seeded_and_spread() -> None:
    rows = list(review_rows(2000, seed=3, end=END))
    assert rows == list(review_rows(2000, seed=3, end=END))
    assert rows != list(review_rows(2000, seed=4, end=END))
    assert set(Counter(r["rating"] for r in rows)) == {"1", "2", "3", "4", "5"}
    dates = [datetime.fromisoformat(r["createdDate"]) for r in rows]
    assert END - timedelta(days=730) <= min(dates) < END - timedelta(days=600)
    assert END - timedelta(days=130) < max(dates) <= END
    assert len({r["body"] for r in rows}) == len(rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["customer_plan"] for r in rows} == {"free", "pro", "team", "enterprise"}
    assert len({r["customer_id"] for r in rows}) > 500


def test_the_csv_imports_whole_with_the_backfills_options(tmp_path: Path) -> None:
    """The importer's own decoding, reading and mapping, as ``feedbackloop import`` runs them for the backfill."""
    path = tmp_path / "reviews.csv"
    assert write_csv(path, review_rows(300, end=END)) == 300
    request = ImportRequest(path=path, kind="generic", url="http://127.0.0.1:1", api_key="unused",
                            columns=parse_column_map(IMPORT_MAP), source_name="appstore", channel="review")
    _, mapped = load_mapped(request)
    assert (len(mapped.items), len(mapped.bad), mapped.empty) == (300, 0, 0)
    first, row = mapped.items[0].item, next(review_rows(1, end=END))
    assert first.external_id == row["id"] and first.text == row["body"]
    assert first.customer is not None and (first.customer.id, first.customer.plan) == (row["customer_id"],
                                                                                        row["customer_plan"])
    assert first.rating is not None and first.rating.value == float(row["rating"])
    assert first.created_at == datetime.fromisoformat(row["createdDate"])
    assert first.source == "appstore" and first.channel == "review"


def test_handled_count_reads_one_topics_handled_events() -> None:
    name = "feedbackloop_events_consumed_total"
    text = "\n".join([
        f"# TYPE {name} counter",
        name + '{outcome="handled",service="aggregation",topic="feedback.classified.v1"} 42.0',
        name + '{outcome="duplicate",service="aggregation",topic="feedback.classified.v1"} 3.0',
        name + '{outcome="handled",service="aggregation",topic="privacy.v1"} 5.0',
    ])
    assert handled_count(text, "feedback.classified.v1") == 42
    assert handled_count(text, "feedback.raw.v1") == 0


def test_summaries_are_read_back() -> None:
    wrapped = ("imported 3000 items from 3000 rows of reviews.csv (3000 posted now; 0 bad rows \n"
               "skipped; 0 without text) in 2.3 s; importing it again adds nothing")
    assert import_summary(wrapped) == (3000, 2.3)
    assert import_summary("import failed") is None
    report = ReclassifyReport("2026-01-01T00:00:00+00:00", "v2", dry_run=False, seen=3000, changed=1791,
                              published=1790)
    assert reclassify_summary(report.summary()) == {"read": 3000, "changed": 1791, "published": 1790}
    dry = ReclassifyReport("2026-01-01T00:00:00+00:00", "v2", dry_run=True, seen=10, changed=4)
    assert reclassify_summary(dry.summary()) == {"read": 10, "changed": 4, "published": 0}


def _default_taxonomy() -> dict[str, object]:
    import classification

    path = Path(classification.__file__).parent / "taxonomy" / "default.yaml"
    return dict(yaml.safe_load(path.read_text()))


def test_the_taxonomy_in_force_is_put_back_with_one_theme_more() -> None:
    shipped = parse_taxonomy(_default_taxonomy())
    as_get = {"version": shipped.version, "match_threshold": shipped.match_threshold,
              "max_themes": shipped.max_themes, "themes": shipped.tree(), "examples_learned": 0}
    flat = flatten_taxonomy(as_get)
    assert parse_taxonomy(flat).themes == shipped.themes
    changed = parse_taxonomy(with_theme(flat, NEW_THEME, "bench-2"))
    assert changed.version == "bench-2"
    assert [t.id for t in changed.themes] == [*(t.id for t in shipped.themes), NEW_THEME["id"]]
    with pytest.raises(ValueError, match="already"):
        with_theme(flat, {**NEW_THEME, "id": shipped.themes[0].id}, "bench-3")
    with pytest.raises(TaxonomyError):
        parse_taxonomy(with_theme(flat, {**NEW_THEME, "parent": "nowhere"}, "bench-4"))


def test_items_with_theme_counts_the_stored_newest_revisions(tmp_path: Path) -> None:
    database = tmp_path / "classification.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE classifications (feedback_id TEXT PRIMARY KEY, item JSON)")
        connection.executemany("INSERT INTO classifications VALUES (?, ?)", [
            ("a", '{"themes": [{"id": "app-experience"}, {"id": "mobile"}]}'),
            ("b", '{"themes": [{"id": "mobile"}]}'),
            ("c", '{"themes": []}'),
            ("d", '{"themes": [{"id": "app-experience"}]}')])
    assert items_with_theme(database, "app-experience") == 2
    assert items_with_theme(database, "billing") == 0


def test_growth_and_verdict() -> None:
    assert growth_pct(200, 220) == 10.0
    assert growth_pct(200, 180) == -10.0
    assert growth_pct(None, 1) is None and growth_pct(0, 5) is None
    assert verdict({"RSS MB ingest": 9.9, "p99": -30.0}) == "flat within 10 %"
    assert verdict({"RSS MB ingest": 10.1, "p99": 2.0}) == "NOT flat within 10 %: RSS MB ingest +10.1%"
    assert verdict({"RSS MB ingest": 1.0, "p99": None}).startswith("flat within 10 % where measured")
    assert [edge_minutes(m) for m in (1, 2, 5, 6, 9, 30)] == [1, 1, 1, 2, 3, 3]


def test_latency_and_memory_by_minute() -> None:
    origin = 1000.0
    posted = {f"m0-{i}": origin + i * 0.5 for i in range(100)} | {f"m1-{i}": origin + 60 + i * 0.5 for i in range(100)}
    done = {f: at + (0.1 if f.startswith("m0") else 0.3) for f, at in posted.items()}
    del done["m1-99"]  # not classified: left out, not counted as fast
    assert per_minute(posted, done, origin, 2) == [100.0, 300.0]
    assert p99_between(posted, done, origin, origin + 60) == 100.0
    assert p99_between(posted, done, origin + 120, origin + 180) is None
    samples: list[dict[str, Any]] = [{"t": 0.0, "ingest": 100.0}, {"t": 10.0, "ingest": 110.0},
                                     {"t": 65.0, "ingest": None}, {"t": 70.0, "ingest": 130.0}]
    assert mean_between(samples, "ingest", 0, 60) == 105.0
    assert mean_between(samples, "ingest", 60, 120) == 130.0
    result = summarize(posted, done, {}, samples, origin, 2, 3.3, 120.0, 0)
    assert [m["posted"] for m in result["per_minute"]] == [100, 100]
    assert result["classified"] == 199
    assert result["start_end"]["POST→classified p99 ms"] == {"start": 100.0, "end": 300.0}
    assert result["growth_pct"]["RSS MB ingest"] == growth_pct(105.0, 130.0)
    assert result["verdict"].startswith("NOT flat")
    assert drift(samples, "ingest") == {"first": 100.0, "last": 130.0, "per_minute": 25.7}
    assert drift(samples, "broker") == {"first": None, "last": None, "per_minute": None}


def test_cpu_per_item_by_minute_from_running_totals() -> None:
    samples: list[dict[str, Any]] = [
        {"t": 0.0, "classified": 0, "cpu": {"classification": 10.0, "broker": 1.0}},
        {"t": 30.0, "classified": 500, "cpu": {"classification": 12.0, "broker": 1.1}},
        {"t": 60.0, "classified": 1000, "cpu": {"classification": 14.0, "broker": 1.2}},  # minute 1: 4 ms, 0.2 ms
        {"t": 120.0, "classified": 1500, "cpu": {"classification": 17.0, "broker": 1.3}},  # minute 2: 6 ms, 0.2 ms
        {"t": 180.0, "classified": 1500, "cpu": {"classification": 17.5, "broker": 1.3}},  # minute 3: nothing done
    ]
    assert cpu_per_minute(samples, 3) == [{"classification": 4.0, "broker": 0.2},
                                          {"classification": 6.0, "broker": 0.2}, {}]
    assert cpu_per_minute([], 1) == [{}]


def test_a_line_through_every_minute_is_not_tilted_by_one_slow_edge_minute() -> None:
    # flat at 200 ms with a slow last minute: the 3-minute edge reads +33 %, a least-squares line +20 %, this 0
    p99 = [200.0] * 29 + [400.0]
    assert trend(p99) == {"first": 200.0, "last": 200.0, "pct": 0.0}
    assert trend([200.0 + 2 * m for m in range(29)] + [400.0])["last"] == 258.0  # a real slope is kept
    assert trend([100.0, None, 120.0, 140.0]) == {"first": 100.0, "last": 140.0, "pct": 40.0}  # a gap is skipped
    assert trend([1.0, None, None]) == {"first": None, "last": None, "pct": None}
    rows = [{"classified_p99_ms": 100.0 + m, "notified_p99_ms": None,
             "cpu_ms_per_item": {"ingest": 0.5, "broker": 0.5 + m} if m != 1 else {}} for m in range(4)]
    lines = trends(rows)
    assert lines["POST→classified p99 ms"] == {"first": 100.0, "last": 103.0, "pct": 3.0}
    assert lines["POST→notified p99 ms"]["pct"] is None
    assert lines["CPU ms per item ingest"]["pct"] == 0.0
    assert lines["CPU ms per item broker"] == {"first": 0.5, "last": 3.5, "pct": 600.0}


async def test_a_command_on_a_terminal_gives_its_output_back() -> None:
    code, output = await run_on_terminal([sys.executable, "-c",
                                          "import sys; print('\\x1b[1mbold\\x1b[0m out'); "
                                          "print('err', file=sys.stderr); sys.exit(3)"])
    assert code == 3
    assert output.split() == ["bold", "out", "err"]
