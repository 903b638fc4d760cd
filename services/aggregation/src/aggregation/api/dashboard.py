"""The built-in dashboard: ``GET /`` (themes by impact, volume and sentiment with release markers, KPIs,
latest insights), ``GET /dashboard/themes/{id}`` (drill-down to the items) and the read-key login.

Server-rendered HTML (Jinja2) with inline SVG charts (``chart.py``): no script and no CDN. On the
embedded profile a loopback client needs no key; anyone else posts a read key once to ``/login`` and
keeps it in an HttpOnly, SameSite=Strict session cookie that every page verifies against the key file.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from aggregation.api.deps import AnalyticsDep, QueriesDep, SettingsDep
from aggregation.chart import Marker, volume_chart
from aggregation.domain.filters import FeedbackFilter, InsightFilter
from aggregation.domain.kpis import backdated_definition, time_to_classify_caption
from aggregation.domain.rollups import Bucket
from aggregation.domain.windows import ceil_hour, window_ending
from aggregation.reports import add_top_customers, kpi_report, rank_themes, series
from feedbackloop.keys import InvalidKey, KeyStore

router = APIRouter(include_in_schema=False)
COOKIE = "feedbackloop_read_key"
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
                         autoescape=select_autoescape(["html"]))


def _authorized(request: Request) -> bool:
    settings = request.app.state.settings
    host = request.client.host if request.client else ""
    if settings.common.profile == "embedded" and settings.dashboard_open_on_loopback:
        try:
            if ipaddress.ip_address(host).is_loopback:
                return True
        except ValueError:
            pass
    key = request.cookies.get(COOKIE)
    if not key:
        return False
    store: KeyStore = request.app.state.keys
    try:
        return store.verify(key).allows("read")
    except InvalidKey:
        return False


def _render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status)


@router.get("/login", response_class=HTMLResponse)
async def login_form(error: str | None = None) -> HTMLResponse:
    return _render("login.html", error=error)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    store: KeyStore = request.app.state.keys
    try:
        valid = store.verify(key).allows("read")
    except InvalidKey:
        valid = False
    if not valid:
        return _render("login.html", status=401, error="That key is not valid or lacks the read scope.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _change(value: float | None, *, relative: bool, good_up: bool, unit: str = "") -> dict[str, str]:
    if value is None:
        return {"text": "no previous data", "cls": "flat"}
    text = f"{value:+.0%}" if relative else f"{value:+.1f}{unit}"
    cls = "flat" if abs(value) < 1e-9 else ("good" if (value > 0) == good_up else "bad")
    return {"text": f"{text} vs previous", "cls": cls}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _shown_insights(latest: list[dict[str, Any]], slots: int = 8) -> tuple[list[dict[str, Any]], int]:
    """The insights the dashboard lists, newest first, and how many urgent items it leaves out.

    Detector insights (spikes, drops, emerging themes) come before single urgent items, so a burst of
    urgent tickets during an incident cannot push the incident's spike off the page; at most half the
    slots go to urgent items when there is anything else to show."""
    episodes = [i for i in latest if i.get("type") != "urgent_item"][:slots]
    urgent = [i for i in latest if i.get("type") == "urgent_item"]
    room = slots - len(episodes) if not episodes else max(slots // 2, slots - len(episodes))
    shown_urgent = urgent[:room]
    shown = episodes[: slots - len(shown_urgent)] + shown_urgent
    return shown, len(urgent) - len(shown_urgent)


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, analytics: AnalyticsDep, queries: QueriesDep, settings: SettingsDep,
                    window: str = "30d") -> Response:
    if not _authorized(request):
        return RedirectResponse("/login", status_code=303)
    days = {"7d": 7, "30d": 30, "90d": 90}.get(window, 30)
    end = ceil_hour(datetime.now(UTC))
    span = window_ending(end, timedelta(days=days))
    kpis = await kpi_report(analytics, window_ending(end, timedelta(days=7)))
    themes = (await rank_themes(analytics, span, settings.impact_mrr_unit))[:12]
    await add_top_customers(analytics, span, themes)
    bucket: Bucket = "day" if days > 7 else "hour"
    points = await series(analytics, "all", "*", bucket, span.start, span.end)
    releases = await analytics.releases(span.start, span.end)
    markers = [Marker(datetime.fromisoformat(r["released_at"]), r["version"], r.get("kind", "release"))
               for r in releases]
    insights, more_urgent = _shown_insights((await queries.list_insights(InsightFilter(limit=100), None)).items)
    c, ch = kpis.current, kpis.change()
    cards = [
        {"label": "NPS", "value": "—" if c.nps is None else f"{c.nps:.0f}", "sub": f"{c.nps_responses} responses",
         "change": _change(ch["nps"], relative=False, good_up=True, unit=" pts")},
        {"label": "CSAT", "value": "—" if c.csat is None else f"{c.csat:.0f}%", "sub": f"{c.csat_responses} responses",
         "change": _change(ch["csat"], relative=False, good_up=True, unit=" pts")},
        {"label": "Feedback volume", "value": f"{c.volume:,}", "sub": "items, last 7 days",
         "change": _change(ch["volume"], relative=True, good_up=True)},
        {"label": "Negative share", "value": _pct(c.negative_share), "sub": "of items, last 7 days",
         "change": _change(None if ch["negative_share"] is None else ch["negative_share"] * 100, relative=False,
                           good_up=False, unit=" pts")},
        {"label": "Time to classify", "value": _duration(c.median_time_to_classify_s),
         "sub": time_to_classify_caption(c.backdated_excluded),
         "title": f"Back-dated: {backdated_definition()}, e.g. an import of old tickets",
         "change": _change(ch["median_time_to_classify_s"], relative=True, good_up=False)},
    ]
    top_impact = max((t.impact for t in themes), default=1.0) or 1.0
    return _render("dashboard.html", cards=cards, themes=themes, top_impact=top_impact, insights=insights,
                   chart=volume_chart(points, markers, bucket_label="%b %d" if bucket == "day" else "%H:%M"),
                   window=window if window in ("7d", "30d", "90d") else "30d", releases=releases[:5],
                   more_urgent=more_urgent,
                   generated=datetime.now(UTC))


@router.get("/dashboard/themes/{theme_id}", response_class=HTMLResponse)
async def theme_page(theme_id: str, request: Request, analytics: AnalyticsDep, queries: QueriesDep,
                     settings: SettingsDep) -> Response:
    if not _authorized(request):
        return RedirectResponse("/login", status_code=303)
    end = ceil_hour(datetime.now(UTC))
    span = window_ending(end, timedelta(days=30))
    ranked = {t.id: t for t in await rank_themes(analytics, span, settings.impact_mrr_unit)}
    if theme_id in ranked:
        await add_top_customers(analytics, span, [ranked[theme_id]])
    points = await series(analytics, "theme", theme_id, "day", span.start, span.end)
    releases = await analytics.releases(span.start, span.end)
    markers = [Marker(datetime.fromisoformat(r["released_at"]), r["version"], r.get("kind", "release"))
               for r in releases]
    items = (await queries.list_feedback(FeedbackFilter(theme=theme_id, limit=100), None)).items
    names = await analytics.theme_names()
    return _render("theme.html", theme=ranked.get(theme_id), theme_id=theme_id,
                   name=names.get(theme_id, theme_id), items=items, chart=volume_chart(points, markers))
