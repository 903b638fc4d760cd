"""``make eval``: the classifier measured the way a customer meets it — on a domain it did not learn from.

    feedbackloop evaluate [--quick] [--only sentiment,kind,themes,corrections,speed]

For each task it prints, and writes to ``var/eval/eval.json``:

* **held-out domains** (leave one domain out): the head is fitted on every other labelled domain
  (:mod:`classification.tools.datasets`) and scored on the one left out — per-class precision / recall / F1,
  macro-F1, the confusion matrix, and the expected calibration error (ECE) of the label's confidence, with the
  temperature fitted on the other domains' out-of-domain predictions, never on the domain scored;
* **in-domain** figures separately (5-fold cross-validation inside a domain), and a lexicon / rules baseline;
* figures on ``written`` data (sentences this project's engineers wrote and labelled) only as in-domain checks:
  no headline number comes from them.

Sentiment is positive / neutral / negative (a rated sentence's mean cut at ±0.5). Kind is scored as the target is
stated: macro-F1 over bug / feature_request / question, on the items whose true kind is one of them (a prediction
of any other kind counts as a miss), with the six-kind table beside it. Themes: banking77 with 10 examples per
intent put through the same taxonomy path ``PUT /v1/taxonomy`` uses, top-1 over the rest. Corrections: accuracy on
a held-out slice before and after 50 corrections are taught through the examples memory.

If the encoder was fine-tuned on rated sentences (``make finetune``), the rated domains are not held out for the
encoder itself: their rows say so, and the held-out figure for them is the one measured with the packaged encoder
(``--model-dir`` of an unmodified export) — see the README.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from classification.domain.calibration import expected_calibration_error, fit_temperature
from classification.domain.heads import LinearHead, softmax
from classification.domain.kind import detect_kind
from classification.domain.sentiment import score_sentiment
from classification.model.embedding import PARALLEL_RUNS, Encoder
from classification.tools import datasets as data
from classification.tools.train import (
    Featurized,
    featurize_kind,
    featurize_sentiment,
    fit_kind,
    fit_sentiment,
)

__all__ = ["PARTS", "evaluate", "scores"]

ACTIONABLE = ["bug", "feature_request", "question"]
SENTIMENTS = ["positive", "neutral", "negative"]
#: What `--only` can name, in the order they run.
PARTS = ("sentiment", "kind", "themes", "corrections", "speed")
TARGETS = {"sentiment": 0.70, "kind/github": 0.75, "kind/forum": 0.70, "themes": 0.88, "ece": 0.05}


def scores(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Per-class P/R/F1, macro-F1 over ``labels``, accuracy and the confusion matrix (rows = truth)."""
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=list(labels),
                                                                     zero_division=0)
    every = sorted(set(truth) | set(predicted) | set(labels), key=lambda x: (x not in labels, x))
    return {
        "macro_f1": round(float(np.mean(f1)), 4),
        "accuracy": round(float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])), 4),
        "items": len(truth),
        "per_class": {label: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                              "f1": round(float(f), 4), "support": int(s)}
                      for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)},
        "confusion": {"labels": every,
                      "matrix": confusion_matrix(truth, predicted, labels=every).tolist()},
    }


def _print_scores(title: str, result: dict[str, Any], *, ece: float | None = None) -> None:
    print(f"\n{title}   ({result['items']} items)")
    print(f"  {'label':<18}{'precision':>10}{'recall':>9}{'f1':>8}{'support':>9}")
    for label, row in result["per_class"].items():
        print(f"  {label:<18}{row['precision']:>10.3f}{row['recall']:>9.3f}{row['f1']:>8.3f}{row['support']:>9}")
    extra = f"   ECE {ece:.3f}" if ece is not None else ""
    print(f"  macro-F1 {result['macro_f1']:.3f}   accuracy {result['accuracy']:.3f}{extra}")
    labels, matrix = result["confusion"]["labels"], result["confusion"]["matrix"]
    width = max(8, max(len(x) for x in labels) + 1)
    print("  confusion (rows: truth, columns: predicted)")
    print("  " + " " * width + "".join(f"{x[:width - 1]:>{width}}" for x in labels))
    for label, row in zip(labels, matrix, strict=True):
        if any(row):
            print(f"  {label:<{width}}" + "".join(f"{v:>{width}}" for v in row))


def _predict(head: LinearHead, rows: Featurized, temperature: float = 1.0) -> tuple[list[str], np.ndarray]:
    proba = softmax(head.logits(rows.features) / temperature)
    return [head.classes[i] for i in proba.argmax(axis=1)], proba.max(axis=1)


