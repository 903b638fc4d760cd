"""The fields a rule may test: dotted paths into the ``data`` of each event kind, derived from the contract models.

A path names a field of :class:`~feedbackloop.contracts.ClassifiedFeedback` (event kind ``feedback``) or of
:class:`~feedbackloop.contracts.Insight` (event kind ``insight``), nested models included, under the names the
JSON carries (aliases: ``window.from``). A list of models is traversed element by element: ``themes.id`` means
"the id of any theme". A free-form mapping (``metrics``, ``redactions``) takes any key below it:
``metrics.observed``. The pseudo-field ``event`` is the event kind itself. Pure: no I/O.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Union

from pydantic import BaseModel

from feedbackloop.contracts import ClassifiedFeedback, Insight

__all__ = ["CATALOG", "EVENT_FIELD", "EVENT_KINDS", "EventKind", "FieldCatalog", "resolve"]

EventKind = Literal["feedback", "insight"]
EVENT_KINDS: tuple[EventKind, ...] = ("feedback", "insight")
EVENT_FIELD = "event"

_MISSING = object()


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types behind ``X | None``, ``list[X]``, ``Annotated[X, …]``: a flat list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    if origin in (list, tuple, set, frozenset):
        return [t for arg in typing.get_args(annotation) if arg is not Ellipsis for t in _unwrap(arg)]
    return [annotation]


def _walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, bool]]:
    """Yield ``(path, open)`` for each field; ``open`` means any key below the path is allowed (a mapping)."""
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        yield path, False
        for inner in _unwrap(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                yield from _walk(inner, path + ".")
            elif inner is dict or typing.get_origin(inner) in (dict, Mapping):
                yield path, True


class FieldCatalog:
    """The known paths of each event kind, and the check of a path a rule names."""

    def __init__(self, models: Mapping[EventKind, type[BaseModel]]) -> None:
        self._exact: dict[EventKind, frozenset[str]] = {}
        self._open: dict[EventKind, frozenset[str]] = {}
        for kind, model in models.items():
            walked = list(_walk(model, ""))
            self._exact[kind] = frozenset(p for p, _ in walked)
            self._open[kind] = frozenset(p for p, is_open in walked if is_open)

    def kinds_with(self, path: str) -> set[EventKind]:
        """The event kinds whose data has ``path`` (empty: unknown field). ``event`` belongs to every kind."""
        if path == EVENT_FIELD:
            return set(self._exact)
        found: set[EventKind] = set()
        for kind, exact in self._exact.items():
            if path in exact or any(path.startswith(p + ".") and len(path) > len(p) + 1 for p in self._open[kind]):
                found.add(kind)
        return found

    def known(self) -> list[str]:
        """Every known path, sorted; mappings shown as ``metrics.*``."""
        names = {EVENT_FIELD}
        for kind in self._exact:
            names |= self._exact[kind]
            names |= {p + ".*" for p in self._open[kind]}
        return sorted(names)


CATALOG = FieldCatalog({"feedback": ClassifiedFeedback, "insight": Insight})


def resolve(event_kind: str, data: Mapping[str, Any], path: str) -> list[Any]:
    """The values ``path`` reaches in ``data``, flattened: lists on the way (and at the end) fan out.

    ``resolve(k, {"themes": [{"id": "a"}, {"id": "b"}]}, "themes.id") == ["a", "b"]``; a missing key gives ``[]``;
    an explicit ``null`` gives ``[None]``. ``event`` gives ``[event_kind]``.
    """
    if path == EVENT_FIELD:
        return [event_kind]
    current: list[Any] = [data]
    for part in path.split("."):
        following: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Mapping):
                    found = item.get(part, _MISSING)
                    if found is not _MISSING:
                        following.append(found)
        current = following
    flat: list[Any] = []
    for value in current:
        if isinstance(value, list):
            flat.extend(value)
        else:
            flat.append(value)
    return flat
