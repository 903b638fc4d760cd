"""The services ``feedbackloop`` knows, found through the ``feedbackloop.services`` entry point.

Each service package registers a :class:`ServicePlugin` (``[project.entry-points."feedbackloop.services"]`` in
its ``pyproject.toml``): its settings, app factory, migrations and its own commands, which the ``feedbackloop``
CLI adds beside the shared ones. So the shared package imports no service, and a machine with only some
services installed has a CLI for just those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from feedbackloop.settings import ServiceSettings

__all__ = ["ENTRY_POINT_GROUP", "ServicePlugin", "service_names", "service_plugin", "service_plugins"]

ENTRY_POINT_GROUP = "feedbackloop.services"

#: The loop's order (the launcher starts them so); any other registered service comes after, by name.
LOOP_ORDER = ("ingest", "classification", "aggregation", "notification")


@dataclass(frozen=True)
class ServicePlugin:
    name: str
    settings: Callable[[], ServiceSettings]
    app_factory: str  # "<module>:<function>", imported when the service is served, not each time the CLI starts
    migrations: Path
    commands: typer.Typer | None = None  # its own commands, added to `feedbackloop` as top-level commands

    def create_app(self, settings: Any) -> FastAPI:
        module, _, function = self.app_factory.partition(":")
        factory: Callable[[Any], FastAPI] = getattr(import_module(module), function)
        return factory(settings)


@cache
def service_plugins() -> dict[str, ServicePlugin]:
    found: dict[str, ServicePlugin] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        plugin = point.load()
        if not isinstance(plugin, ServicePlugin) or plugin.name != point.name:
            raise TypeError(f"entry point {point.value} ({point.name}) is not the ServicePlugin {point.name!r}")
        found[point.name] = plugin
    rank = {name: i for i, name in enumerate(LOOP_ORDER)}
    return {name: found[name] for name in sorted(found, key=lambda n: (rank.get(n, len(rank)), n))}


def service_names() -> list[str]:
    return list(service_plugins())


def service_plugin(name: str) -> ServicePlugin:
    """The installed service called ``name``; ValueError naming the installed ones otherwise."""
    plugins = service_plugins()
    if name not in plugins:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(plugins) or '(none installed)'}")
    return plugins[name]
