"""``feedbackloop receive``: a local webhook receiver for trying rules out; verifies Standard Webhooks signatures."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks import Webhook, WebhookVerificationError


def receiver_app(secret: str | None) -> FastAPI:
    app = FastAPI(title="Feedback Loop test receiver")

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> JSONResponse:
        body = await request.body()
        verdict = "unsigned check skipped (no --secret)"
        if secret:
            try:
                Webhook(secret).verify(body, dict(request.headers))
                verdict = "signature OK"
            except WebhookVerificationError as exc:
                print(f"{datetime.now(UTC):%H:%M:%S} /{path} REJECTED: {exc}", file=sys.stderr, flush=True)
                return JSONResponse({"error": str(exc)}, status_code=401)
        print(
            f"{datetime.now(UTC):%H:%M:%S} /{path} webhook-id={request.headers.get('webhook-id')} {verdict}",
            file=sys.stderr,
            flush=True,
        )
        try:
            print(json.dumps(json.loads(body), indent=2), flush=True)
        except ValueError:
            print(body.decode(errors="replace"), flush=True)
        return JSONResponse({"received": True})

    return app


def run_receiver(port: int, secret: str | None) -> None:
    print(f"listening on http://127.0.0.1:{port}/ (any path); Ctrl-C stops", file=sys.stderr, flush=True)
    uvicorn.run(receiver_app(secret), host="127.0.0.1", port=port, log_level="warning")
