"""The ``feedbackloop`` command's own surface: ``--version`` and usage errors (exit 2, one line on stderr)."""

from importlib.metadata import version

from typer.testing import CliRunner

from feedbackloop.cli.main import app


def test_version_prints_the_installed_distributions_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"feedbackloop {version('feedbackloop-shared')}\n"
    assert result.stderr == ""


def test_version_wins_over_a_command() -> None:
    result = CliRunner().invoke(app, ["--version", "migrate", "nope"])
    assert (result.exit_code, result.stdout.split()[0]) == (0, "feedbackloop")


def test_migrate_an_unknown_service_is_a_one_line_usage_error() -> None:
    result = CliRunner().invoke(app, ["migrate", "billing"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("feedbackloop: unknown service 'billing'") and "ingest" in lines[0]
