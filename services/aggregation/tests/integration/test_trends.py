"""Rollups, KPIs, releases, detectors and the dashboard, against a real broker, store and HTTP server.

One app serves every check (a consumer-group join costs seconds): a steady month of generated feedback
with NPS and CSAT ratings goes in on ``feedback.classified.v1``, a release is posted, then a burst of
login complaints lands in the hour after it. The spike must come out on ``insights.v1`` naming the
release, the KPIs must match the hand-computed values, and the dashboard must render in Chromium.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aggregation_testkit import classified
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from aggregation.config import AggregationSettings
from aggregation.main import create_app
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, ClassifiedFeedback, decode, encode, new_envelope
from feedbackloop.contracts.envelope import Envelope
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app, wait_for

THEMES = [("billing", "Billing"), ("export", "Export"), ("account.login", "Login & authentication"),
          ("onboarding", "Onboarding")]


def _steady(now: datetime) -> list[ClassifiedFeedback]:
    """21 days of ~1.5 items an hour spread over four themes, ending two hours before ``now``."""
    rng = random.Random(7)
    items = []
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=21)
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    at, n = start, 0
    while at < end:
        at += timedelta(minutes=rng.expovariate(1.5) * 60)
        theme_id, name = rng.choice(THEMES)
        negative = rng.random() < 0.3
        items.append(classified(
            f"steady-{n}", created_at=at, received_at=at, classified_at=at + timedelta(seconds=2),
            themes=[{"id": theme_id, "name": name, "confidence": 0.8}], urgency="normal",
            sentiment={"label": "negative" if negative else "positive", "score": -0.6 if negative else 0.5},
            customer={"id": f"c{n % 40}", "name": f"Customer {n % 40}", "plan": "pro", "mrr": 100.0}))
        n += 1
    return items


def _rated(now: datetime) -> tuple[list[ClassifiedFeedback], float, float]:
    """Ratings in the last 7 days, with their NPS and CSAT computed by hand."""
    at = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    nps = [10, 10, 9, 8, 7, 6, 5, 0]  # 3 promoters, 3 detractors of 8 → 0; see below with the others
    csat = [5, 4, 3, 2]  # 2 of 4 → 50 %
    neutral = {"label": "neutral", "score": 0.0}
    items = [classified(f"nps-{i}", created_at=at, received_at=at, themes=[], sentiment=neutral,
                        rating={"kind": "nps", "value": v,
                        "scale": 10}) for i, v in enumerate(nps)]
    items += [classified(f"csat-{i}", created_at=at, received_at=at, themes=[], sentiment=neutral,
                         rating={"kind": "csat", "value": v, "scale": 5}) for i, v in enumerate(csat)]
    return items, 0.0, 50.0


def _imported(now: datetime) -> list[ClassifiedFeedback]:
    """Two tickets of three days ago, imported (received and classified) just now: back-dated."""
    at = now - timedelta(days=3)
    return [classified(f"import-{i}", created_at=at, received_at=now, classified_at=now + timedelta(seconds=5),
                       themes=[], sentiment={"label": "neutral", "score": 0.0}) for i in range(2)]


def _spike(hour: datetime, first: int = 0, count: int = 14) -> list[ClassifiedFeedback]:
    return [classified(f"spike-{i}", created_at=hour + timedelta(minutes=10 + i), received_at=hour,
                       text=f"Cannot log in since the update ({i})", urgency="high",
                       themes=[{"id": "account.login", "name": "Login & authentication", "confidence": 0.9}],
                       customer={"id": f"ent{i % 3}", "name": f"Enterprise {i % 3}", "plan": "enterprise",
                                 "mrr": 2500.0}) for i in range(first, first + count)]


async def _insight_events(kafka: KafkaSettings, insight_id: str,
                          done: Callable[[list[Envelope[Any]]], bool]) -> list[Envelope[Any]]:
    """The events of one insight on insights.v1, read from the start until ``done`` says enough."""
    consumer = AIOKafkaConsumer(INSIGHTS.name, bootstrap_servers=kafka.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    events: list[Envelope[Any]] = []
    try:
        async def more() -> list[Envelope[Any]]:
            batch = await consumer.getmany(timeout_ms=200)
            events.extend(decode(INSIGHTS, r.value) for rs in batch.values() for r in rs
                          if r.value is not None and r.key == insight_id.encode())
            return events

        await wait_for(more, done, what=f"the revisions of insight {insight_id} on {INSIGHTS.name}", timeout=60)
    finally:
        await consumer.stop()
    return events


async def _produce(kafka: KafkaSettings, items: list[ClassifiedFeedback]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        sends = []
        for item in items:
            env = new_envelope(FEEDBACK_CLASSIFIED, item, source="/feedbackloop/classification")
            sends.append(await producer.send(FEEDBACK_CLASSIFIED.name, encode(env), key=env.subject.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def _chromium(url: str, png: Path) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian package `chromium` is required (.ci/run installs it)"
    flags = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1300"]
    subprocess.run([*flags, f"--screenshot={png}", url], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--enable-logging=stderr", "--v=0", "--dump-dom", url], check=True,
                         capture_output=True, timeout=120)
    refused = [line for line in dom.stderr.decode(errors="replace").splitlines() if "Content Security Policy" in line]
    assert not refused, f"the page breaks its own Content-Security-Policy: {refused[:3]}"
    return dom.stdout.decode()


async def test_spike_kpis_releases_and_dashboard(tmp_path: Path, kafka_settings: KafkaSettings,
                                                 common_settings: CommonSettings, read_key: str, admin_key: str,
                                                 database_url: Callable[[str], str]) -> None:
    now = datetime.now(UTC)
    spike_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    steady = _steady(now)
    rated, nps, csat = _rated(now)
    imported = _imported(now)
    settings = AggregationSettings(database_url=database_url("aggregation"), kafka=kafka_settings,
                                   common=common_settings, detect_interval_seconds=1.0)
    app = create_app(settings)
    async with serve_app(app) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        await wait_for(lambda: client.get("/readyz"), lambda r: r.status_code == 200, what="aggregation ready")
        await _produce(kafka_settings, steady + rated + imported)
        total = len(steady) + len(rated) + len(imported)
        await wait_for(lambda: client.get("/v1/kpis", params={"window": "366d"}),
                       lambda r: r.json()["current"]["volume"] == total, what=f"{total} items rolled up", timeout=60)

        async def drained() -> httpx.Response:
            return await client.get("/v1/insights", params={"type": "spike"})

        async def detector_runs() -> int:
            return int(app.state.runtime.workers[0].runs)

        # A steady three weeks raise no spike (once the detectors have judged every hour of it).
        settled = await detector_runs()
        await wait_for(detector_runs, lambda n: n >= settled + 2, what="two detector runs")
        assert (await drained()).json()["items"] == []

        # Release 11 minutes before the burst, posted through the API (published to releases.v1, consumed back).
        release_at = spike_hour + timedelta(minutes=-1)
        posted = await client.post("/v1/releases", json={"version": "4.2.1", "service": "web",
                                                         "released_at": release_at.isoformat()})
        assert posted.status_code == 202, posted.text
        await wait_for(lambda: client.get("/v1/releases"), lambda r: len(r.json()["items"]) == 1,
                       what="release consumed back from releases.v1")
        assert (await client.post("/v1/releases", json={"version": ""})).status_code == 422

        await _produce(kafka_settings, _spike(spike_hour))
        body = (await wait_for(drained, lambda r: len(r.json()["items"]) >= 1, what="a spike insight",
                               timeout=60)).json()
        spikes = body["items"]
        assert [s["theme"] for s in spikes] == ["account.login"], spikes
        spike = spikes[0]
        assert spike["metrics"]["observed"] == 14 and spike["metrics"]["release_version"] == "4.2.1"
        assert "11 minutes after release 4.2.1" in spike["title"], spike["title"]
        assert len(spike["evidence"]) == 14 and spike["severity"] in ("warning", "critical")

        # Judged again (a late duplicate of a spike item), the episode raises nothing new.
        await _produce(kafka_settings, [_spike(spike_hour)[0].model_copy(update={"revision": 2})])
        await wait_for(lambda: client.get(f"/v1/feedback/{_spike(spike_hour)[0].feedback_id}"),
                       lambda r: r.json()["revision"] == 2, what="revision 2 applied")
        judged = await detector_runs()
        await wait_for(detector_runs, lambda n: n >= judged + 2, what="two detector runs after the duplicate")
        assert len((await drained()).json()["items"]) == 1

        # Twelve more items of the same hour: the episode grew materially, so the same insight is re-published
        # with its new count and evidence, as a higher revision, on insights.v1 (each revision its own event).
        await _produce(kafka_settings, _spike(spike_hour, first=14, count=12))
        grown = (await wait_for(drained, lambda r: r.json()["items"][0]["metrics"]["observed"] == 26,
                                what="the spike insight revised to 26 items", timeout=60)).json()["items"]
        assert [g["insight_id"] for g in grown] == [spike["insight_id"]]
        assert grown[0]["revision"] > spike["revision"] and grown[0]["title"].startswith(
            "Login & authentication: 26 items") and len(grown[0]["evidence"]) == 26
        events = await _insight_events(kafka_settings, spike["insight_id"],
                                       lambda es: any(e.data.metrics["observed"] == 26 for e in es))
        assert [e.data.revision for e in events] == list(range(1, len(events) + 1)), "each revision once, in order"
        assert len({e.id for e in events}) == len(events) and events[0].id == spike["insight_id"]

        # KPIs against the hand-computed values; the previous window holds the steady stream's earlier week.
        kpis = (await client.get("/v1/kpis", params={"window": "7d"})).json()
        assert kpis["current"]["nps"] == nps and kpis["current"]["nps_responses"] == 8
        assert kpis["current"]["csat"] == csat and kpis["current"]["csat_responses"] == 4
        week_ago = now - timedelta(days=7)
        in_window = sum(1 for i in steady + rated + imported + _spike(spike_hour, count=26)
                        if i.created_at >= ceil(now) - timedelta(days=7))
        assert kpis["current"]["volume"] == in_window
        assert kpis["previous"]["nps"] is None and kpis["change"]["nps"] is None
        # The steady stream took 2 s each; the two imports (days "late") are left out of it, and counted.
        assert kpis["current"]["median_time_to_classify_s"] == 2.0
        assert kpis["current"]["backdated_excluded"] == 2 and kpis["previous"]["backdated_excluded"] == 0
        assert "items received live; 2 back-dated imports excluded" in (await client.get("/")).text
        assert week_ago < datetime.fromisoformat(kpis["window"]["to"])

        # Themes: login ranks first (enterprise revenue, urgency, the burst), with its trend and top customers.
        themes = (await client.get("/v1/themes", params={"window": "7d"})).json()["items"]
        assert themes[0]["id"] == "account.login", [t["id"] for t in themes]
        assert themes[0]["top_customers"][0]["mrr"] == 2500.0 and themes[0]["trend"]["previous_count"] > 0
        series = (await client.get("/v1/themes/account.login/timeseries",
                                   params={"bucket": "hour", "from": (spike_hour - timedelta(hours=2)).isoformat(),
                                           "to": (spike_hour + timedelta(hours=1)).isoformat()})).json()["items"]
        assert len(series) == 3 and series[-1]["count"] >= 26

        # Unthemed items that classification put in one cluster grow into an emerging theme, named by its terms.
        cluster = {"id": "cl-dark-mode", "terms": ["dark", "mode", "night"]}
        unthemed = [classified(f"cluster-{i}", created_at=now - timedelta(hours=5, minutes=i), themes=[],
                               text="Please add a dark mode", cluster={**cluster, "size": i + 1}) for i in range(5)]
        await _produce(kafka_settings, unthemed)
        emerging = (await wait_for(lambda: client.get("/v1/insights", params={"type": "emerging_theme"}),
                                   lambda r: len(r.json()["items"]) == 1, what="an emerging theme", timeout=60)
                    ).json()["items"][0]
        assert "“dark”, “mode”, “night”" in emerging["title"] and len(emerging["evidence"]) == 5

        # Acknowledge it; the open list no longer has it.
        ack = await client.post(f"/v1/insights/{spike['insight_id']}/ack")
        assert ack.status_code == 200
        open_ids = [i["insight_id"] for i in (await client.get("/v1/insights", params={"acknowledged": "false"})
                                               ).json()["items"]]
        assert spike["insight_id"] not in open_ids
        assert (await client.post("/v1/insights/00000000-0000-0000-0000-000000000000/ack")).status_code == 404

        # The dashboard, rendered by headless Chromium from a loopback client (open on the embedded profile).
        png = Path("var/screenshots/aggregation-dashboard.png") if Path("var").is_dir() else tmp_path / "dash.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        dom = await asyncio.to_thread(_chromium, url + "/", png)
        for expected in ('id="kpis"', 'id="themes"', 'id="insights"', 'id="volume"', "<svg",
                         "Login &amp; authentication",
                         "4.2.1", "NPS", "CSAT", 'class="marker"', "spike"):
            assert expected in dom, f"{expected!r} missing from the rendered dashboard"
        assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        drill = (await client.get("/dashboard/themes/account.login")).text
        assert "Cannot log in since the update" in drill
    # Anywhere but the embedded profile's loopback, the page asks for a read key and keeps it in a cookie.
    production = settings.model_copy(update={"common": common_settings.model_copy(update={"profile": "production"})})
    async with serve_app(create_app(production)) as url, httpx.AsyncClient(base_url=url) as browser:
        assert (await browser.get("/")).headers["location"] == "/login"
        refused = await browser.post("/login", content="key=flk_wrong",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        assert refused.status_code == 401
        signed_in = await browser.post("/login", content=f"key={read_key}",
                                       headers={"content-type": "application/x-www-form-urlencoded"})
        assert signed_in.status_code == 303 and "httponly" in signed_in.headers["set-cookie"].lower()
        page = await browser.get("/")
        assert page.status_code == 200 and 'id="themes"' in page.text


def ceil(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)

