"""Where an interrupted import resumes: one small JSON file per export under ``var/imports/``.

The file is named by the export's SHA-256, so the same file resumes wherever it lies and an edited file
starts over. It records how many of the file's mapped items ingest has acknowledged (202) and a
fingerprint of the options that decide what those items are (kind, mapping, source name, channel,
encoding, target URL): a run with other options starts from the first item. It is written atomically
(temp file + rename) after every acknowledged batch and removed when the import completes, so a later
run of the same file re-posts everything, which ingest stores nothing new for.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Checkpoint", "CheckpointStore"]


@dataclass
class Checkpoint:
    file: str
    sha256: str
    fingerprint: str
    items_done: int = 0
    items_total: int = 0
    updated_at: str = ""


class CheckpointStore:
    """Checkpoints in ``folder`` (created on first save)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.json"

    def load(self, sha256: str, fingerprint: str) -> Checkpoint | None:
        """The checkpoint of this file made with these options, or None (none, unreadable, or other options)."""
        try:
            data = json.loads(self.path(sha256).read_text())
            found = Checkpoint(**data)
        except (OSError, ValueError, TypeError):
            return None
        return found if found.fingerprint == fingerprint and found.sha256 == sha256 else None

    def save(self, checkpoint: Checkpoint) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        checkpoint.updated_at = datetime.now(UTC).isoformat()
        target = self.path(checkpoint.sha256)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(checkpoint), indent=2) + "\n")
        os.replace(temporary, target)

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
