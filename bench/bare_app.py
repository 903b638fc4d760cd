"""The ceiling ``make bench`` measures ingest against: a bare FastAPI POST that validates the same item with
pydantic and answers 202 with ids — no auth, redaction, store or broker. Served by uvicorn as ingest is."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from pydantic import BaseModel


class Customer(BaseModel):
    id: str
    plan: str | None = None
    mrr: float | None = None


class Item(BaseModel):
    source: str
    external_id: str
    text: str
    customer: Customer | None = None


app = FastAPI()


@app.post("/v1/feedback", status_code=202)
async def post_feedback(body: Item | list[Item]) -> dict[str, list[str]]:
    items = body if isinstance(body, list) else [body]
    return {"feedback_ids": [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{i.source}/{i.external_id}")) for i in items]}
