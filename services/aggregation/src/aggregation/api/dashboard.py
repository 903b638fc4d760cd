"""The built-in dashboard: ``GET /`` (themes by impact with their linked tracker issues, volume and sentiment with
release markers, KPIs and the loop's figures, latest insights), ``GET /dashboard/themes/{id}`` (drill-down to the
items and the theme's issues) and the read-key login.

Server-rendered HTML (Jinja2) with inline SVG charts (``domain/chart.py``): no script and no CDN, so the shared
app's Content-Security-Policy (no script, inline styles only) suits it. On the embedded profile a loopback
client needs no key; anyone else posts a read key once to ``/login`` and gets a session
(:mod:`aggregation.store.sessions`): the cookie holds a random id, never the key, and is HttpOnly,
SameSite=Strict, and Secure when the request came over https (``X-Forwarded-Proto`` from a trusted proxy
counts) or ``AGGREGATION_DASHBOARD_COOKIE_SECURE`` says so. Every page checks the session and that its key is
still active with the read scope; ``POST /logout`` deletes the session.
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

from aggregation.api.deps import AnalyticsDep, QueriesDep, SessionsDep, SettingsDep
from aggregation.domain.chart import Marker, volume_chart
from aggregation.domain.filters import FeedbackFilter, InsightFilter
from aggregation.domain.kpis import backdated_definition, time_to_classify_caption
from aggregation.domain.rollups import Bucket
from aggregation.domain.windows import ceil_hour, window_ending
from aggregation.service.reports import add_top_customers, kpi_report, loop_report, rank_themes, series
from aggregation.store.links import LinkQueries
from aggregation.store.sessions import DashboardSessions
from feedbackloop.keys import InvalidKey, KeyStore

router = APIRouter(include_in_schema=False)
COOKIE = "feedbackloop_session"
#: Where earlier versions kept the read key itself: never read, deleted at sign-in and sign-out.
OLD_KEY_COOKIE = "feedbackloop_read_key"
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
                         autoescape=select_autoescape(["html"]))


def _on_open_loopback(request: Request) -> bool:
    settings = request.app.state.settings
    if settings.common.profile != "embedded" or not settings.dashboard_open_on_loopback:
        return False
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


async def _authorized(request: Request, sessions: DashboardSessions) -> bool:
    """A loopback client of the embedded profile, or a live session whose API key still reads."""
    if _on_open_loopback(request):
        return True
    key_id = await sessions.key_of(request.cookies.get(COOKIE, ""))
    if key_id is None:
        return False
    store: KeyStore = request.app.state.keys
    return any(k.id == key_id and k.allows("read") for k in store.active())


def _render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status)


@router.get("/login", response_class=HTMLResponse)
async def login_form(error: str | None = None) -> HTMLResponse:
    return _render("login.html", error=error)


@router.post("/login")
async def login(request: Request, sessions: SessionsDep, settings: SettingsDep) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    store: KeyStore = request.app.state.keys
    try:
        verified = store.verify(key)
    except InvalidKey:
        verified = None
    if verified is None or not verified.allows("read"):
        return _render("login.html", status=401, error="That key is not valid or lacks the read scope.")
    lasting = timedelta(hours=settings.dashboard_session_hours)
    token = await sessions.open(verified.id, lasting)
    response = RedirectResponse("/", status_code=303)
    secure = settings.dashboard_cookie_secure or request.url.scheme == "https"
    response.set_cookie(COOKIE, token, max_age=int(lasting.total_seconds()), httponly=True, samesite="strict",
                        secure=secure)
    response.delete_cookie(OLD_KEY_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, sessions: SessionsDep) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await sessions.close(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    response.delete_cookie(OLD_KEY_COOKIE)
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
                    sessions: SessionsDep, window: str = "30d") -> Response:
    if not await _authorized(request, sessions):
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
    latest = await queries.list_insights(InsightFilter(limit=100), None, 100)
    insights, more_urgent = _shown_insights([r.data for r in latest])
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
    links_q = LinkQueries(request.app.state.runtime.read_engine)
    week = window_ending(end, timedelta(days=7))
    loop = await loop_report(links_q, week.start, week.end)
    loop_cards = [
        {"label": "Linked issues", "value": f"{loop.open}", "sub": f"open · {loop.links} linked, "
                                                                  f"{loop.issues_created} filed in 7 days"},
        {"label": "Loops closed", "value": f"{loop.closed}", "sub": f"{loop.customers_told} customers to tell, "
                                                                   "last 7 days"},
        {"label": "Report → issue", "value": _duration(loop.median_time_to_issue_s), "sub": "median, first report"},
        {"label": "Report → fixed", "value": _duration(loop.median_time_to_close_s),
         "sub": f"median; told after {_duration(loop.median_time_to_told_s)}"},
        {"label": "Items answered", "value": _pct(loop.closed_item_share),
         "sub": f"of linked themes' items · {loop.regressions} regression{'' if loop.regressions == 1 else 's'}"},
    ]
    theme_links = await links_q.for_themes([t.id for t in themes])
    top_impact = max((t.impact for t in themes), default=1.0) or 1.0
    return _render("dashboard.html", cards=cards, themes=themes, top_impact=top_impact, insights=insights,
                   loop_cards=loop_cards, theme_links=theme_links,
                   chart=volume_chart(points, markers, bucket_label="%b %d" if bucket == "day" else "%H:%M"),
                   window=window if window in ("7d", "30d", "90d") else "30d", releases=releases[:5],
                   more_urgent=more_urgent, signed_in=COOKIE in request.cookies,
                   generated=datetime.now(UTC))


@router.get("/dashboard/themes/{theme_id}", response_class=HTMLResponse)
async def theme_page(theme_id: str, request: Request, analytics: AnalyticsDep, queries: QueriesDep,
                     settings: SettingsDep, sessions: SessionsDep) -> Response:
    if not await _authorized(request, sessions):
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
    items = [r.data for r in await queries.list_feedback(FeedbackFilter(theme=theme_id, limit=100), None, 100)]
    names = await analytics.theme_names()
    links = (await LinkQueries(request.app.state.runtime.read_engine).for_themes([theme_id])).get(theme_id, [])
    return _render("theme.html", theme=ranked.get(theme_id), theme_id=theme_id, links=links,
                   name=names.get(theme_id, theme_id), items=items, chart=volume_chart(points, markers))
