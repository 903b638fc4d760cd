"""Managing rules: create, replace, delete, read, and preview which would fire for an event.

A rule's ``match``, ``channels`` and ``throttle`` are checked by the domain; a 422 problem names every bad field.
A channel that calls a vendor (a support tool, a tracker) the operator did not configure is one of them, and so is
a tracker channel on a rule that can match feedback events (it files issues for insights).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from feedbackloop.http import NotFound, ProblemError
from feedbackloop.logs import get_logger
from notification.domain.channel_rules import ALL_CONFIGURED, Integrations, parse_channels
from notification.domain.channels import Channel, TrackerChannel, channel_from_json
from notification.domain.fields import EventKind
from notification.domain.rules import RuleInvalid, Throttle, kinds_matched, matches, parse_throttle, validate_match
from notification.domain.targets import TargetPolicy
from notification.store.models import Rule
from notification.store.repository import DeliveryRepository, NoiseRepository, RuleRepository

__all__ = [
    "Matchable",
    "RuleDraft",
    "create_rule",
    "delete_rule",
    "fires",
    "get_rule",
    "list_rules",
    "rules_matching",
    "update_rule",
    "upsert_rule_by_name",
]

log = get_logger(__name__)


@dataclass(frozen=True)
class RuleDraft:
    """A rule as a client sent it, before the domain checked ``match`` and ``channels``."""

    name: str
    team: str
    match: dict[str, Any]
    channels: list[Any]
    enabled: bool = True
    throttle: dict[str, Any] | None = None


def _checked(draft: RuleDraft, policy: TargetPolicy, previous: Sequence[Channel] = (),
             integrations: Integrations = ALL_CONFIGURED) -> tuple[list[Channel], Throttle | None]:
    """The rule's channels and throttle, or a 422 problem naming every bad field."""
    try:
        return _validated(draft, policy, previous, integrations)
    except RuleInvalid as exc:
        raise ProblemError(f"Invalid rule: {exc}.", status=422, title="Invalid rule", errors=exc.errors) from None


def _validated(draft: RuleDraft, policy: TargetPolicy, previous: Sequence[Channel] = (),
               integrations: Integrations = ALL_CONFIGURED) -> tuple[list[Channel], Throttle | None]:
    """The rule's channels and throttle, or :class:`RuleInvalid` naming every bad field of match, channels, throttle."""
    errors: list[dict[str, str]] = []
    channels: list[Channel] = []
    throttle: Throttle | None = None
    match_ok = True
    try:
        validate_match(draft.match)
    except RuleInvalid as exc:
        errors += exc.errors
        match_ok = False
    try:
        channels = parse_channels(draft.channels, policy, previous, integrations)
    except RuleInvalid as exc:
        errors += exc.errors
    if match_ok and "feedback" in kinds_matched(draft.match):
        errors += [{"field": f"channels.{i}.type",
                    "message": "a tracker channel files an issue per insight, and this rule can match feedback "
                               'events: add {"field": "event", "op": "eq", "value": "insight"} to its match'}
                   for i, c in enumerate(channels) if isinstance(c, TrackerChannel)]
    try:
        throttle = parse_throttle(draft.throttle)
    except RuleInvalid as exc:
        errors += exc.errors
    if errors:
        raise RuleInvalid(errors)
    return channels, throttle


def _new_rule(draft: RuleDraft, channels: list[Channel], throttle: Throttle | None) -> Rule:
    now = datetime.now(UTC)
    return Rule(id=str(uuid.uuid4()), name=draft.name, team=draft.team, match=draft.match,
                channels=[c.to_json() for c in channels], enabled=draft.enabled, created_at=now, updated_at=now,
                throttle=throttle.to_json() if throttle else None)


async def create_rule(uow_factory: UnitOfWorkFactory, draft: RuleDraft, policy: TargetPolicy,
                      integrations: Integrations = ALL_CONFIGURED) -> Rule:
    """Store a new rule; a 422 problem names every invalid field, operator, URL, secret or throttle key."""
    rule = _new_rule(draft, *_checked(draft, policy, (), integrations))
    async with uow_factory() as uow:
        RuleRepository(uow.session).add(rule)
        await uow.commit()
    log.info("rule created", rule_id=rule.id, team=rule.team, channels=len(rule.channels))
    return rule


