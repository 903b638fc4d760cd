"""``POST /v1/classify``: the labels one text or up to 100 would get — for previews, taxonomy tuning, evaluation.

Stores nothing and publishes nothing. One object in → one labels object out; a list in → ``{"items": [...]}``
in input order.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from classification.api.deps import ClassifierDep
from classification.domain.pipeline import Labels
from classification.model.classifier import PreviewItem
from classification.service import preview
from feedbackloop.contracts import Customer
from feedbackloop.http import ReadKey
from feedbackloop.http.batch import parse_one_or_many

router = APIRouter(prefix="/v1", tags=["classify"])

#: Most items one request may carry (the HTTP contract says "up to 100").
MAX_ITEMS = 100


class ClassifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The feedback text")
    subject: str | None = Field(default=None, description="A ticket subject or review title, read with the text")
    customer: Customer | None = Field(default=None, description="`plan` and `mrr` can raise the urgency")
    language: str | None = Field(default=None, description="Language hint, used when the text is too short to tell")


class LabelsList(BaseModel):
    items: list[Labels]


_item = TypeAdapter(ClassifyIn)


@router.post(
    "/classify",
    response_model=Labels | LabelsList,
    summary="Preview labels (one text or a list of up to 100)",
    description="Returns the labels the classifier would assign, with the phrases and rules behind them "
    "(`explanation`). Nothing is stored or published.",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [{"$ref": "#/components/schemas/ClassifyIn"},
                  {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS,
                   "items": {"$ref": "#/components/schemas/ClassifyIn"}}]}}}}},
    responses={400: {"description": "Malformed JSON"}, 413: {"description": "More than 100 items, or body too large"},
               422: {"description": "A field is missing or invalid, or the list is empty; `errors` names it"}},
)
async def post_classify(request: Request, _key: ReadKey, classifier: ClassifierDep) -> Labels | LabelsList:
    items, single = _parse(await request.body())
    labels = await preview(classifier, [PreviewItem(text=i.text, subject=i.subject, customer=i.customer,
                                                    language=i.language) for i in items])
    return labels[0] if single else LabelsList(items=labels)


def _parse(body: bytes) -> tuple[list[ClassifyIn], bool]:
    return parse_one_or_many(body, _item, max_items=MAX_ITEMS, noun='{"text": …} object')
