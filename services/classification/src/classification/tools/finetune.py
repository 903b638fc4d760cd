"""Fine-tune the packaged MiniLM so that its sentence embedding carries sentiment, and keeps its meaning.

    make finetune          # fine-tune into var/models-finetuned/ and export it to ONNX there

A training tool and an experiment: it needs PyTorch and transformers, which the service never installs (``make
finetune`` puts them in ``.venv-train``; a PyPI ``torch`` is a CUDA build of several GB, and runs on the CPU all
the same). The result is a safetensors file of the same architecture that ``feedbackloop export-models
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

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classification.tools import datasets as data

__all__ = ["finetune"]


def _texts(root: Path, domains: Sequence[str], written: bool) -> tuple[list[tuple[str, float]], list[str]]:
    """The rated sentences (text, rating scaled to -1..1; written ones by label) and the unlabelled texts."""
    rated: list[tuple[str, float]] = []
    for domain in domains:
        rated += [(e.text, e.rating / 4.0) for e in data.rated_sentences(root, domain)]
    if written:
        value = {"positive": 0.5, "neutral": 0.0, "negative": -0.5}
        rated += [(e.text, value[e.label]) for e in data.written_sentiments()]
    unlabelled = data.unlabelled_feedback(root)
    random.shuffle(rated)
    random.shuffle(unlabelled)
    return rated, unlabelled


def finetune(root: Path, out: Path, *, domains: Sequence[str] = data.RATED_DOMAINS, written: bool = True,
             epochs: float = 1.0, batch: int = 32, lr: float = 3e-5, keep: float = 4.0, max_tokens: int = 64,
             seed: int = 7) -> Path:
    """Fine-tune on the datasets under ``root`` (see the module docstring) and write the weights to ``out``.
    Needs PyTorch and transformers (``.venv-train``): ImportError otherwise."""
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers import BertModel

    from classification.model.embedding import packaged_model_dir

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    rated, unlabelled = _texts(root, domains, written)

    model_dir = packaged_model_dir()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_tokens)
    tokenizer.enable_padding()
    teacher = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
    student = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).train()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    readout = torch.nn.Linear(384, 1)
    optimiser = torch.optim.AdamW([*student.parameters(), *readout.parameters()], lr=lr, weight_decay=0.01)
    steps = int(len(rated) * epochs) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=max(1, steps),
                                                   pct_start=0.1, anneal_strategy="linear")

    def embed(model: Any, texts: list[str]) -> Any:
        encoded = tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded])
        mask = torch.tensor([e.attention_mask for e in encoded])
        hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)

    started = time.monotonic()
    for step in range(steps):
        chunk = [rated[(step * batch + k) % len(rated)] for k in range(batch)]
        extra = [unlabelled[(step * batch + k) % len(unlabelled)] for k in range(batch // 2)]
        texts = [t for t, _ in chunk]
        target = torch.tensor([r for _, r in chunk], dtype=torch.float32)
        student_vectors = embed(student, texts + extra)
        with torch.no_grad():
            teacher_vectors = embed(teacher, texts + extra)
        predicted = readout(student_vectors[:len(texts)]).squeeze(-1)
        sentiment_loss = torch.nn.functional.mse_loss(predicted, target)
        keep_loss = (1 - (student_vectors * teacher_vectors).sum(-1)).mean()
        loss = sentiment_loss + keep * keep_loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps}  sentiment {sentiment_loss.item():.4f}  keep {keep_loss.item():.4f}  "
                  f"{time.monotonic() - started:.0f}s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(out))
    print(out)
    return out
