"""``feedbackloop erase``: its arguments, where its key comes from, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedbackloop.cli._erase import EraseFailed, erasure_body, resolve_key
from feedbackloop.cli.main import app
from feedbackloop_testing import free_port


def test_the_body_names_a_customer_or_an_author_or_both() -> None:
    assert erasure_body("acme", None, "t-1") == {"customer_id": "acme", "reason": "t-1"}
    assert erasure_body(None, "jane@example.com", "") == {"author_email": "jane@example.com", "reason": ""}
    assert erasure_body("acme", "jane@example.com", "") == {"customer_id": "acme", "author_email":
                                                            "jane@example.com", "reason": ""}
    with pytest.raises(EraseFailed, match="--customer or --author-email"):
        erasure_body(None, " ", "")


def test_the_key_comes_from_the_option_then_the_environment_then_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDBACKLOOP_API_KEY", raising=False)
    with pytest.raises(EraseFailed, match="no API key"):
        resolve_key(None, tmp_path)
    (tmp_path / "api-key").write_text("from-file\n")
    assert resolve_key(None, tmp_path) == "from-file"
    monkeypatch.setenv("FEEDBACKLOOP_API_KEY", "from-env")
    assert resolve_key(None, tmp_path) == "from-env"
    assert resolve_key("explicit", tmp_path) == "explicit"


@pytest.mark.parametrize("args, expected", [
    (["erase", "--key", "k"], "feedbackloop: give --customer or --author-email"),
    (["erase", "--customer", "acme", "--key", "k", "--url", "http://127.0.0.1:{port}"],
     "feedbackloop: ingest at http://127.0.0.1:{port} is unreachable"),
])
def test_errors_are_one_line_on_stderr(args: list[str], expected: str) -> None:
    port = str(free_port())
    result = CliRunner().invoke(app, [a.replace("{port}", port) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected.replace("{port}", port)), lines
