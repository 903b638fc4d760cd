"""Where ingest's pseudonym key comes from (I/O; the pseudonyms themselves are :mod:`ingest.domain.pseudonym`).

``INGEST_PSEUDONYM_KEY`` when set (a secret like the webhook ones: never logged). Otherwise, in the embedded
profile, a key generated once into ``INGEST_PSEUDONYM_KEY_FILE`` (default: ``ingest-pseudonym.key`` beside the
SQLite store, i.e. ``var/``), created with mode 0600 and read back on every later start, so ``make run`` needs no
set-up and pseudonyms stay stable across restarts. The production profile refuses to start without the variable:
a key generated on one replica's disk would give each replica different pseudonyms.

Failures: :class:`PseudonymKeyMissing` (production without a key), ``ValueError`` (a key under 16 bytes), OSError
(the key file cannot be read or created).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from ingest.config import IngestSettings
from ingest.domain.pseudonym import MIN_KEY_BYTES, Pseudonymizer

__all__ = ["PseudonymKeyMissing", "load_pseudonymizer"]


class PseudonymKeyMissing(RuntimeError):
    """The production profile has no ``INGEST_PSEUDONYM_KEY``."""


def load_pseudonymizer(settings: IngestSettings) -> Pseudonymizer:
    """The configured key's pseudonymizer; in the embedded profile, the key file's (created on first use)."""
    configured = settings.pseudonym_key.get_secret_value() if settings.pseudonym_key is not None else ""
    if configured:
        return Pseudonymizer(configured.encode())
    if settings.common.profile == "production":
        raise PseudonymKeyMissing(
            "INGEST_PSEUDONYM_KEY is not set: the production profile needs the key that pseudonymises author, "
            f"customer and item ids (at least {MIN_KEY_BYTES} bytes, the same on every replica)"
        )
    return Pseudonymizer(_key_file(settings.pseudonym_key_path()))


def _key_file(path: Path) -> bytes:
    """The key in ``path``, created once with mode 0600 (two copies starting together end with the same key)."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # written whole under a private name, then linked into place: a copy starting meanwhile never reads half a key
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another copy created it first: use that one
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_text().strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path} holds no usable pseudonym key (at least {MIN_KEY_BYTES} bytes); remove it to "
                         "have one generated, or set INGEST_PSEUDONYM_KEY")
    return key