async def update_rule(uow_factory: UnitOfWorkFactory, rule_id: str, draft: RuleDraft, policy: TargetPolicy,
                      integrations: Integrations = ALL_CONFIGURED) -> Rule:
    """Replace a rule; a channel sent masked keeps what is stored (see :func:`parse_channels`).

    When the channels change, their throttle windows and failure counts start afresh (a fixed URL is a new start).
    """
    async with uow_factory() as uow:
        rule = await RuleRepository(uow.session).get(rule_id)
        if rule is None:
            raise NotFound(f"No rule {rule_id}.")
        await _replace(uow.session, rule, draft,
                       *_checked(draft, policy, [channel_from_json(c) for c in rule.channels], integrations))
        await uow.commit()
    log.info("rule updated", rule_id=rule_id)
    return rule


async def _replace(session: AsyncSession, rule: Rule, draft: RuleDraft, channels: list[Channel],
                   throttle: Throttle | None) -> None:
    """Give ``rule`` the draft's fields; new channels forget the rule's throttle windows, failure counts and
    episodes, and queue its paused deliveries again."""
    before = list(rule.channels)
    rule.name, rule.team, rule.match, rule.enabled = draft.name, draft.team, draft.match, draft.enabled
    rule.channels = [c.to_json() for c in channels]
    rule.throttle = throttle.to_json() if throttle else None
    rule.updated_at = datetime.now(UTC)
    if rule.channels == before:
        return
    await NoiseRepository(session).forget_rule(rule.id)
    deliveries = DeliveryRepository(session)
    for index in range(len(rule.channels)):
        await deliveries.resume_paused(rule.id, index, datetime.now(UTC))


async def delete_rule(uow_factory: UnitOfWorkFactory, rule_id: str) -> None:
    """Delete a rule; its pending deliveries fail (nothing can sign them any more), its history stays."""
    async with uow_factory() as uow:
        repo = RuleRepository(uow.session)
        rule = await repo.get(rule_id)
        if rule is None:
            raise NotFound(f"No rule {rule_id}.")
        await repo.delete(rule)
        await DeliveryRepository(uow.session).fail_pending_of_rule(rule_id, "rule deleted")
        await NoiseRepository(uow.session).forget_rule(rule_id)
        await uow.commit()
    log.info("rule deleted", rule_id=rule_id)


async def get_rule(sessions: async_sessionmaker[AsyncSession], rule_id: str) -> Rule:
    async with sessions() as session, session.begin():
        rule = await RuleRepository(session).get(rule_id)
    if rule is None:
        raise NotFound(f"No rule {rule_id}.")
    return rule


async def list_rules(sessions: async_sessionmaker[AsyncSession], limit: int, after: tuple[datetime, str] | None,
                     team: str | None = None) -> list[Rule]:
    async with sessions() as session, session.begin():
        return await RuleRepository(session).page(limit, after, team)


async def rules_matching(sessions: async_sessionmaker[AsyncSession], event_kind: EventKind,
                         data: Mapping[str, Any]) -> tuple[list[Rule], int]:
    """The enabled rules an event would fire, and how many were evaluated. Queues and sends nothing."""
    async with sessions() as session, session.begin():
        rules = await RuleRepository(session).enabled()
    return [r for r in rules if fires(r, event_kind, data)], len(rules)


class Matchable(Protocol):
    """A stored rule as the matcher needs it (a :class:`Rule`, or a batch's copy of one)."""

    @property
    def id(self) -> str: ...

    @property
    def match(self) -> Any: ...


def fires(rule: Matchable, event_kind: str, data: Mapping[str, Any]) -> bool:
    """Whether a stored rule matches an event; a rule the matcher cannot read is skipped (and logged)."""
    try:
        return matches(rule.match, event_kind, data)
    except (KeyError, TypeError, AttributeError) as exc:
        log.error("rule cannot be evaluated; skipped", rule_id=rule.id, error=repr(exc))
        return False


async def upsert_rule_by_name(uow: UnitOfWork, draft: RuleDraft, policy: TargetPolicy,
                              integrations: Integrations = ALL_CONFIGURED) -> str:
    """Create or replace the rule called ``draft.name`` in the caller's transaction; ``created`` or ``updated``.

    Raises :class:`RuleInvalid` naming each bad key (the rules file loader adds the file and the rule).
    """
    repo = RuleRepository(uow.session)
    rule = await repo.by_name(draft.name)
    previous = [channel_from_json(c) for c in rule.channels] if rule else []
    channels, throttle = _validated(draft, policy, previous, integrations)
    if rule is None:
        repo.add(_new_rule(draft, channels, throttle))
        return "created"
    await _replace(uow.session, rule, draft, channels, throttle)
    return "updated"
