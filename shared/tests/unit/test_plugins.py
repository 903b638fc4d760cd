"""The shared package knows the services only through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedbackloop.cli.main import app
from feedbackloop.plugins import ServicePlugin, service_plugin, service_plugins

SHARED = Path(__file__).resolve().parents[2] / "src" / "feedbackloop"
SERVICES = {"ingest", "classification", "aggregation", "notification"}


def test_the_shared_package_imports_no_service() -> None:
    offenders = []
    for path in SHARED.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(SHARED)}: {n}" for n in names if n.split(".")[0] in SERVICES]
    assert offenders == []


def test_installed_services_register_in_the_loops_order() -> None:
    plugins = service_plugins()
    assert list(plugins) == ["ingest", "classification", "aggregation", "notification"]
    for name, plugin in plugins.items():
        assert isinstance(plugin, ServicePlugin) and plugin.name == name
        assert (plugin.migrations / "env.py").is_file()
        assert plugin.settings().port > 0
        assert plugin.app_factory == f"{name}.main:create_app"


def test_service_commands_join_the_cli_and_unknown_services_are_named() -> None:
    help_text = CliRunner().invoke(app, ["--help"]).output
    assert "import" in help_text and "reclassify" in help_text
    with pytest.raises(ValueError, match="'billing'; one of ingest, classification, aggregation, notification"):
        service_plugin("billing")


def test_an_image_listens_everywhere_and_leaves_migrations_unless_told() -> None:
    from feedbackloop.serve import container_defaults

    settings = service_plugin("ingest").settings()
    assert container_defaults(settings, {}) == {"host": "0.0.0.0", "auto_migrate": False}
    assert container_defaults(settings, {"INGEST_AUTO_MIGRATE": "true", "INGEST_HOST": "10.0.0.5"}) == {}
    assert container_defaults(settings, {"NOTIFICATION_HOST": "x"}) == {"host": "0.0.0.0", "auto_migrate": False}
