"""Loading the training and evaluation sets (see the package docstring for how each is made)."""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["URR_SENTIMENT_WEIGHT", "Example", "banking77", "kind_examples", "sentiment_examples", "url_reviews",
           "urr_reviews_by_stars", "urr_sentences", "written_sentiments"]

HERE = Path(__file__).parent
SEED = 7
#: Weight of one star-labelled URR review in the sentiment head's fit, against 1 for a written sentence.
URR_SENTIMENT_WEIGHT = 0.25
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    source: str
    weight: float = 1.0


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


def written_sentiments(*, mixed: bool = False) -> list[Example]:
    """``sentiment_written.tsv``: one sentence each, positive / neutral / negative (and ``mixed`` if asked)."""
    with (HERE / "sentiment_written.tsv").open(encoding="utf-8") as handle:
        return [Example(row["text"], row["sentiment"], f"written/{row['channel']}")
                for row in csv.DictReader(handle, delimiter="\t") if mixed or row["sentiment"] != "mixed"]


def urr_reviews_by_stars(datasets: Path) -> list[Example]:
    """URR reviews labelled from stars (weak labels: 1-2 negative, 3 neutral, 4-5 positive); source = review id."""
    return [Example(str(r["text"]), str(r["sentiment_from_stars"]), f"urr/{r['id']}", URR_SENTIMENT_WEIGHT)
            for r in url_reviews(datasets)]


def urr_sentences(datasets: Path, *, min_words: int = 3) -> list[Example]:
    """URR reviews split into sentences of at least ``min_words`` words, each with its review's star label."""
    return [Example(sentence, e.label, e.source) for e in urr_reviews_by_stars(datasets)
            for sentence in _SENTENCE_END.split(e.text) if len(sentence.split()) >= min_words]


def sentiment_examples(datasets: Path) -> list[Example]:
    """The sentiment head's training set: the written sentences (weight 1) and the star-labelled URR reviews
    (weight :data:`URR_SENTIMENT_WEIGHT`: many, real, but weakly labelled whole reviews). Three classes."""
    return written_sentiments() + urr_reviews_by_stars(datasets)
