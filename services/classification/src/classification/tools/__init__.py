"""Commands that are not the service: datasets, training, fine-tuning, evaluation, benchmarks.

They run from a developer's shell or CI (``make train``, ``make eval``, ``make bench-classification``) and may import
scikit-learn (the ``train`` extra) or, for :mod:`classification.tools.finetune` only, PyTorch (``.venv-train``). A
running service imports none of this package.
"""
