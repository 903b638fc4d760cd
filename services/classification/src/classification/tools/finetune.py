"""Fine-tune the packaged MiniLM so that its sentence embedding carries sentiment, and keeps its meaning.

    make finetune          # fine-tune into var/models-finetuned/ and export it to ONNX there

A training tool and an experiment: it needs PyTorch and transformers, which the service never installs (``make
finetune`` puts them in ``.venv-train``; a PyPI ``torch`` is a CUDA build of several GB, and runs on the CPU all
the same). The result is a safetensors file of the same architecture that ``python -m classification.export
--weights FILE`` turns into an int8 ONNX encoder. Measured, it did not carry sentiment across domains better than
the packaged encoder (see the README), so the service ships the packaged one.

What it optimises, per batch (deterministic for a seed):

* **sentiment** — a linear read-out of the normalised mean-pooled embedding regresses each rated sentence's mean
  rating (``sentiment-rated-sentences``: 20 raters each, -4..+4, scaled to -1..1) and each written sentence's label
  (positive 0.5, neutral 0, negative -0.5): the direction the shipped sentiment head reads becomes a sharp one;
* **meaning kept** — the cosine distance between the student's and the frozen original's embedding, on the same
  sentences and on as many unlabelled feedback texts (banking77 queries, app reviews, forum sentences), weighted by
  ``--keep``: themes, clusters, kind and the examples memory keep working on the same geometry.

``--domains`` picks the rated sources to learn from (``make eval``'s leave-one-domain-out runs fine-tune without
the held-out one). One epoch over ~20,000 sentences takes ~10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers import BertModel

    from classification.embedding import packaged_model_dir
    from classification.tools import datasets as data

    parser = argparse.ArgumentParser(prog="python -m classification.tools.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=None, help="the handed datasets (default ../shared/datasets)")
    parser.add_argument("--domains", default=",".join(data.RATED_DOMAINS),
                        help="rated domains to learn from (comma-separated)")
    parser.add_argument("--no-written", action="store_true", help="leave the written sentences out")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--keep", type=float, default=4.0, help="weight of the meaning-kept term")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    root = args.datasets or data.default_root()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rated: list[tuple[str, float]] = []
    for domain in filter(None, args.domains.split(",")):
        rated += [(e.text, e.rating / 4.0) for e in data.rated_sentences(root, domain)]
    if not args.no_written:
        value = {"positive": 0.5, "neutral": 0.0, "negative": -0.5}
        rated += [(e.text, value[e.label]) for e in data.written_sentiments()]
    unlabelled = data.unlabelled_feedback(root)
    random.shuffle(rated)
    random.shuffle(unlabelled)

    model_dir = packaged_model_dir()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(args.max_tokens)
    tokenizer.enable_padding()
    teacher = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
    student = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).train()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    readout = torch.nn.Linear(384, 1)
    optimiser = torch.optim.AdamW([*student.parameters(), *readout.parameters()], lr=args.lr, weight_decay=0.01)
    steps = int(len(rated) * args.epochs) // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=max(1, steps),
                                                   pct_start=0.1, anneal_strategy="linear")

    def embed(model: torch.nn.Module, texts: list[str]) -> torch.Tensor:
        encoded = tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded])
        mask = torch.tensor([e.attention_mask for e in encoded])
        hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)

    started = time.monotonic()
    for step in range(steps):
        chunk = [rated[(step * args.batch + k) % len(rated)] for k in range(args.batch)]
        extra = [unlabelled[(step * args.batch + k) % len(unlabelled)] for k in range(args.batch // 2)]
        texts = [t for t, _ in chunk]
        target = torch.tensor([r for _, r in chunk], dtype=torch.float32)
        student_vectors = embed(student, texts + extra)
        with torch.no_grad():
            teacher_vectors = embed(teacher, texts + extra)
        predicted = readout(student_vectors[:len(texts)]).squeeze(-1)
        sentiment_loss = torch.nn.functional.mse_loss(predicted, target)
        keep_loss = (1 - (student_vectors * teacher_vectors).sum(-1)).mean()
        loss = sentiment_loss + args.keep * keep_loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps}  sentiment {sentiment_loss.item():.4f}  keep {keep_loss.item():.4f}  "
                  f"{time.monotonic() - started:.0f}s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(args.out))
    print(args.out)
    return 0


if __name__ == "__main__":  # pragma: no cover - a training command
    raise SystemExit(main())
