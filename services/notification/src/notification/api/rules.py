"""``/v1/rules``: manage notification rules, and preview which would fire for an event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from feedbackloop.http import AdminKey, ReadKey, cursor_key, keyset_page
from notification.api.deps import ReadDep, SettingsDep, UowDep
from notification.api.schemas import (
    ResumeOut,
    RuleIn,
    RuleOut,
    RulePage,
    RuleSummary,
    RuleTestIn,
    RuleTestOut,
    page_key,
    rule_out,
)
from notification.service.deliveries import resume_channel
from notification.service.rules import (
    RuleDraft,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    rules_matching,
    update_rule,
)

router = APIRouter(prefix="/v1/rules", tags=["rules"])

_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid rule: `errors` names each bad field, operator, URL, secret, reply template or "
                         "unconfigured support tool or tracker (with the variables to set)"}}


def _draft(body: RuleIn) -> RuleDraft:
    return RuleDraft(name=body.name, team=body.team, match=body.match, channels=body.channels, enabled=body.enabled,
                     throttle=body.throttle)


@router.post("", status_code=201, response_model=RuleOut, summary="Create a rule", responses=_INVALID)
async def post_rule(body: RuleIn, _key: AdminKey, uow: UowDep, settings: SettingsDep) -> RuleOut:
    return rule_out(await create_rule(uow, _draft(body), settings.target_policy, settings.integrations),
                    reveal_urls=True)


@router.get("", response_model=RulePage, summary="List rules, oldest first")
async def get_rules(key: ReadKey, sessions: ReadDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    cursor: str | None = None, team: str | None = None) -> RulePage:
    rows = await list_rules(sessions, limit + 1, cursor_key(cursor, datetime, str), team)
    items, next_cursor = keyset_page(rows, limit, key=page_key)
    return RulePage(items=[rule_out(r, reveal_urls=key.allows("write")) for r in items], next_cursor=next_cursor)


@router.post("/test", response_model=RuleTestOut, summary="Which enabled rules an event would fire (sends nothing)")
async def test_rules(body: RuleTestIn, _key: ReadKey, sessions: ReadDep) -> RuleTestOut:
    matched, evaluated = await rules_matching(sessions, body.event, body.data)
    return RuleTestOut(event=body.event, rules_evaluated=evaluated,
                       matched=[RuleSummary(id=uuid.UUID(r.id), name=r.name, team=r.team, channels=len(r.channels))
                                for r in matched])


@router.get("/{rule_id}", response_model=RuleOut, summary="One rule", responses={404: {"description": "No such rule"}})
async def get_one_rule(rule_id: uuid.UUID, key: ReadKey, sessions: ReadDep) -> RuleOut:
    return rule_out(await get_rule(sessions, str(rule_id)), reveal_urls=key.allows("write"))


@router.put("/{rule_id}", response_model=RuleOut, summary="Replace a rule",
            responses={**_INVALID, 404: {"description": "No such rule"}})
async def put_rule(rule_id: uuid.UUID, body: RuleIn, _key: AdminKey, uow: UowDep, settings: SettingsDep) -> RuleOut:
    return rule_out(await update_rule(uow, str(rule_id), _draft(body), settings.target_policy,
                                      settings.integrations), reveal_urls=True)


@router.delete("/{rule_id}", status_code=204, response_class=Response, summary="Delete a rule",
               responses={404: {"description": "No such rule"}})
async def remove_rule(rule_id: uuid.UUID, _key: AdminKey, uow: UowDep) -> Response:
    await delete_rule(uow, str(rule_id))
    return Response(status_code=204)


@router.post("/{rule_id}/channels/{channel_index}/resume", response_model=ResumeOut,
             summary="Resume a channel paused after failing; its paused deliveries are queued again",
             responses={404: {"description": "No such rule or channel"}, 409: {"description": "Not paused"}})
async def post_resume(rule_id: uuid.UUID, channel_index: int, _key: AdminKey, uow: UowDep) -> ResumeOut:
    return ResumeOut(requeued=await resume_channel(uow, str(rule_id), channel_index))
