"""classification's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point.

Its commands (top-level ``feedbackloop <command>``): ``reclassify`` (the service's stored history through the
taxonomy and models in force) and the tools (:mod:`classification.tools`) — ``evaluate``, ``train``, ``finetune``,
``export-models``, ``bench-classification``. Each imports its module when run, so the CLI starts without
scikit-learn or PyTorch. A usage error exits 2 (typer); a user error (no datasets, no model, no scikit-learn) is one
line on stderr and exit 1. ``python -m classification.cli export-models DIR`` is how the service exports its model
in a subprocess (:func:`classification.model.embedding.export_in_subprocess`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from classification.config import ClassificationSettings
from classification.model import HEADS_FILE
from classification.store import MIGRATIONS
from feedbackloop.cli.common import fail, parse_since
from feedbackloop.plugins import ServicePlugin

__all__ = ["commands", "plugin"]

commands = typer.Typer()

DatasetsOption = Annotated[Path | None, typer.Option(
    help="The handed datasets folder (default: $FEEDBACKLOOP_HANDED_DIR/datasets, else ../shared/datasets)")]
ModelDirOption = Annotated[Path, typer.Option(help="The ONNX encoder's folder (as CLASSIFICATION_MODEL_DIR)")]


@commands.command()
def reclassify(
    since: Annotated[str, typer.Option(help="Items first labelled since: 2h, 7d, or an ISO time")] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff and agreement; publish nothing")] = False,
    include_corrected: Annotated[
        bool, typer.Option("--include-corrected", help="Also re-label the fields people corrected")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Items per page (one transaction)")] = 256,
    state_dir: Annotated[Path, typer.Option(help="Checkpoints of unfinished runs")] = Path("var/reclassify"),
) -> None:
    """Re-label classification's stored history with the taxonomy and models in force (its store:
    CLASSIFICATION_DATABASE_URL); only changed items are re-published, as new revisions, through its outbox."""
    from classification.service.reclassify import reclassify as run_reclassify

    try:
        report = asyncio.run(run_reclassify(ClassificationSettings(), parse_since(since), dry_run=dry_run,
                                            include_corrected=include_corrected, batch_size=batch_size,
                                            state_dir=state_dir))
    except Exception as exc:  # one line, never a traceback: the store, the schema or the model
        fail(f"reclassify: {exc or type(exc).__name__}")
    print(report.summary())


def _datasets(given: Path | None) -> Path:
    from classification.tools.datasets import default_root

    if given is not None:
        if not given.is_dir():
            fail(f"{given} is not a folder of datasets")
        return given
    try:
        return default_root()
    except FileNotFoundError as exc:
        fail(str(exc))


def _training_tool(name: str) -> Any:
    """``classification.tools.<name>``, or one line saying how to install what it needs (the ``train`` extra)."""
    import importlib

    try:
        return importlib.import_module(f"classification.tools.{name}")
    except ImportError as exc:
        fail(f"{name} needs scikit-learn (pip install 'feedbackloop-classification[train]'): {exc}")


def _parts(value: str) -> list[str]:
    from classification.tools.evaluate import PARTS

    parts = [p.strip() for p in value.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise typer.BadParameter(f"name some of {', '.join(PARTS)}; not {', '.join(unknown) or 'nothing'}",
                                 param_hint="--only")
    return parts


@commands.command()
def evaluate(
    quick: Annotated[bool, typer.Option("--quick", help="1,500 banking77 test items instead of all")] = False,
    only: Annotated[str, typer.Option(help="Comma-separated parts to run")] = "sentiment,kind,themes,corrections,speed",
    model_dir: ModelDirOption = Path("var/models"),
    datasets: DatasetsOption = None,
    out: Annotated[Path, typer.Option(help="Where the figures are written (JSON)")] = Path("var/eval/eval.json"),
) -> None:
    """`make eval`: classification on domains it did not learn from: per-class P/R/F1, macro-F1, confusion, ECE."""
    parts = _parts(only)
    root = _datasets(datasets)
    tool = _training_tool("evaluate")
    try:
        tool.evaluate(root, model_dir=model_dir, parts=parts, quick=quick, out=out)
    except (OSError, RuntimeError) as exc:  # a dataset file or the model missing
        fail(f"evaluate: {exc}")


@commands.command()
def train(
    model_dir: ModelDirOption = Path("var/models"),
    datasets: DatasetsOption = None,
    out: Annotated[Path, typer.Option(help="The heads file written")] = HEADS_FILE,
) -> None:
    """`make train`: refit and calibrate the kind and sentiment heads from the handed datasets."""
    root = _datasets(datasets)
    tool = _training_tool("train")
    try:
        tool.train(root, model_dir=model_dir, out=out)
    except (OSError, RuntimeError) as exc:
        fail(f"train: {exc}")


@commands.command()
def finetune(
    out: Annotated[Path, typer.Option(help="The fine-tuned weights (safetensors) written")],
    datasets: DatasetsOption = None,
    domains: Annotated[str, typer.Option(help="Rated domains to learn from (comma-separated)")] = (
        "rated/tweets,rated/movies,rated/editorials"),
    written: Annotated[bool, typer.Option(help="Learn from the written sentences too")] = True,
    epochs: Annotated[float, typer.Option(min=0.01)] = 1.0,
    batch: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[float, typer.Option(min=0.0)] = 3e-5,
    keep: Annotated[float, typer.Option(min=0.0, help="Weight of the meaning-kept term")] = 4.0,
    max_tokens: Annotated[int, typer.Option(min=8, max=512)] = 64,
    seed: int = 7,
) -> None:
    """`make finetune` (experiment): fine-tune MiniLM on the rated sentences; needs PyTorch (.venv-train)."""
    from classification.tools.datasets import RATED_DOMAINS

    chosen = [d.strip() for d in domains.split(",") if d.strip()]
    if not set(chosen) <= set(RATED_DOMAINS):
        raise typer.BadParameter(f"one or more of {', '.join(RATED_DOMAINS)}", param_hint="--domains")
    root = _datasets(datasets)
    from classification.tools.finetune import finetune as run_finetune

    try:
        run_finetune(root, out, domains=chosen, written=written, epochs=epochs, batch=batch, lr=lr, keep=keep,
                     max_tokens=max_tokens, seed=seed)
    except ImportError as exc:
        fail(f"finetune needs PyTorch and transformers (make finetune installs them in .venv-train): {exc}")
    except (OSError, RuntimeError) as exc:
        fail(f"finetune: {exc}")


@commands.command("export-models")
def export_models(
    model_dir: Annotated[Path, typer.Argument(help="Folder written (minilm.onnx, minilm-int8.onnx)")] = Path(
        "var/models"),
    weights: Annotated[Path | None, typer.Option(
        help="A safetensors file of the same architecture (a fine-tuned copy) instead of the packaged weights")] = None,
) -> None:
    """`make models`: build the ONNX encoder (fp32 + int8) from the packaged MiniLM weights, without PyTorch."""
    from classification.tools.export import export_onnx

    if weights is not None and not weights.is_file():
        fail(f"export-models: {weights} is not a file")
    try:
        written = export_onnx(model_dir, weights)
    except Exception as exc:  # one line, never a traceback: the package, the weights or the folder
        fail(f"export-models: {exc or type(exc).__name__}")
    for path in written:
        print(path)


@commands.command("bench-classification")
def bench_classification(
    repeat: Annotated[int, typer.Option(min=1, help="Runs of each configuration (best and median shown)")] = 3,
    batch: Annotated[int, typer.Option(min=1, max=1024, help="Items per classifier call")] = 64,
    datasets: DatasetsOption = None,
    out: Annotated[Path, typer.Option(help="Where the figures are written (JSON)")] = Path(
        "var/bench/classification.json"),
) -> None:
    """`make bench-classification`: items/s of the whole pipeline with batching, and the process's RSS."""
    root = _datasets(datasets)
    from classification.tools.benchmark import benchmark

    try:
        benchmark(root, repeat=repeat, batch=batch, out=out)
    except (OSError, RuntimeError) as exc:
        fail(f"bench-classification: {exc}")


plugin = ServicePlugin(
    name="classification",
    settings=ClassificationSettings,
    app_factory="classification.main:create_app",
    migrations=MIGRATIONS,
    commands=commands,
)


if __name__ == "__main__":  # `python -m classification.cli export-models DIR`: the service's export subprocess
    commands()