class LeaveOneOut:
    """One head per domain, fitted without it (fit once, read by every table)."""

    def __init__(self, rows: Featurized, fit: Any, domains: Sequence[str]) -> None:
        self.rows = rows
        self.domains = [d for d in domains if any(e.domain == d for e in rows.examples)]
        self.heads: dict[str, LinearHead] = {}
        self.logits: dict[str, np.ndarray] = {}
        self.classes = tuple(sorted(set(rows.labels)))
        for domain in self.domains:
            held = [e.domain == domain for e in rows.examples]
            head = fit(rows.where([not h for h in held]))
            z = head.logits(rows.where(held).features)
            full = np.full((len(z), len(self.classes)), -30.0, dtype=np.float32)
            for column, name in enumerate(head.classes):
                full[:, self.classes.index(name)] = z[:, column]
            self.heads[domain], self.logits[domain] = head, full

    def temperature_without(self, domain: str) -> float:
        """The temperature the other domains' out-of-domain predictions call for (``domain``'s own never count)."""
        others = [d for d in self.domains if d != domain]
        logits = np.vstack([self.logits[d] for d in others])
        truth = [self.classes.index(e.label) for d in others for e in self.rows.examples if e.domain == d]
        return fit_temperature(logits, truth)

    def score(self, domain: str, labels: Sequence[str], restrict: Sequence[str] | None = None) -> dict[str, Any]:
        test = self.rows.where([e.domain == domain for e in self.rows.examples])
        head = self.heads[domain]
        temperature = self.temperature_without(domain)
        predicted, confidence = _predict(head, test, temperature)
        gold = test.labels
        keep = [g in restrict for g in gold] if restrict else [True] * len(gold)
        result = scores([g for g, k in zip(gold, keep, strict=True) if k],
                        [p for p, k in zip(predicted, keep, strict=True) if k], labels)
        _, raw_confidence = _predict(head, test)
        hits = [p == g for p, g in zip(predicted, gold, strict=True)]
        result["ece"] = expected_calibration_error(confidence, hits)
        result["ece_uncalibrated"] = expected_calibration_error(raw_confidence, hits)
        result["temperature"] = temperature
        return result


def _in_domain(rows: Featurized, fit: Any, domain: str, labels: Sequence[str],
               restrict: Sequence[str] | None = None) -> dict[str, Any]:
    """5-fold cross-validation inside ``domain`` alone (stratified, fixed seed)."""
    inside = rows.where([e.domain == domain for e in rows.examples])
    gold = inside.labels
    predicted = [""] * len(gold)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for train_idx, test_idx in folds.split(inside.features, gold):
        mask = np.zeros(len(gold), dtype=bool)
        mask[train_idx] = True
        head = fit(inside.where(mask.tolist()))
        labels_out, _ = _predict(head, inside.where((~mask).tolist()))
        for index, label in zip(test_idx, labels_out, strict=True):
            predicted[int(index)] = label
    keep = [g in restrict for g in gold] if restrict else [True] * len(gold)
    return scores([g for g, k in zip(gold, keep, strict=True) if k],
                  [p for p, k in zip(predicted, keep, strict=True) if k], labels)


def _vader(text: str) -> str:
    label = score_sentiment(text).label
    return "neutral" if label == "mixed" else label


def eval_sentiment(encoder: Encoder, root: Path, fine_tuned_on: set[str]) -> dict[str, Any]:
    rows = featurize_sentiment(encoder, data.sentiment_examples(root))
    lodo = LeaveOneOut(rows, fit_sentiment, data.SENTIMENT_DOMAINS)
    results: dict[str, Any] = {"held_out": {}, "in_domain": {}, "vader": {}}
    for domain in data.SENTIMENT_DOMAINS:
        result = lodo.score(domain, SENTIMENTS)
        result["encoder_saw_labels"] = domain in fine_tuned_on
        section = "in_domain" if domain == "written" else "held_out"
        note = " (written here: not a headline)" if domain == "written" else ""
        note += " (the fine-tuned encoder saw this domain's labels)" if domain in fine_tuned_on else ""
        results[section][domain] = result
        _print_scores(f"sentiment — held out: {domain}{note}", result, ece=result["ece"])
        texts = [e for e in rows.examples if e.domain == domain]
        vader = scores([e.label for e in texts], [_vader(e.text) for e in texts], SENTIMENTS)
        results["vader"][domain] = vader["macro_f1"]
        print(f"  VADER alone on {domain}: macro-F1 {vader['macro_f1']:.3f}")
    for domain in data.RATED_DOMAINS:
        result = _in_domain(rows, fit_sentiment, domain, SENTIMENTS)
        results["in_domain"][f"{domain} (5-fold CV)"] = result
        print(f"\nsentiment — in domain, 5-fold CV inside {domain}: macro-F1 {result['macro_f1']:.3f}")
    return results


