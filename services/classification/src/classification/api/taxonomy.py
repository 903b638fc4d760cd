"""``GET /v1/taxonomy``: the theme tree the running classifier matches against, with its version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from classification.api.deps import ClassifierDep
from feedbackloop.http import ReadKey

router = APIRouter(prefix="/v1", tags=["taxonomy"])


class ThemeNode(BaseModel):
    id: str
    name: str
    description: str
    keywords: list[str]
    children: list[ThemeNode]


class TaxonomyOut(BaseModel):
    version: str
    match_threshold: float = Field(description="A theme is assigned only at or above this confidence")
    max_themes: int = Field(description="Most themes one item gets")
    themes: list[ThemeNode]


@router.get("/taxonomy", response_model=TaxonomyOut, summary="The theme tree",
            description="The themes as a tree (`children`); a theme's product area is its top-level ancestor.")
async def get_taxonomy(_key: ReadKey, classifier: ClassifierDep) -> dict[str, Any]:
    taxonomy = classifier.taxonomy
    return {"version": taxonomy.version, "match_threshold": taxonomy.match_threshold,
            "max_themes": taxonomy.max_themes, "themes": taxonomy.tree()}
