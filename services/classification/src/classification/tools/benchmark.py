"""``make bench-classification``: items/s of the whole pipeline with batching, and the process's RSS.

    feedbackloop bench-classification [--repeat 3] [--batch 64]

Runs each configuration ``--repeat`` times (the machine may be shared: the table shows the best and the median
run) over the handed URR reviews (long) and banking77 queries (short), cold text cache, and writes
``var/bench/classification.json``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from classification.config import ClassificationSettings
from classification.model.classifier import Classifier, PreviewItem, build_classifier
from classification.tools.datasets import banking77, url_reviews

__all__ = ["benchmark"]


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rates(classifier: Classifier, texts: list[str], *, cached: bool, repeat: int, batch: int) -> list[float]:
    """Items per second of ``repeat`` runs over ``texts`` in batches (a cold text cache unless ``cached``)."""
    assert classifier.encoder is not None
    rates = []
    for _ in range(repeat):
        if not cached:
            classifier.encoder.clear_cache()
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            classifier.label_many([PreviewItem(t) for t in texts[start:start + batch]])
        rates.append(len(texts) / (time.perf_counter() - started))
    return rates


def benchmark(root: Path, *, repeat: int = 3, batch: int = 64,
              out: Path = Path("var/bench/classification.json")) -> dict[str, Any]:  # pragma: no cover - the bench
    """Measure on the datasets under ``root``, print the table, write ``out``; the figures are returned too."""
    classifier = build_classifier(ClassificationSettings())
    if classifier.encoder is None:
        raise RuntimeError("the benchmark measures the embedding pipeline: set CLASSIFICATION_EMBEDDINGS=true")
    sets = {"banking77 (short)": [str(r["text"]) for r in banking77(root)][:2000],
            "URR reviews (long)": [str(r["text"]) for r in url_reviews(root)]}
    rows = []
    for name, texts in sets.items():
        for cached in (False, True):
            rates = _rates(classifier, texts, cached=cached, repeat=repeat, batch=batch)
            rows.append({"set": name, "cache": "warm" if cached else "cold", "items": len(texts),
                         "best_items_per_s": round(max(rates), 1),
                         "median_items_per_s": round(statistics.median(rates), 1),
                         "runs": [round(r, 1) for r in rates]})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()
    print(f"{'set':<22}{'cache':>6}{'items':>7}{'best/s':>9}{'median/s':>10}")
    for row in rows:
        print(f"{row['set']:<22}{row['cache']:>6}{row['items']:>7}{row['best_items_per_s']:>9}"
              f"{row['median_items_per_s']:>10}")
    print(f"RSS now {_rss_mb():.0f} MB, peak {peak:.0f} MB; model {classifier.encoder.name}; "
          f"load average during the run {load[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    result = {"rows": rows, "rss_mb": round(_rss_mb(), 1), "peak_rss_mb": round(peak, 1),
              "model": classifier.encoder.name, "batch": batch, "load_average": load, "cores": os.cpu_count()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result