def eval_kind(encoder: Encoder, root: Path) -> dict[str, Any]:
    rows = featurize_kind(encoder, data.kind_examples(root))
    six = ["bug", "feature_request", "question", "complaint", "praise", "other"]
    lodo = LeaveOneOut(rows, fit_kind, data.KIND_DOMAINS)
    results: dict[str, Any] = {"held_out": {}, "in_domain": {}}
    forum = lodo.score("forum/firefox", ACTIONABLE, restrict=ACTIONABLE)
    results["held_out"]["forum/firefox"] = forum
    _print_scores("kind — held out: forum/firefox (items whose true kind is bug / feature_request / question)",
                  forum, ece=forum["ece"])
    everything = lodo.score("forum/firefox", six)
    results["held_out"]["forum/firefox, six kinds"] = everything
    _print_scores("kind — held out: forum/firefox, all six kinds", everything, ece=everything["ece"])
    written = lodo.score("written", six)
    results["in_domain"]["written (held out, written here: not a headline)"] = written
    _print_scores("kind — held out: written (written here: not a headline)", written, ece=written["ece"])
    inside = _in_domain(rows, fit_kind, "forum/firefox", ACTIONABLE, restrict=ACTIONABLE)
    results["in_domain"]["forum/firefox (5-fold CV)"] = inside
    print(f"\nkind — in domain, 5-fold CV inside forum/firefox: macro-F1 (bug/feature/question) "
          f"{inside['macro_f1']:.3f}")
    forum_examples = [e for e in rows.examples if e.domain == "forum/firefox" and e.label in ACTIONABLE]
    rules = scores([e.label for e in forum_examples],
                   [detect_kind(e.text, score_sentiment(e.text)).kind for e in forum_examples], ACTIONABLE)
    results["rules_alone_forum"] = rules["macro_f1"]
    print(f"  rules alone on forum/firefox: macro-F1 {rules['macro_f1']:.3f}")
    return results


def banking77_taxonomy(root: Path, shots: int = 10, seed: int = 0) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A taxonomy document of the 77 intents (ids lower-case, ``shots`` examples each) and the test items."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in data.banking77(root):
        by_intent[str(row["intent"])].append(str(row["text"]))
    rng = random.Random(seed)
    themes, test = [], []
    for intent, texts in sorted(by_intent.items()):
        texts = texts[:]
        rng.shuffle(texts)
        theme_id = re.sub(r"[^a-z0-9_.-]+", "-", intent.lower()).strip("-")
        themes.append({"id": theme_id, "name": intent.replace("_", " "), "examples": texts[:shots]})
        test += [(t, theme_id) for t in texts[shots:]]
    return {"version": f"banking77-{shots}shot", "themes": themes}, test


def eval_themes(encoder: Encoder, root: Path, quick: bool) -> dict[str, Any]:
    """Top-1 through the classifier's own taxonomy path (what ``PUT /v1/taxonomy`` puts in force)."""
    from classification.config import ClassificationSettings
    from classification.domain.taxonomy import parse_taxonomy
    from classification.model.classifier import PreviewItem, build_classifier

    document, test = banking77_taxonomy(root)
    if quick:
        test = random.Random(1).sample(test, 1500)
    classifier = build_classifier(ClassificationSettings(), encoder).with_taxonomy(parse_taxonomy(document))
    predicted: list[str] = []
    for start in range(0, len(test), 100):
        for labels in classifier.label_many([PreviewItem(t) for t, _ in test[start:start + 100]]):
            predicted.append(labels.themes[0].id if labels.themes else "")
    truth = [intent for _, intent in test]
    top1 = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    unassigned = predicted.count("")
    print(f"\nthemes — banking77, 10 examples per intent through the taxonomy path: top-1 {top1:.3f} "
          f"({len(test)} test items; {unassigned} got no theme)")
    return {"top1": round(top1, 4), "items": len(test), "no_theme": unassigned,
            "macro_f1": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 4)}


