"""Once per episode: anomalous hours of the same detector and subject close together are one episode. Pure.

An anomalous hour within ``cooldown`` seconds of an episode's span (either side: hours may be judged out
of order during a backfill) extends that episode and raises nothing; any other opens a new episode,
and only a new episode is an insight. The insight id is derived from (detector, subject, first hour),
so judging the same hour again is the same insight and the same event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

__all__ = ["Episode", "episode_insight_id", "find_episode"]

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
