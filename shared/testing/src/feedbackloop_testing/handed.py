"""The tier of tests that read the data handed to the project (``../shared/``: vendor payloads, labelled sets).

Such a test carries ``@pytest.mark.handed_data`` (or its module ``pytestmark``) and reads through
:func:`handed_data`. ``make test`` runs the tier whenever the data is there. On a clone with nothing beside
it the tier is left out and the run ends with one line naming how many tests did not run and why — nothing is
skipped silently — except under CI (``CI=true``), where the data must be present and its absence fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["handed_data", "handed_root"]

MARKER = "handed_data"
_left_out: list[str] = []


def handed_root() -> Path:
    """``FEEDBACKLOOP_HANDED_DIR``, else ``../shared`` beside the checkout."""
    configured = os.environ.get("FEEDBACKLOOP_HANDED_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[4].parent / "shared"


def handed_data(relative: str) -> Path:
    """A file of the handed data; a missing file fails the test (call it inside tests, never at import)."""
    path = handed_root() / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the handed data (../shared/) must sit beside the checkout")
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: reads the handed data in ../shared/ (its own tier)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if handed_root().is_dir():
        return
    marked = [item for item in items if item.get_closest_marker(MARKER) is not None]
    if not marked:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise pytest.UsageError(f"{len(marked)} tests read the handed data, and {handed_root()} is missing: "
                                "CI must run them (set FEEDBACKLOOP_HANDED_DIR)")
    _left_out.extend(item.nodeid for item in marked)
    config.hook.pytest_deselected(items=marked)
    items[:] = [item for item in items if item.get_closest_marker(MARKER) is None]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _left_out:
        files = sorted({nodeid.split("::")[0] for nodeid in _left_out})
        terminalreporter.write_line(
            f"not run: {len(_left_out)} tests in {len(files)} files read the handed data, and {handed_root()} "
            "is missing (put ../shared beside the checkout or set FEEDBACKLOOP_HANDED_DIR to run them)",
            yellow=True,
        )
