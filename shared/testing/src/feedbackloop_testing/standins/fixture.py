"""The ``standins`` pytest fixture (registered by the test kit's plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feedbackloop_testing.standins.server import StandinServer

__all__ = ["standins"]


@pytest.fixture
def standins() -> Iterator[StandinServer]:
    """Stand-ins of GitHub, Jira, Linear, Zendesk and Intercom for this test, on a free port (a fresh, empty
    state each test). ``.url``, ``.config``, ``.env()`` (TRACKER_*/NOTIFICATION_* pointing at it), ``.issues(v)``,
    ``.comments(ticket)``, ``.conversation_parts(id)``, ``.requests(v)``, ``.webhooks()``, ``.fault(v, kind, …)``,
    ``.missing(v, target)``, ``.configure_webhooks(url_base, github_secret=…)``, ``.reset()``, and
    ``await .close_issue(key, "done"|"cancelled")`` / ``await .reopen_issue(key)``."""
    with StandinServer() as server:
        yield server
