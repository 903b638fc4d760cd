"""Rules as code: teams and rules from a YAML file, upserted by name when the service starts.

    teams:
      - name: billing
        quiet_hours: {start: "22:00", end: "07:00", timezone: Europe/Berlin}
    rules:
      - name: billing bugs
        team: billing
        match: {all: [{field: kind, op: eq, value: bug}]}
        channels:
          - {type: slack, url: "${SLACK_BILLING_URL}"}
          - {type: webhook, url: "https://hooks.example.com/billing", secret: "${BILLING_HOOK_SECRET}"}
        throttle: {limit: 5, window_s: 600}
        enabled: true
      - name: tell the customers
        team: success
        match: {all: [{field: type, op: eq, value: loop_closed}, {field: loop.customers.mrr, op: gte, value: 500}]}
        channels:
          - {type: email, to: [], to_owner: true}
          - {type: zendesk, public: false, message: "Fixed: {issue_title} ({issue_url})"}

A ``${NAME}`` anywhere in a string is replaced by the environment variable ``NAME``, so secrets stay out of git.
Each team and rule is created, or replaced when one of that name exists; rules and teams not in the file are left
alone (the API may own them). The whole file applies in one transaction or not at all: any problem — bad YAML,
an unknown key, a duplicate name, an unset variable, anything the API would refuse — raises
:class:`RulesFileError`, whose message names the file, the rule or team, and each bad field; the service then
does not start.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from feedbackloop.db import UnitOfWorkFactory
from feedbackloop.logs import get_logger
from notification.domain.channel_rules import ALL_CONFIGURED, Integrations
from notification.domain.errors import RuleInvalid
from notification.domain.targets import TargetPolicy
from notification.service.rules import RuleDraft, upsert_rule_by_name
from notification.service.teams import TeamDraft, upsert_team_by_name

__all__ = ["RulesFileError", "load_rules_file"]

log = get_logger(__name__)

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RULE_KEYS = {"name", "team", "match", "channels", "throttle", "enabled"}
_TEAM_KEYS = {"name", "quiet_hours"}


class RulesFileError(ValueError):
    """The rules file cannot be applied; the message names the file, the entry and every problem in it."""


def _expand(value: Any, missing: set[str]) -> Any:
    if isinstance(value, str):
        def variable(match: re.Match[str]) -> str:
            found = os.environ.get(match.group(1))
            if found is None:
                missing.add(match.group(1))
                return ""
            return found
        return _VARIABLE.sub(variable, value)
    if isinstance(value, list):
        return [_expand(v, missing) for v in value]
    if isinstance(value, Mapping):
        return {k: _expand(v, missing) for k, v in value.items()}
    return value


def _entries(doc: Mapping[str, Any], key: str, path: Path, problems: list[str]) -> list[Mapping[str, Any]]:
    raw = doc.get(key) or []
    if not isinstance(raw, list) or not all(isinstance(e, Mapping) for e in raw):
        problems.append(f"{path}: `{key}` must be a list of mappings")
        return []
    names = Counter(str(e.get("name")) for e in raw)
    problems.extend(f"{path}: {key[:-1]} {name!r} appears {n} times; names must be unique"
                    for name, n in names.items() if n > 1)
    return list(raw)


async def load_rules_file(path: Path, uow_factory: UnitOfWorkFactory, policy: TargetPolicy,
                          integrations: Integrations = ALL_CONFIGURED) -> dict[str, int]:
    """Apply the file; returns counts (``teams_created``, ``rules_updated``, …). Raises :class:`RulesFileError`
    (a support-tool or tracker channel whose vendor is not configured too, naming the variables)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RulesFileError(f"{path}: cannot read the rules file: {exc}") from exc
    problems: list[str] = []
    if not isinstance(doc, Mapping) or set(doc) - {"teams", "rules"}:
        raise RulesFileError(f"{path}: expected a mapping with `teams` and/or `rules` lists")
    teams = _entries(doc, "teams", path, problems)
    rules = _entries(doc, "rules", path, problems)
    counts: Counter[str] = Counter()
    async with uow_factory() as uow:
        for i, raw in enumerate(teams):
            where = f"{path}: team {raw.get('name')!r} (teams[{i}])"
            missing: set[str] = set()
            entry = _expand(raw, missing)
            if _shape(entry, _TEAM_KEYS, {"name"}, where, missing, problems):
                try:
                    counts["teams_" + await upsert_team_by_name(
                        uow, TeamDraft(name=str(entry["name"]), quiet_hours=entry.get("quiet_hours")))] += 1
                except RuleInvalid as exc:
                    problems.append(f"{where}: {exc}")
        for i, raw in enumerate(rules):
            where = f"{path}: rule {raw.get('name')!r} (rules[{i}])"
            missing = set()
            entry = _expand(raw, missing)
            if _shape(entry, _RULE_KEYS, {"name", "team", "match", "channels"}, where, missing, problems):
                draft = RuleDraft(name=str(entry["name"]), team=str(entry["team"]), match=entry["match"],
                                  channels=entry["channels"], enabled=bool(entry.get("enabled", True)),
                                  throttle=entry.get("throttle"))
                try:
                    counts["rules_" + await upsert_rule_by_name(uow, draft, policy, integrations)] += 1
                except RuleInvalid as exc:
                    problems.append(f"{where}: {exc}")
        if problems:
            raise RulesFileError("the rules file was not applied:\n  " + "\n  ".join(problems))
        await uow.commit()
    log.info("rules file applied", path=str(path), **counts)
    return dict(counts)


def _shape(entry: Mapping[str, Any], allowed: set[str], required: set[str], where: str, missing: set[str],
           problems: list[str]) -> bool:
    found = []
    if set(entry) - allowed:
        found.append(f"unknown key(s) {sorted(set(entry) - allowed)}; allowed: {', '.join(sorted(allowed))}")
    found += [f"{key}: Field required" for key in sorted(required - set(entry))]
    found += [f"environment variable {name} is not set" for name in sorted(missing)]
    if not isinstance(entry.get("name"), str) or not entry.get("name"):
        found.append("name: a non-empty string")
    if found:
        problems.append(f"{where}: " + "; ".join(found))
    return not found
