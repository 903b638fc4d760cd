"""A channel's health: failed deliveries in a row, the pause they cause, and the event that says so. Pure.

Each settled delivery (succeeded, or failed for good) of a (rule, channel) moves its count: a success resets it
(unless the channel is paused: only a resume does), a failure adds one. At ``threshold`` failures in a row the
channel is paused: its pending deliveries are held as ``paused``, and a ``channel_paused`` insight
(:func:`channel_paused_insight`) tells whoever reads ``insights.v1``, notification's own rules included.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from feedbackloop.contracts import Insight, InsightWindow, PausedChannel

__all__ = ["PAUSE_NAMESPACE", "HealthChange", "channel_paused_insight", "health_after", "pause_event_id"]

#: Namespace of the ids of "channel paused" events: one pause of one channel is always the same event.
PAUSE_NAMESPACE = uuid.UUID("7c2e9b14-6a3f-5d82-b0e4-1f5a8c3d9e27")


@dataclass(frozen=True)
class HealthChange:
    """A channel's failure count after a settled delivery, and whether this delivery pauses it."""

    consecutive_failures: int
    pause: bool = False


def health_after(consecutive_failures: int, is_paused: bool, succeeded: bool, threshold: int) -> HealthChange:
    """The channel's count after one settled delivery; ``pause`` when this failure reaches ``threshold``
    (0: never pause) on a channel not paused yet."""
    if succeeded:
        return HealthChange(consecutive_failures if is_paused else 0)
    failures = consecutive_failures + 1
    return HealthChange(failures, pause=bool(threshold) and not is_paused and failures >= threshold)


def pause_event_id(rule_id: str, channel_index: int, paused_at: datetime) -> str:
    """The CloudEvent id of the ``channel_paused`` insight of one pause."""
    return str(uuid.uuid5(PAUSE_NAMESPACE, f"{rule_id}\x1f{channel_index}\x1f{paused_at.isoformat()}"))


def channel_paused_insight(*, rule_id: str, rule_name: str, team: str, channel_index: int, channel_type: str,
                           shown_url: str, failures: int, last_error: str | None, paused_at: datetime,
                           held: int) -> Insight:
    """The ``insights.v1`` event (``type: channel_paused``) that says a channel was paused.

    ``paused_channel`` names the rule, its team and the channel (``target`` masked: any key reads insights);
    ``metrics`` carries the figures (``consecutive_failures``, ``held_deliveries``). ``theme`` stays empty: it is
    not about feedback. ``severity`` is ``warning``: messages are being held, none lost.
    """
    return Insight(
        insight_id=uuid.uuid5(PAUSE_NAMESPACE, f"insight\x1f{rule_id}\x1f{channel_index}\x1f{paused_at.isoformat()}"),
        type="channel_paused",
        title=f"Notifications paused: {channel_type} channel {channel_index} of rule “{rule_name}” (team {team}) "
              f"failed {failures} deliveries in a row",
        window=InsightWindow(from_=paused_at, to=paused_at),
        metrics={"consecutive_failures": failures, "held_deliveries": held},
        severity="warning",
        created_at=paused_at,
        paused_channel=PausedChannel(rule_id=rule_id, rule_name=rule_name, team=team, index=channel_index,
                              type=channel_type, target=shown_url, last_error=(last_error or "")[:200] or None),
    )
