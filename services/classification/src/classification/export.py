"""Export the packaged all-MiniLM-L6-v2 weights to ONNX (float32 and int8): the only code that imports PyTorch.

    .venv/bin/python -m classification.export [MODEL_DIR]      # default var/models

Run in its own process: :class:`classification.embedding.Encoder` starts it as a subprocess when the ONNX file is
missing (or run it ahead of time, e.g. in an image build), so a running service never imports torch (importing
it alone costs ~420 MB of memory that the process would keep).

Steps (about 10-20 s): the package's weights → ``torch.onnx.export`` (opset 17, dynamic batch and length) →
``minilm.onnx``; int8 dynamic quantization of it → ``minilm-int8.onnx``. (Fusing attention / LayerNorm / GELU
ahead of time with ONNX Runtime's transformer optimizer was measured and gave no speed-up over the session's own
graph optimizations; it is not done.) Each file is written under a temporary name and renamed, so a crash never leaves a
half-written model. Exit status 0 and the two paths on stdout on success; non-zero with the reason on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["FP32_FILE", "INT8_FILE", "export_onnx", "main"]

FP32_FILE = "minilm.onnx"
INT8_FILE = "minilm-int8.onnx"


def export_onnx(target_dir: Path) -> tuple[Path, Path]:
    """Export the packaged weights to ``target_dir/minilm.onnx`` and an int8 copy; returns both paths.

    Imports PyTorch and transformers (offline: ``HF_HUB_OFFLINE=1``). Raises whatever the export raises (a missing
    package, a full disk).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    from classification.embedding import packaged_model_dir

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
    fp32, int8 = target_dir / FP32_FILE, target_dir / INT8_FILE
    tmp32, tmp8 = target_dir / f".{FP32_FILE}.{os.getpid()}", target_dir / f".{INT8_FILE}.{os.getpid()}"
    with torch.no_grad():
        torch.onnx.export(_Hidden(bert), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(tmp32),
                          input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(tmp32), str(tmp8), weight_type=QuantType.QInt8)
    tmp32.replace(fp32)
    tmp8.replace(int8)
    return fp32, int8


def main(argv: list[str] | None = None) -> int:
    """``python -m classification.export [MODEL_DIR]``: export, print the paths; 0 on success."""
    args = list(sys.argv[1:] if argv is None else argv)
    target = Path(args[0]) if args else Path("var/models")
    for written in export_onnx(target):
        print(written)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    raise SystemExit(main())
