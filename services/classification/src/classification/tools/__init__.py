"""Commands that are not the service: datasets, training, fine-tuning, evaluation, the model export, benchmarks.

Each is a ``feedbackloop`` command registered in :mod:`classification.cli` (``evaluate``, ``train``, ``finetune``,
``export-models``, ``bench-classification``; ``make eval``, ``make train`` … call them). They run from a developer's
shell or CI and may import scikit-learn (the ``train`` extra) or, for :mod:`classification.tools.finetune` only,
PyTorch (``.venv-train``). A running service imports none of this package: when its ONNX model is missing it runs
:mod:`classification.tools.export` in a subprocess.
"""
