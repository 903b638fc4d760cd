"""Security headers on every response of every service.

The pages the services render (aggregation's dashboard, login and drill-down) are server-side HTML with inline
``<style>`` and ``style=""`` attributes, inline SVG, one same-origin form and no script at all, so the policy is
``default-src 'none'`` with inline styles allowed and nothing else: an injected ``<script>`` or a framing page
gets nowhere. The API's JSON documents carry the same headers. The interactive API documentation (FastAPI's
Swagger UI and ReDoc pages, when the app has them) loads its script and styles from the jsdelivr CDN and starts
with an inline script, so those pages alone get a policy that allows exactly that. A response that sets a
header itself keeps its own value. :func:`install_security_headers` puts the middleware outside Starlette's
``ServerErrorMiddleware``, so that a 500 carries the headers too.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOCS_POLICY", "PAGE_POLICY", "SecurityHeaders", "install_security_headers"]

PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com data:; img-src 'self' data: https:; connect-src 'self'; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_POLICY = PAGE_POLICY.encode()
_DOCS_POLICY = DOCS_POLICY.encode()
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _docs_paths(app: object) -> frozenset[str]:
    names = ("docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")
    return frozenset(p for p in (getattr(app, n, None) for n in names) if isinstance(p, str))


class SecurityHeaders:
    """Adds Content-Security-Policy, X-Frame-Options, X-Content-Type-Options and Referrer-Policy to each
    ``http.response.start`` that does not already carry them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._docs: tuple[object, frozenset[str]] | None = None  # (the app, its docs paths), found once per app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        owner = scope.get("app")
        if self._docs is None or self._docs[0] is not owner:
            self._docs = (owner, _docs_paths(owner))
        policy = _DOCS_POLICY if scope.get("path") in self._docs[1] else _PAGE_POLICY

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                for name, value in ((b"content-security-policy", policy), *_COMMON):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install_security_headers(app: Starlette) -> None:
    """Wrap the whole middleware stack of ``app`` (built on its first request) in :class:`SecurityHeaders`."""
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
