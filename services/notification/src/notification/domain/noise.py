"""Less noise: quiet hours, digests and insight episodes. Pure: times in, decisions out.

* **Quiet hours** (per team): ``{"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}``; a period that
  wraps midnight is fine. During it a team's messages are held and go out as one digest per channel when it ends.
* **Digests**: each held or throttled item joins the digest of its (rule, channel, reason, release time); the
  digest's id is a UUIDv5 of those, so re-processing an event finds the same digest.
* **Insight episodes**: an insight of the same ``type`` and ``theme`` (or title, without a theme) as one a rule
  already sent, whose window starts within ``gap`` seconds of that one's end, is the same episode and is not sent
  again, unless its severity rose (``info`` < ``warning`` < ``critical``): an escalation is news.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notification.domain.errors import RuleInvalid

__all__ = [
    "DIGEST_NAMESPACE",
    "SEVERITY_RANK",
    "EpisodeMark",
    "QuietHours",
    "digest_id_for",
    "episode_key",
    "is_same_episode",
    "parse_quiet_hours",
]

DIGEST_NAMESPACE = uuid.UUID("5d0c4a1e-2b7f-5e39-8c61-0f9a3b2d7e14")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M"), "timezone": self.timezone}

    def until(self, now: datetime) -> datetime | None:
        """When the quiet period that ``now`` falls in ends (UTC); ``None`` when ``now`` is not quiet."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        today = local.date()
        start = datetime.combine(today, self.start, zone)
        end = datetime.combine(today, self.end, zone)
        if self.start == self.end:
            return None
        if self.start < self.end:  # e.g. 12:00-14:00
            return end.astimezone(UTC) if start <= local < end else None
        if local >= start:  # wraps midnight, e.g. 22:00-07:00, and we are in the evening part
            return datetime.combine(today + timedelta(days=1), self.end, zone).astimezone(UTC)
        return end.astimezone(UTC) if local < end else None


def parse_quiet_hours(raw: Any, loc: str = "quiet_hours") -> QuietHours | None:
    """``None`` or ``{"start": "HH:MM", "end": "HH:MM", "timezone": "<IANA name>"}``.

    :class:`RuleInvalid` names each bad key.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise RuleInvalid([{"field": loc, "message": 'expected {"start": "22:00", "end": "07:00", '
                                                     '"timezone": "Europe/Berlin"} or null'}])
    errors: list[dict[str, str]] = []
    extra = set(raw) - {"start", "end", "timezone"}
    if extra:
        errors.append({"field": loc, "message": f"unknown key(s) {sorted(extra)}; quiet hours have start, end, "
                                                "timezone"})
    times: dict[str, time] = {}
    for key in ("start", "end"):
        value = raw.get(key)
        try:
            if not isinstance(value, str) or len(value) != 5:
                raise ValueError
            times[key] = time.fromisoformat(value)
        except ValueError:
            errors.append({"field": f"{loc}.{key}", "message": "a local time as HH:MM, e.g. 22:00"})
    zone = raw.get("timezone", "UTC")
    try:
        if not isinstance(zone, str) or not zone:
            raise ValueError
        ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        errors.append({"field": f"{loc}.timezone", "message": f"unknown time zone {zone!r}; use an IANA name such "
                                                              "as Europe/Berlin or UTC"})
    if errors:
        raise RuleInvalid(errors)
    return QuietHours(start=times["start"], end=times["end"], timezone=str(zone))


def digest_id_for(rule_id: str, channel_index: int, reason: str, release_at: datetime) -> str:
    """The id (and ``webhook-id``) of the digest that items held for ``reason`` until ``release_at`` join."""
    stamp = release_at.astimezone(UTC).isoformat()
    return str(uuid.uuid5(DIGEST_NAMESPACE, f"{rule_id}\x1f{channel_index}\x1f{reason}\x1f{stamp}"))


@dataclass(frozen=True)
class EpisodeMark:
    """The last insight of an episode that a rule sent: where its window ended and how severe it was."""

    window_to: datetime
    severity: str


def episode_key(data: Mapping[str, Any]) -> str:
    """What makes two insights the same story: their type and theme; without a theme, the dimension and key the
    metrics name (a product-area spike), else the title. Aggregation re-publishes a growing spike as a new
    ``revision`` of the same insight with a new title: it must stay the same story, sent again only when its
    severity rises (:func:`is_same_episode`). A loop's insights (``loop_closed`` naming no customer,
    ``loop_regression``) are the story of their link: two loops of one theme are two stories."""
    metrics = data.get("metrics")
    subject = data.get("theme")
    loop = data.get("loop")
    if isinstance(loop, Mapping) and loop.get("link_id"):
        subject = f"link:{loop['link_id']}"
    if not subject and isinstance(metrics, Mapping) and metrics.get("dimension") and metrics.get("key"):
        subject = f"{metrics['dimension']}:{metrics['key']}"
    return f"{data.get('type')}\x1f{subject or data.get('title')}"


def is_same_episode(previous: EpisodeMark | None, window_from: datetime, severity: str, gap_s: float) -> bool:
    """Whether an insight continues ``previous`` (and so is not sent again); a rise in severity is not."""
    if previous is None:
        return False
    if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(previous.severity, 0):
        return False
    return window_from <= previous.window_to + timedelta(seconds=gap_s)
