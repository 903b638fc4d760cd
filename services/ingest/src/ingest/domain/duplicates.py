"""Which incoming items are new, which are exact repeats, and which repeat an earlier item's words. Pure.

Two kinds of "seen before", decided together for every item of one store call (a group of requests):

- **exact repeat**: the same ``feedback_id`` (same source and source id) is stored already, or came earlier in
  the same call. It is not stored again; its sender gets the same id back.
- **near-duplicate**: the same author said the same words (case, spacing and punctuation aside: the content
  key) within ``window`` of an earlier item, from any source. It is stored and published with ``duplicate_of``
  = that earlier item: linked, never dropped. The earlier item is one of this call that was not itself linked
  (the first such), else the earliest stored one in the window. An item whose author is unknown has no content
  key and is never linked; a window of zero links nothing.

:func:`place` is the decision; :func:`content_lookup` says which stored items it needs to see (the service
loads them in one query before calling it).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedbackloop.contracts import RawFeedback
from ingest.domain.text import content_key

__all__ = ["Candidate", "ContentLookup", "Placement", "author_key", "candidate", "content_lookup", "place"]


def author_key(raw: RawFeedback) -> str | None:
    """Who said it, comparable across sources: the email hash, else the source's own author id, else None."""
    if raw.author.email_hash:
        return f"email:{raw.author.email_hash}"
    if raw.author.id:
        return f"{raw.source}:{raw.author.id}"
    return None


@dataclass(frozen=True)
class Candidate:
    """An incoming item as the decision sees it."""

    feedback_id: uuid.UUID
    created_at: datetime
    content_key: str | None  # author + normalized words; None when the author is unknown


def candidate(raw: RawFeedback) -> Candidate:
    """``raw`` as a :class:`Candidate` (its content key from its author and text)."""
    who = author_key(raw)
    return Candidate(raw.feedback_id, raw.created_at, content_key(who, raw.text) if who else None)


@dataclass(frozen=True)
class Placement:
    """What becomes of one candidate: stored (``new``), linked to an earlier item or not; or an exact repeat."""

    new: bool
    duplicate_of: uuid.UUID | None = None


REPEAT = Placement(new=False)
NEW = Placement(new=True)


@dataclass(frozen=True)
class ContentLookup:
    """The stored items :func:`place` needs: those with one of ``keys``, created in ``[since, until]``."""

    keys: frozenset[str]
    since: datetime
    until: datetime


def content_lookup(
    candidates: Sequence[Candidate], stored_ids: Collection[uuid.UUID], window: timedelta
) -> ContentLookup | None:
    """The stored items that may be the original of a new candidate; None when no lookup is needed."""
    if window <= timedelta(0):
        return None
    keyed = [c for c in candidates if c.content_key is not None and c.feedback_id not in stored_ids]
    if not keyed:
        return None
    return ContentLookup(
        keys=frozenset(c.content_key for c in keyed if c.content_key is not None),
        since=min(c.created_at for c in keyed) - window,
        until=max(c.created_at for c in keyed) + window,
    )


def place(
    candidates: Sequence[Candidate],
    *,
    stored_ids: Collection[uuid.UUID],
    stored_by_key: Mapping[str, Sequence[tuple[datetime, uuid.UUID]]],
    window: timedelta,
) -> list[Placement]:
    """One placement per candidate, in order.

    ``stored_ids``: the candidates' ids already stored. ``stored_by_key``: stored items by content key, as
    ``(created_at, feedback_id)`` pairs, earliest first (what :func:`content_lookup` named, or more).
    """
    seen = set(stored_ids)
    first_of_key: dict[str, tuple[datetime, uuid.UUID]] = {}  # this call's first unlinked item per content key
    placements: list[Placement] = []
    for item in candidates:
        if item.feedback_id in seen:
            placements.append(REPEAT)
            continue
        seen.add(item.feedback_id)
        key = item.content_key
        if key is None or window <= timedelta(0):
            placements.append(NEW)
            continue
        original = _original(item, first_of_key.get(key), stored_by_key.get(key, ()), window)
        if original is not None and original != item.feedback_id:
            placements.append(Placement(new=True, duplicate_of=original))
        else:
            first_of_key.setdefault(key, (item.created_at, item.feedback_id))
            placements.append(NEW)
    return placements


def _original(
    item: Candidate,
    earlier_in_call: tuple[datetime, uuid.UUID] | None,
    stored: Sequence[tuple[datetime, uuid.UUID]],
    window: timedelta,
) -> uuid.UUID | None:
    """The item ``item`` repeats: this call's earlier one within the window, else the earliest stored one."""
    if earlier_in_call is not None and abs(earlier_in_call[0] - item.created_at) <= window:
        return earlier_in_call[1]
    since, until = item.created_at - window, item.created_at + window
    return next((fid for created, fid in stored if since <= created <= until), None)
