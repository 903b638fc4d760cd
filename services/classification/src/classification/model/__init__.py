"""The model runtime: what turns text into vectors and labels in a running service (not pure: it loads files).

* :mod:`classification.model.embedding` — :class:`Encoder`, all-MiniLM-L6-v2 under ONNX Runtime (the ONNX file is
  exported on first use by ``python -m classification.cli export-models``, in a subprocess);
* :mod:`classification.model.classifier` — :class:`Classifier`, the pure pipeline (:mod:`classification.domain`)
  bound to a taxonomy, the encoder, the shipped heads and the examples people taught; built once at start;
* ``heads.npz`` — the fitted kind and sentiment heads (:data:`HEADS_FILE`), made by ``feedbackloop train``.

The maths itself (heads, calibration, theme matching, the examples memory) is in :mod:`classification.domain`.
"""

from pathlib import Path

HEADS_FILE = Path(__file__).parent / "heads.npz"
