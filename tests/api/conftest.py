"""Counts the requests schemathesis generated per service and prints them at the end (the closing note quotes it)."""

from __future__ import annotations

import pytest

GENERATED = pytest.StashKey[dict[str, int]]()


@pytest.fixture(scope="session")
def generated_cases(pytestconfig: pytest.Config) -> dict[str, int]:
    """Service → generated requests, filled in by the fuzz tests."""
    return pytestconfig.stash.setdefault(GENERATED, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = terminalreporter.config.stash.get(GENERATED, {})
    if counts:
        terminalreporter.section("schemathesis")
        for service, cases in counts.items():
            terminalreporter.write_line(f"  {service}: {cases} generated requests")
        terminalreporter.write_line(f"  total: {sum(counts.values())}")
