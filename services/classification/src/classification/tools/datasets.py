"""The labelled data the classifier learns from and is measured on, each example tagged with its **domain**.

Real data nobody here wrote, read from ``../shared/datasets/`` (never copied into the project):

========================  ================================================  ===========================================
domain                    what                                              labels
========================  ================================================  ===========================================
``rated/tweets``          4,200 tweets                                      sentiment: mean of 20 raters, -4..+4
``rated/movies``          10,605 movie-review snippets                      idem
``rated/editorials``      5,190 New York Times editorial snippets            idem
``reviews/app``           1,584 Google Play reviews (URR golden set)        sentiment from stars (weak: 1-2 / 3 / 4-5)
``forum/firefox``         1,696 Firefox support-forum sentences             kind, by hand (bug, question, feature …)
``banking77``             10,003 bank customer queries                      77 intents (themes)
========================  ================================================  ===========================================

Sentiment labels are cut from a mean rating as the datasets' README does: positive ≥ 0.5, negative ≤ -0.5,
otherwise neutral. Written here, by this project's engineers (``tools/written/``): ``written`` sentiment sentences
(921) and kind texts (170) — in-domain figures only, never a headline (one hand wrote and labelled them).

Weak kind labels assembled from the real sets, to widen the kind head's domain (stated heuristics, fixed seed):
banking77 queries ending in "?" → question; URR reviews tagged ERROR with ≤ 3 stars → bug; 5-star URR reviews with
no problem topic → praise (domains ``weak/banking77`` and ``weak/app-reviews``).
"""

from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KIND_DOMAINS",
    "RATED_DOMAINS",
    "SENTIMENT_DOMAINS",
    "Example",
    "banking77",
    "default_root",
    "kind_examples",
    "rated_sentences",
    "sentiment_examples",
    "sentiment_label",
    "unlabelled_feedback",
    "url_reviews",
    "written_kinds",
    "written_sentiments",
]

WRITTEN = Path(__file__).parent / "written"
SEED = 7
RATED_FILES = {"rated/tweets": "tweets", "rated/movies": "movieReviewSnippets",
               "rated/editorials": "nytEditorialSnippets"}
RATED_DOMAINS = tuple(RATED_FILES)
SENTIMENT_DOMAINS = (*RATED_DOMAINS, "reviews/app", "written")
KIND_DOMAINS = ("forum/firefox", "written", "weak/banking77", "weak/app-reviews")
#: Weight of a star-labelled app review in a sentiment fit (many, real, but weakly labelled whole reviews).
APP_REVIEW_WEIGHT = 0.25
#: Weight of a weakly labelled kind example (heuristic labels) against 1 for a labelled one.
WEAK_KIND_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    domain: str
    weight: float = 1.0
    rating: float = 0.0     # the raters' mean (-4..+4) where there is one
    group: str = ""         # examples of one group (a review's sentences) never straddle a train/test split


def default_root() -> Path:
    """``FEEDBACKLOOP_HANDED_DIR``/datasets, else ``../shared/datasets`` beside the checkout; FileNotFoundError
    (one line naming the folder) when it is not there."""
    base = os.environ.get("FEEDBACKLOOP_HANDED_DIR")
    root = Path(base) if base else Path(__file__).resolve().parents[6] / "shared"
    path = root / "datasets"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the handed data (../shared/) must sit beside the checkout")
    return path


def _jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sentiment_label(rating: float) -> str:
    """The datasets' three-way cut of a mean rating on -4..+4."""
    return "positive" if rating >= 0.5 else "negative" if rating <= -0.5 else "neutral"


def rated_sentences(root: Path, domain: str) -> list[Example]:
    path = root / "sentiment-rated-sentences" / "original" / f"{RATED_FILES[domain]}_GroundTruth.txt"
    examples = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[2].strip():
                rating = float(parts[1])
                examples.append(Example(parts[2], sentiment_label(rating), domain, rating=rating))
    return examples


def url_reviews(root: Path) -> list[dict[str, object]]:
    return _jsonl(root / "app-reviews-urr" / "reviews.jsonl")


