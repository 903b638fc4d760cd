"""classification's commands: usage errors exit 2 (typer), a user's error is one line on stderr and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from classification.cli import commands


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(commands, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [["evaluate", "--only", "sentiment,bogus"], ["finetune"],
                                  ["finetune", "--out", "x.safetensors", "--domains", "rated/nope"],
                                  ["bench-classification", "--repeat", "0"], ["train", "--no-such-option"]])
def test_a_usage_error_exits_2(args: list[str]) -> None:
    code, _ = _run(*args)
    assert code == 2


def test_missing_datasets_are_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEEDBACKLOOP_HANDED_DIR", str(tmp_path / "nowhere"))
    for command in ("train", "evaluate", "bench-classification"):
        code, output = _run(command)
        assert code == 1 and output.count("\n") == 1, output
        assert output.startswith("feedbackloop: ") and "datasets is missing" in output
    code, output = _run("train", "--datasets", str(tmp_path / "nope"))
    assert code == 1 and "is not a folder of datasets" in output


def test_export_with_missing_weights_is_one_line(tmp_path: Path) -> None:
    code, output = _run("export-models", str(tmp_path / "models"), "--weights", str(tmp_path / "none.safetensors"))
    assert (code, output.strip()) == (1, f"feedbackloop: export-models: {tmp_path / 'none.safetensors'} is not a file")
    assert not (tmp_path / "models").exists()
