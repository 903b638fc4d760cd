"""``feedbackloop reclassify``: run the taxonomy and models in force over stored history, and show what changes.

Works on the service's own store (``CLASSIFICATION_DATABASE_URL``), like ``feedbackloop replay``: it reads the
``classifications`` rows first labelled since a time, labels each again with the classifier the service would use
now (the newest taxonomy put through the API, else the file; the corrections learned), and compares.

* ``--dry-run`` (shadow mode): prints the diff and the agreement between old and new labels; writes nothing.
* Otherwise: each changed item is stored as ``revision`` + 1 and its ``feedback.classified.v1`` event (id
  ``uuid5(feedback_id, "feedback.classified.v1/<revision>")``) is written to the store's outbox in the same
  transaction, page by page; the running service's relay publishes them (a stopped one at its next start).
  Unchanged items publish nothing.
* A human correction is never overwritten: the fields a person set on an item keep their value (unless
  ``include_corrected``); its other labels may change.
* Resumable: after each page the position and the counts so far are written to a checkpoint under
  ``state_dir``; a run interrupted and started again with the same options continues where it stopped (and
  re-doing a page is harmless: the same revision is the same event, and the upsert never goes back a revision).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classification.config import ClassificationSettings
from classification.domain.corrections import FIELDS, changed_fields, kept_fields, relabelled
from classification.model.classifier import Classifier, PreviewItem, build_classifier
from classification.model.embedding import Encoder
from classification.service.classify import classified_event_id
from classification.service.live import LiveState, restore
from classification.store import MIGRATIONS
from classification.store.models import Classification, runtime_tables
from classification.store.repository import ClassificationRepository, CorrectionRepository
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory, check_current, create_engine, session_factory

__all__ = ["FIELDS", "ReclassifyReport", "reclassify"]


@dataclass
class ReclassifyReport:
    since: str
    taxonomy: str
    dry_run: bool
    seen: int = 0
    changed: int = 0
    published: int = 0
    kept_corrected: int = 0
    after: tuple[str, str] | None = None
    transitions: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in FIELDS})

    @property
    def agreement(self) -> float:
        return 1.0 if not self.seen else (self.seen - self.changed) / self.seen

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "taxonomy": self.taxonomy, "dry_run": self.dry_run, "seen": self.seen,
                "changed": self.changed, "published": self.published, "kept_corrected": self.kept_corrected,
                "after": list(self.after) if self.after else None,
                "transitions": {f: dict(c) for f, c in self.transitions.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReclassifyReport:
        report = cls(data["since"], data["taxonomy"], data["dry_run"], data["seen"], data["changed"],
                     data["published"], data["kept_corrected"],
                     tuple(data["after"]) if data.get("after") else None)
        report.transitions = {f: Counter(data["transitions"].get(f, {})) for f in FIELDS}
        return report

    def summary(self) -> str:
        """The diff as text: items changed per label with the most frequent before → after, and agreement."""
        lines = [f"reclassify since {self.since} with taxonomy {self.taxonomy!r}"
                 + (" — DRY RUN, nothing published" if self.dry_run else ""),
                 f"items read {self.seen}, changed {self.changed}, agreement old/new {self.agreement:.1%}"
                 + ("" if self.dry_run else f", re-published {self.published}")
                 + (f", corrected labels kept on {self.kept_corrected}" if self.kept_corrected else "")]
        for name in FIELDS:
            counts = self.transitions[name]
            changed = sum(counts.values())
            agreement = 1.0 if not self.seen else (self.seen - changed) / self.seen
            lines.append(f"  {name:<13} {changed:>6} changed   agreement {agreement:.1%}")
            for transition, count in counts.most_common(8):
                lines.append(f"      {transition:<50} {count:>6}")
        return "\n".join(lines)


def _checkpoint_path(state_dir: Path, settings: ClassificationSettings, taxonomy: str, dry_run: bool,
                     include_corrected: bool) -> Path:
    key = json.dumps([settings.database_url, taxonomy, dry_run, include_corrected])
    return state_dir / f"reclassify-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


async def reclassify(settings: ClassificationSettings, since: datetime, *, dry_run: bool = False,
                     include_corrected: bool = False, batch_size: int = 256, state_dir: Path = Path("var/reclassify"),
                     encoder: Encoder | None = None, progress: bool = True) -> ReclassifyReport:
    """Re-label stored items first labelled at or after ``since``; see the module docstring.

    Raises ``SchemaBehind`` when the store is not migrated, ``ModelUnavailable`` without the model, and what the
    store raises; the checkpoint keeps the work done so far.
    """
    engine = create_engine(settings.database_url)
    try:
        await check_current(engine, MIGRATIONS, "classification")
        units = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/feedbackloop/classification")
        live = LiveState(await asyncio.to_thread(build_classifier, settings, encoder))
        async with units() as uow:
            await restore(uow, live)
        classifier = live.classifier
        checkpoint = _checkpoint_path(state_dir, settings, classifier.taxonomy.version, dry_run, include_corrected)
        if checkpoint.exists():
            report = ReclassifyReport.from_json(json.loads(checkpoint.read_text()))
            since = datetime.fromisoformat(report.since)
        else:
            report = ReclassifyReport(since.isoformat(), classifier.taxonomy.version, dry_run)
        async with units() as uow:
            total = await ClassificationRepository(uow.session).count_since(since)
        with _progress(progress, total, report.seen) as advance:
            while True:
                after = (datetime.fromisoformat(report.after[0]), report.after[1]) if report.after else None
                async with units() as uow:
                    rows = await ClassificationRepository(uow.session).page(since, after, batch_size)
                    if not rows:
                        break
                    await _relabel_page(uow, rows, classifier, report, include_corrected=include_corrected)
                    cursor = (rows[-1].created_at.isoformat(), rows[-1].feedback_id)  # before commit expires rows
                    if not dry_run:
                        await uow.commit()
                report.after = cursor
                _save(checkpoint, report)
                advance(len(rows))
        checkpoint.unlink(missing_ok=True)
        return report
    finally:
        await engine.dispose()


async def _relabel_page(uow: UnitOfWork, rows: Sequence[Classification], classifier: Classifier,
                        report: ReclassifyReport, *, include_corrected: bool) -> None:
    """Load the page's corrections, label its items again, decide each item's new revision
    (:func:`~classification.domain.corrections.relabelled`), and (unless a dry run) store and publish the changed
    ones in ``uow``; the counts go to ``report``."""
    repo = ClassificationRepository(uow.session)
    items = [ClassifiedFeedback.model_validate(r.item) for r in rows]
    corrected = {} if include_corrected else await CorrectionRepository(uow.session).fields_of(
        [str(i.feedback_id) for i in items])
    labels = await asyncio.to_thread(classifier.label_many, [
        PreviewItem(i.text, i.subject, i.customer, i.language) for i in items])
    now = datetime.now(UTC)
    for row, item, new_labels in zip(rows, items, labels, strict=True):
        keep = kept_fields(item, corrected.get(str(item.feedback_id), ()), include_corrected=include_corrected)
        if keep:
            report.kept_corrected += 1
        new = relabelled(item, new_labels, keep, now)
        diff = changed_fields(item, new)
        report.seen += 1
        if not diff:
            continue
        report.changed += 1
        for name, transition in diff.items():
            report.transitions[name][transition] += 1
        if not report.dry_run and await repo.upsert(new, created_at=row.created_at):
            uow.publish(FEEDBACK_CLASSIFIED, new, event_id=classified_event_id(new.feedback_id, new.revision))
            report.published += 1


def _save(path: Path, report: ReclassifyReport) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report.to_json()))
    temporary.replace(path)


class _progress:
    """A rich progress bar on stderr (or nothing); ``advance(n)`` moves it."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.enabled, self.total, self.done = enabled, total, done
        self._bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("reclassify"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True))
        self._bar.start()
        task = self._bar.add_task("items", total=max(self.total, self.done), completed=self.done)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

