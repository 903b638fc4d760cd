"""The model export runs in its own process, and the shipped sentiment head labels clear sentences right.

The export test runs ``python -m classification.cli export-models`` for real (~1 min on 2 shared cores): a fresh
process builds an :class:`Encoder` on an empty model folder, which exports through the subprocess, and reports
its vectors and which heavy modules it imported.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classification.config import DEFAULT_TAXONOMY_FILE
from classification.model.classifier import Classifier, PreviewItem, load_models, load_taxonomy
from classification.model.embedding import Encoder, ModelUnavailable

TEXTS = ["The export button does nothing since the update", "Love it!", "",
         "How do I change the billing address on our account? " * 20]

_CHILD = """
import json, sys
from pathlib import Path
from classification.config import ClassificationSettings
from classification.model.classifier import PreviewItem, build_classifier
classifier = build_classifier(ClassificationSettings(model_dir=Path(sys.argv[1])))
texts = json.loads(sys.argv[2])
vectors = classifier.encoder.encode(texts).tolist()
classifier.label_many([PreviewItem(t) for t in texts])
heavy = sorted(m for m in ("torch", "sklearn", "scipy", "transformers", "sentence_transformers") if m in sys.modules)
print(json.dumps({"vectors": vectors, "heavy": heavy}))
"""


def test_a_missing_model_is_exported_in_a_subprocess_and_the_service_imports_no_torch_or_sklearn(
        tmp_path: Path, encoder: Encoder) -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "models"), json.dumps(TEXTS)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []  # the export imported torch in its own process, never in this one
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["minilm-int8.onnx", "minilm.onnx"]
    fresh = np.array(report["vectors"], dtype=np.float32)
    shipped = encoder.encode(TEXTS)
    # Same weights, same export: the vectors agree with the session's model (int8 scales may move a hair).
    assert fresh.shape == shipped.shape
    assert float((fresh * shipped).sum(axis=1).min()) > 0.999


def test_an_export_that_cannot_run_is_a_clear_model_unavailable(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(ModelUnavailable, match="cannot export"):
        Encoder(blocked / "models")


@pytest.fixture(scope="module")
def classifier(encoder: Encoder) -> Classifier:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_FILE)
    return Classifier(taxonomy, encoder=encoder, models=load_models(encoder, taxonomy))


@pytest.mark.parametrize(("text", "expected"), [
    ("The sound quality is excellent and the battery lasts for days.", "positive"),
    ("Not bad at all, I use it every morning.", "positive"),
    ("The box includes a charger, a cable and a short manual.", "neutral"),
    ("Is there a way to export my notes to PDF?", "neutral"),
    ("It's ok, does what it says.", "neutral"),
    ("Stopped charging after two weeks, a waste of money.", "negative"),
    ("The battery is terrible, it dies before lunch.", "negative"),
    ("The left earbud makes no sound since yesterday.", "negative"),
])
def test_the_shipped_sentiment_head_labels_clear_sentences(classifier: Classifier, text: str,
                                                           expected: str) -> None:
    assert classifier.models is not None and classifier.models.sentiment is not None
    assert classifier.models.sentiment.classes == ("negative", "neutral", "positive")
    labels = classifier.label_many([PreviewItem(text)])[0]
    assert labels.sentiment.label == expected, (text, labels.sentiment)
    assert (labels.sentiment.score > 0) == (expected == "positive") or expected == "neutral"


def test_strong_praise_and_strong_blame_in_one_text_stay_mixed(classifier: Classifier) -> None:
    labels = classifier.label("Fantastic support team, but the billing system is a horrible, awful mess.")
    assert labels.sentiment.label == "mixed"