def banking77(root: Path) -> list[dict[str, object]]:
    return _jsonl(root / "banking77-train" / "train.jsonl")


def forum_sentences(root: Path) -> list[Example]:
    return [Example(str(r["text"]).strip(), str(r["kind"]), "forum/firefox")
            for r in _jsonl(root / "forum-feedback-firefox" / "sentences.jsonl") if str(r["text"]).strip()]


def written_sentiments(*, mixed: bool = False) -> list[Example]:
    """``written/sentiments.tsv``: one sentence each, positive / neutral / negative (and ``mixed`` if asked)."""
    with (WRITTEN / "sentiments.tsv").open(encoding="utf-8") as handle:
        return [Example(row["text"], row["sentiment"], "written", group=f"written/{row['channel']}")
                for row in csv.DictReader(handle, delimiter="\t") if mixed or row["sentiment"] != "mixed"]


def written_kinds() -> list[Example]:
    with (WRITTEN / "kinds.tsv").open(encoding="utf-8") as handle:
        return [Example(row["text"], row["kind"], "written", group=f"written/{row['channel']}")
                for row in csv.DictReader(handle, delimiter="\t")]


def app_reviews_by_stars(root: Path) -> list[Example]:
    return [Example(str(r["text"]), str(r["sentiment_from_stars"]), "reviews/app", APP_REVIEW_WEIGHT,
                    group=str(r["id"])) for r in url_reviews(root)]


def sentiment_examples(root: Path, domains: tuple[str, ...] = SENTIMENT_DOMAINS) -> list[Example]:
    """Every sentiment example of ``domains`` (three classes)."""
    examples: list[Example] = []
    for domain in domains:
        if domain in RATED_FILES:
            examples += rated_sentences(root, domain)
        elif domain == "reviews/app":
            examples += app_reviews_by_stars(root)
        elif domain == "written":
            examples += written_sentiments()
        else:
            raise ValueError(f"unknown sentiment domain {domain!r}")
    return examples


def kind_examples(root: Path, domains: tuple[str, ...] = KIND_DOMAINS, *, per_source: int = 60) -> list[Example]:
    """Every kind example of ``domains`` (six kinds; see the module docstring for the weak ones)."""
    rng = random.Random(SEED)
    examples: list[Example] = []
    for domain in domains:
        if domain == "forum/firefox":
            examples += forum_sentences(root)
        elif domain == "written":
            examples += written_kinds()
        elif domain == "weak/banking77":
            questions = [str(r["text"]) for r in banking77(root) if str(r["text"]).strip().endswith("?")]
            examples += [Example(t, "question", domain, WEAK_KIND_WEIGHT) for t in rng.sample(questions, per_source)]
        elif domain == "weak/app-reviews":
            reviews = url_reviews(root)
            bugs = [str(r["text"]) for r in reviews
                    if "ERROR" in r["topics"] and int(r["stars"]) <= 3]  # type: ignore[operator, call-overload]
            praise = [str(r["text"]) for r in reviews if int(r["stars"]) == 5  # type: ignore[call-overload]
                      and not {"ERROR", "BATTERY", "MEMORY", "PERFORMANCE"} & set(r["topics"])]  # type: ignore[call-overload]
            examples += [Example(t, "bug", domain, WEAK_KIND_WEIGHT)
                         for t in rng.sample(bugs, min(per_source, len(bugs)))]
            examples += [Example(t, "praise", domain, WEAK_KIND_WEIGHT) for t in rng.sample(praise, per_source)]
        else:
            raise ValueError(f"unknown kind domain {domain!r}")
    return examples


def unlabelled_feedback(root: Path, per_source: int = 3000) -> list[str]:
    """Feedback-like texts with no label used (banking77 queries, app reviews, forum sentences): what the
    fine-tuning's meaning-kept term holds steady."""
    rng = random.Random(SEED)
    texts = [str(r["text"]) for r in banking77(root)]
    texts = rng.sample(texts, min(per_source, len(texts)))
    texts += [str(r["text"]) for r in url_reviews(root)]
    texts += [e.text for e in forum_sentences(root)]
    return texts
