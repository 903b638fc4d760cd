"""Loading the training and evaluation sets (see the package docstring for how each is made)."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Example", "banking77", "kind_examples", "sentiment_examples", "url_reviews"]

HERE = Path(__file__).parent
SEED = 7


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    source: str


def _jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def url_reviews(datasets: Path) -> list[dict[str, object]]:
    return _jsonl(datasets / "app-reviews-urr" / "reviews.jsonl")


def banking77(datasets: Path) -> list[dict[str, object]]:
    return _jsonl(datasets / "banking77-train" / "train.jsonl")


def written_kinds() -> list[Example]:
    with (HERE / "kind_written.tsv").open(encoding="utf-8") as handle:
        return [Example(row["text"], row["kind"], f"written/{row['channel']}")
                for row in csv.DictReader(handle, delimiter="\t")]


def kind_examples(datasets: Path, *, per_source: int = 60) -> list[Example]:
    """The written set plus weak labels assembled from the handed datasets (package docstring)."""
    rng = random.Random(SEED)
    questions = [str(r["text"]) for r in banking77(datasets) if str(r["text"]).strip().endswith("?")]
    reviews = url_reviews(datasets)
    bugs = [str(r["text"]) for r in reviews if "ERROR" in r["topics"] and int(r["stars"]) <= 3]  # type: ignore[operator, call-overload]
    praise = [str(r["text"]) for r in reviews if int(r["stars"]) == 5  # type: ignore[call-overload]
              and not {"ERROR", "BATTERY", "MEMORY", "PERFORMANCE"} & set(r["topics"])]  # type: ignore[call-overload]
    assembled = ([Example(t, "question", "banking77") for t in rng.sample(questions, per_source)]
                 + [Example(t, "bug", "urr") for t in rng.sample(bugs, min(per_source, len(bugs)))]
                 + [Example(t, "praise", "urr") for t in rng.sample(praise, per_source)])
    return written_kinds() + assembled


def sentiment_examples(datasets: Path) -> list[Example]:
    """URR reviews by stars, plus neutral factual texts (package docstring)."""
    rng = random.Random(SEED)
    examples = [Example(str(r["text"]), str(r["sentiment_from_stars"]), "urr") for r in url_reviews(datasets)]
    examples += [Example(e.text, "neutral", e.source) for e in written_kinds() if e.label in ("question", "other")]
    queries = [str(r["text"]) for r in banking77(datasets)]
    examples += [Example(t, "neutral", "banking77") for t in rng.sample(queries, 150)]
    return examples