def eval_corrections(encoder: Encoder, root: Path, corrections: int = 50) -> dict[str, Any]:
    """Kind on the forum sentences with a head that never saw the forum: accuracy on a held-out slice, before and
    after ``corrections`` random forum sentences are corrected (taught through the examples memory)."""
    from classification.domain.memory import ExampleMemory, LearnedExample
    from classification.domain.pipeline import Models, classify
    from classification.domain.taxonomy import parse_taxonomy

    rows = featurize_kind(encoder, data.kind_examples(root))
    head = fit_kind(rows.where([e.domain != "forum/firefox" for e in rows.examples]))
    forum = [e for e in rows.examples if e.domain == "forum/firefox"]
    rng = random.Random(3)
    rng.shuffle(forum)
    taught, slice_ = forum[:corrections], forum[corrections:]
    taxonomy = parse_taxonomy({"version": "one", "themes": [{"id": "general", "name": "General"}]})
    vectors = encoder.encode([e.text for e in slice_])

    def accuracy(memory: ExampleMemory | None) -> float:
        models = Models(embedding=encoder.name, kind=head, memory=memory)
        hits = [classify(e.text, taxonomy=taxonomy, vector=vectors[n], models=models).kind == e.label
                for n, e in enumerate(slice_)]
        return float(np.mean(hits))

    before = accuracy(None)
    learned = [LearnedExample(text=e.text, kind=e.label) for e in taught]
    after = accuracy(ExampleMemory.build(learned, encoder.encode([e.text for e in taught])))
    print(f"\ncorrections — kind accuracy on {len(slice_)} held-out forum sentences: {before:.3f} before, "
          f"{after:.3f} after {corrections} corrections")
    return {"before": round(before, 4), "after": round(after, 4), "corrections": corrections,
            "slice": len(slice_)}


def eval_speed(encoder: Encoder, root: Path) -> dict[str, Any]:
    from classification.config import ClassificationSettings
    from classification.model.classifier import PreviewItem, build_classifier

    classifier = build_classifier(ClassificationSettings(), encoder)
    texts = [str(r["text"]) for r in data.url_reviews(root)]
    encoder.clear_cache()
    started = time.perf_counter()
    for start in range(0, len(texts), 64):
        classifier.label_many([PreviewItem(t) for t in texts[start:start + 64]])
    rate = len(texts) / (time.perf_counter() - started)
    print(f"\nspeed — whole pipeline over {len(texts)} app reviews (several sentences each), batches of 64, "
          f"cold cache: {rate:.0f} items/s")
    return {"items_per_s": round(rate, 1), "items": len(texts)}


def _summary(results: dict[str, Any]) -> None:
    print("\n" + "=" * 100 + "\nheld-out summary (make eval)\n")
    print(f"{'task':<58}{'held-out':>10}{'target':>10}   {'ECE':>6}")
    sentiment = results.get("sentiment", {}).get("held_out", {})
    for domain, result in sentiment.items():
        flag = " *" if result.get("encoder_saw_labels") else ""
        print(f"{'sentiment macro-F1, ' + domain + flag:<58}{result['macro_f1']:>10.3f}"
              f"{TARGETS['sentiment']:>10.2f}   {result['ece']:>6.3f}")
    kind = results.get("kind", {}).get("held_out", {}).get("forum/firefox")
    if kind:
        print(f"{'kind macro-F1 (bug/feature/question), forum/firefox':<58}{kind['macro_f1']:>10.3f}"
              f"{TARGETS['kind/forum']:>10.2f}   {kind['ece']:>6.3f}")
    themes = results.get("themes")
    if themes:
        print(f"{'themes top-1, banking77 10-shot via the taxonomy path':<58}{themes['top1']:>10.3f}"
              f"{TARGETS['themes']:>10.2f}")
    corrections = results.get("corrections")
    if corrections:
        print(f"{'kind accuracy, held-out forum slice, after 50 corrections':<58}{corrections['after']:>10.3f}"
              f"{'':>10}   (before {corrections['before']:.3f})")
    if any(r.get("encoder_saw_labels") for r in sentiment.values()):
        print("\n* the encoder was fine-tuned on this domain's ratings: not held out for the encoder")
    print("(GitHub issues, the other kind target, are not among the handed data: no held-out figure here.)")


def evaluate(root: Path, *, model_dir: Path = Path("var/models"), parts: Sequence[str] = PARTS, quick: bool = False,
             out: Path = Path("var/eval/eval.json")) -> dict[str, Any]:
    """Run the ``parts`` asked for on the datasets under ``root``, print each and the summary, write ``out``."""
    encoder = Encoder(model_dir, threads=PARALLEL_RUNS)
    fine_tuned_on = set(encoder.trained_on)
    results: dict[str, Any] = {"encoder": encoder.name, "fine_tuned_on": sorted(fine_tuned_on)}
    if "sentiment" in parts:
        results["sentiment"] = eval_sentiment(encoder, root, fine_tuned_on)
    if "kind" in parts:
        results["kind"] = eval_kind(encoder, root)
    if "themes" in parts:
        results["themes"] = eval_themes(encoder, root, quick)
    if "corrections" in parts:
        results["corrections"] = eval_corrections(encoder, root)
    if "speed" in parts:
        results["speed"] = eval_speed(encoder, root)
    _summary(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")
    return results
