"""``GET/PUT /v1/taxonomy``: the theme tree the running classifier matches against; ``GET /v1/taxonomy/versions``.

A PUT (admin key) is validated whole — a duplicate id, a cycle, a theme without a name … → 422 naming each
problem, and the old taxonomy stays in force — then stored as a new version (who, when) and put in force at once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from classification.api.deps import ClassifierDep, LiveDep, UnitsDep
from classification.domain.taxonomy import TaxonomyError
from classification.service import TaxonomyVersionTaken, put_taxonomy, taxonomy_versions
from feedbackloop.http import AdminKey, Conflict, ProblemError, ReadKey

router = APIRouter(prefix="/v1", tags=["taxonomy"])


class ThemeNode(BaseModel):
    id: str
    name: str
    description: str
    keywords: list[str]
    examples: list[str] = Field(default_factory=list)
    children: list[ThemeNode]


class TaxonomyOut(BaseModel):
    version: str
    match_threshold: float = Field(description="A theme is assigned only at or above this confidence")
    max_themes: int = Field(description="Most themes one item gets")
    themes: list[ThemeNode]
    examples_learned: int = Field(default=0, description="Corrections the running classifier has learned from")


class VersionOut(BaseModel):
    seq: int
    version: str
    changed_by: str
    changed_at: datetime


class VersionsOut(BaseModel):
    items: list[VersionOut] = Field(description="Versions put through the API, newest (the one in force) first")


_THEME_IN = {
    "type": "object", "required": ["id", "name"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "Stable id, e.g. `billing.refunds`"},
        "name": {"type": "string", "minLength": 1},
        "parent": {"type": ["string", "null"], "description": "The parent theme's id; absent for a top-level area"},
        "description": {"type": "string"},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "examples": {"type": "array", "items": {"type": "string"}},
    },
}
#: The PUT body, documented by hand: the route reads JSON or YAML itself (a pydantic body would take JSON only).
TAXONOMY_IN = {
    "type": "object", "required": ["themes"],
    "properties": {
        "version": {"type": "string", "description": "Absent: `api-<n>`"},
        "match_threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "max_themes": {"type": "integer", "minimum": 1},
        "themes": {"type": "array", "minItems": 1, "items": _THEME_IN, "description": "A flat list with `parent`"},
    },
}


@router.get("/taxonomy", response_model=TaxonomyOut, summary="The theme tree",
            description="The themes as a tree (`children`); a theme's product area is its top-level ancestor.")
async def get_taxonomy(_key: ReadKey, classifier: ClassifierDep) -> dict[str, Any]:
    taxonomy = classifier.taxonomy
    return {"version": taxonomy.version, "match_threshold": taxonomy.match_threshold,
            "max_themes": taxonomy.max_themes, "themes": taxonomy.tree(), "examples_learned": len(classifier.learned)}


@router.put("/taxonomy", response_model=TaxonomyOut, summary="Replace the theme tree",
            description="The document as in the taxonomy YAML (`version`, `match_threshold`, `max_themes`, `themes` "
            "as a flat list with `parent`), as JSON or YAML (`content-type: application/yaml`). Validated whole, "
            "stored as a new version and put in force at once; without `version` it gets `api-<n>`.",
            responses={400: {"description": "Malformed JSON / YAML"},
                       409: {"description": "The version is already used by a different taxonomy"},
                       422: {"description": "Invalid taxonomy; `errors` names each problem; the old one stays"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": TAXONOMY_IN}, "application/yaml": {"schema": TAXONOMY_IN}}}})
async def put_taxonomy_route(request: Request, key: AdminKey, units: UnitsDep, live: LiveDep) -> dict[str, Any]:
    body = await request.body()
    try:
        document = yaml.safe_load(body) if "yaml" in request.headers.get("content-type", "") else json.loads(body)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ProblemError("The request body is not valid JSON or YAML.", status=400, title="Malformed body",
                           errors=[{"field": "body", "message": str(exc)[:500]}]) from exc
    try:
        await put_taxonomy(units, live, document, changed_by=f"{key.name} ({key.id})")
    except TaxonomyError as exc:
        raise ProblemError("Invalid taxonomy: " + "; ".join(exc.problems[:10]) + ". The old taxonomy stays in force.",
                           status=422, title="Invalid taxonomy",
                           errors=[{"field": "taxonomy", "message": p} for p in exc.problems[:100]]) from exc
    except TaxonomyVersionTaken as exc:
        raise Conflict(f"{exc}.", errors=[{"field": "version", "message": str(exc)}]) from exc
    return await get_taxonomy(key, live.classifier)


@router.get("/taxonomy/versions", response_model=VersionsOut, summary="Taxonomy versions put through the API",
            description="Newest first, with who put each in force and when. The shipped file's taxonomy is in force "
            "until the first PUT.")
async def get_versions(_key: ReadKey, units: UnitsDep) -> dict[str, Any]:
    return {"items": await taxonomy_versions(units)}
