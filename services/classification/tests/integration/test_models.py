"""The embedding model and the learned pipeline: bad input never crashes, and themes learn from examples."""

import json
import random
from collections import defaultdict

import numpy as np
import pytest

from classification.config import DEFAULT_TAXONOMY_FILE
from classification.domain.taxonomy import parse_taxonomy
from classification.model.classifier import Classifier, PreviewItem, build_theme_model, load_models, load_taxonomy
from classification.model.embedding import DIMENSIONS, Encoder
from feedbackloop_testing import handed_data


@pytest.fixture(scope="module")
def classifier(encoder: Encoder) -> Classifier:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_FILE)
    return Classifier(taxonomy, encoder=encoder, models=load_models(encoder, taxonomy))


def test_vectors_are_normalized_cached_and_in_order(encoder: Encoder) -> None:
    texts = ["the app crashes on start", "", "the app crashes on start", "invoice is wrong"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, DIMENSIONS)
    assert abs(float((vectors[0] ** 2).sum()) - 1) < 1e-4
    assert (vectors[0] == vectors[2]).all() and not (vectors[0] == vectors[3]).all()


def test_texts_the_tokenizer_reads_alike_share_one_cached_vector(encoder: Encoder) -> None:
    encoder.clear_cache()
    first = encoder.encode(["The  Export crashes\n"])[0]
    assert len(encoder._by_pieces) == 1
    again = encoder.encode(["the export crashes", "THE EXPORT CRASHES"])
    assert len(encoder._by_pieces) == 1 and len(encoder._cache) == 3
    assert np.array_equal(again[0], first) and np.array_equal(again[1], first)


def test_a_texts_vector_does_not_depend_on_the_texts_encoded_with_it(encoder: Encoder) -> None:
    # the int8 model scales its activations per run: batched, a vector would move with its neighbours, and a
    # replay would relabel unchanged text
    text = "The app crashes when I export a report to PDF"
    neighbours = [["ok"], ["Login is very slow since the last update, and it keeps getting worse every week now",
                           "Billing charged me twice this month, unacceptable!!! fix it", "dark mode please"],
                  [f"{text} again and again", "Das Passwort lässt sich nicht zurücksetzen"]]
    encoder.clear_cache()
    alone = encoder.encode([text])[0]
    for others in neighbours:
        encoder.clear_cache()
        assert np.array_equal(encoder.encode([*others, text])[-1], alone), others


def test_runs_in_parallel_give_each_text_the_vector_it_gets_alone(encoder: Encoder,
                                                                   pytestconfig: pytest.Config) -> None:
    parallel = Encoder(pytestconfig.rootpath / "var" / "models", threads=3)
    texts = [f"Export number {n} fails with error {n * 7}" + " and then the app freezes" * (n % 4) for n in range(40)]
    texts += texts[:5]  # repeats: encoded once, given to each
    encoder.clear_cache()
    together = parallel.encode(texts)
    assert all(np.array_equal(together[n], encoder.encode([text])[0]) for n, text in enumerate(texts))


@pytest.mark.parametrize("text", ["", "   ", "😀🔥👍" * 50, "x" * 100_000, "日本語のテキストです。アプリが落ちる",
                                  "ᚠᚢᚦᚨᚱᚲ ᚷᚹᚺᚾ", "The export fails. " * 6000])
def test_bad_input_is_labelled_never_raises(classifier: Classifier, text: str) -> None:
    labels = classifier.label(text)
    assert labels.kind in ("bug", "feature_request", "question", "complaint", "praise", "other")
    assert -1 <= labels.sentiment.score <= 1
    if not any(ch.isalnum() for ch in text):
        assert (labels.kind, labels.sentiment.label, labels.themes) == ("other", "neutral", [])


def test_typical_items_get_sensible_labels(classifier: Classifier) -> None:
    bug, request, question = classifier.label_many([
        PreviewItem("The app crashes every time I open the invoice page"),
        PreviewItem("Please add an option to export reports to Excel"),
        PreviewItem("How do I reset my password?"),
    ])
    assert (bug.kind, request.kind, question.kind) == ("bug", "feature_request", "question")
    assert bug.model.name == "feedbackloop-embedding" and bug.sentiment.label != "positive"
    assert any(t.id == "account.login" for t in question.themes)


def test_text_about_nothing_in_the_taxonomy_gets_no_forced_theme(classifier: Classifier) -> None:
    assert classifier.label("My grandmother makes the best apple pie in the village").themes == []


@pytest.mark.handed_data
def test_few_shot_examples_beat_names_alone_on_banking77(encoder: Encoder) -> None:
    rows = [json.loads(line) for line in handed_data("datasets/banking77-train/train.jsonl").open()]
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_intent[row["intent"]].append(row["text"])
    rng = random.Random(1)
    intents = sorted(by_intent)[:20]
    test = [(t, i) for i in intents for t in rng.sample(by_intent[i][5:], 10)]

    def accuracy(shots: int) -> float:
        document = {"version": f"b{shots}", "themes": [
            {"id": i.lower(), "name": i.replace("_", " "), "examples": by_intent[i][:shots]} for i in intents]}
        model = build_theme_model(encoder, parse_taxonomy(document))
        scores = model.scores(encoder.encode([t for t, _ in test]))
        hits = [model.theme_ids[int(s.argmax())] == i.lower() for s, (_, i) in zip(scores, test, strict=True)]
        return sum(hits) / len(hits)

    zero, few = accuracy(0), accuracy(5)
    assert few > zero + 0.05 and few >= 0.75, (zero, few)


def test_clear_problem_reports_come_out_negative(encoder: Encoder) -> None:
    from classification.config import ClassificationSettings
    from classification.model.classifier import build_classifier

    classifier = build_classifier(ClassificationSettings(), encoder)
    for text in ("Checkout crashes on iOS when I pay with Apple Pay",
                 "The export to CSV fails with error 500",
                 "Login doesn't work since the last update"):
        labels = classifier.label(text)
        assert (labels.kind, labels.sentiment.label) == ("bug", "negative"), (text, labels.sentiment)
        assert labels.sentiment.score <= -0.3
