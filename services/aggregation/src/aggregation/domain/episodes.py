"""Once per episode: anomalous hours of the same detector and subject close together are one episode. Pure.

An anomalous hour within ``cooldown`` seconds of an episode's span (either side: hours may be judged out
of order during a backfill) extends that episode and raises nothing; any other opens a new episode,
and only a new episode is an insight. The insight id is derived from (detector, subject, first hour),
so judging the same hour again is the same insight and the same event. A spike whose episode grows is
re-published as a new revision of that insight (``domain/spike_insight.py``): same insight id, an event
id of its own (:func:`insight_event_id`), so consumers that skip processed event ids see each revision once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

__all__ = ["Episode", "episode_insight_id", "find_episode", "insight_event_id"]

_NAMESPACE = uuid.UUID("0b7a3f5e-2d4c-5e6f-8a9b-1c2d3e4f5a6b")


@dataclass(frozen=True)
class Episode:
    detector: str
    subject: str
    first: int
    last: int
    insight_id: str


def find_episode(episodes: list[Episode], at: int, cooldown: int) -> Episode | None:
    """The episode ``at`` belongs to, or None when it starts a new one."""
    for episode in episodes:
        if episode.first - cooldown <= at <= episode.last + cooldown:
            return episode
    return None


def episode_insight_id(detector: str, subject: str, first: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{detector}\x1f{subject}\x1f{first}"))


def insight_event_id(insight_id: str, revision: int) -> str:
    """The event id of an insight's ``revision``: the insight id itself for the first, derived for later ones."""
    if revision <= 1:
        return insight_id
    return str(uuid.uuid5(_NAMESPACE, f"{insight_id}\x1frevision\x1f{revision}"))
