"""HTTP request metrics: every request of a built app is counted and timed by service, method, route and status."""

from __future__ import annotations

import uuid

import httpx
from fastapi import APIRouter
from prometheus_client import REGISTRY

from feedbackloop.http import build_app
from feedbackloop.settings import CommonSettings, ServiceSettings
from feedbackloop_testing import serve_app


def count(service: str, method: str, route: str, status: str) -> float:
    labels = {"service": service, "method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("feedbackloop_http_requests_total", labels) or 0.0


def timed(service: str, method: str, route: str) -> float:
    labels = {"service": service, "method": method, "route": route}
    return REGISTRY.get_sample_value("feedbackloop_http_request_duration_seconds_count", labels) or 0.0


async def test_requests_are_counted_by_route_template_and_exact_status(common_settings: CommonSettings) -> None:
    service = f"m-{uuid.uuid4().hex[:8]}"
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @router.post("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app = build_app(service=service, title="t", description="t", version="0", settings=ServiceSettings(
        common=common_settings), lifespan=None, routers=[router], max_body_bytes=10)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/items/1", "/items/2", "/items/x", "/nowhere", "/healthz"):
            await client.get(path)
        assert (await client.post("/boom")).status_code == 500
        assert (await client.post("/boom", content=b"x" * 100)).status_code == 413
        scraped = (await client.get("/metrics")).text

    assert count(service, "GET", "/items/{item_id}", "200") == 2
    assert count(service, "GET", "/items/{item_id}", "422") == 1
    assert count(service, "GET", "unmatched", "404") == 1, "no route: one series, not one per path"
    assert count(service, "GET", "/healthz", "200") == 1, "probes are counted (only tracing leaves them out)"
    assert count(service, "POST", "/boom", "500") == 1, "an exception is a 500"
    assert count(service, "POST", "/boom", "413") == 1, "a body refused before routing still has its route"
    assert timed(service, "GET", "/items/{item_id}") == 3
    assert f'feedbackloop_http_requests_total{{method="GET",route="/healthz",service="{service}",status="200"}} 1.0' \
           in scraped.splitlines()
    assert "http_requests_total{" not in scraped.replace("feedbackloop_http_requests_total{", ""), \
        "the library's own default metrics are not registered"
