"""API keys: created once, shown once, stored only as SHA-256 hashes with their scopes.

A key reads ``flk_<key id>_<secret>``. The key file (``FEEDBACKLOOP_KEYS_FILE``) is shared by the
services on one machine; each service re-reads it when it changes, so a key created with
``feedbackloop keys create`` works everywhere within a request. In production the file is mounted
from a Kubernetes Secret. Keys are random 256-bit secrets, so a fast hash is the right one: there
is nothing to brute-force that a slow hash would protect.

Scopes nest: ``admin`` ⊃ ``write`` ⊃ ``read``.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["API_KEY_ENV", "SCOPES", "ApiKey", "InvalidKey", "KeyStore", "NoApiKey", "Scope", "cli_api_key"]

Scope = str
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_RANK = {s: i for i, s in enumerate(SCOPES)}


class InvalidKey(Exception):
    """The presented key is malformed, unknown or revoked."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[Scope, ...]
    created_at: str

    def allows(self, scope: Scope) -> bool:
        return any(_RANK[s] >= _RANK[scope] for s in self.scopes if s in _RANK)


def _to_key(entry: dict[str, object]) -> ApiKey:
    scopes = entry["scopes"]
    return ApiKey(
        id=str(entry["id"]),
        name=str(entry["name"]),
        scopes=tuple(scopes) if isinstance(scopes, list) else (),
        created_at=str(entry["created_at"]),
    )


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """The key file, re-read when its modification time or size changes (checked on every :meth:`verify`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._path = os.fspath(path)  # os.stat of a str: a few microseconds less than Path.stat, on every request
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, dict[str, object]] = {}

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            self._stamp, self._entries = None, {}
            return self._entries
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            data = json.loads(self.path.read_text() or "{}")
            self._entries = {k["id"]: k for k in data.get("keys", [])}
            self._stamp = stamp
        return self._entries

    def verify(self, presented: str) -> ApiKey:
        """The key ``presented`` names, or :class:`InvalidKey`. The file is checked for changes every time (a stat),
        so a revoked key fails on the first request after the change. No verified key is kept in memory: a SHA-256
        costs microseconds, and a cache would hold the presented keys in plaintext."""
        entries = self._load()
        parts = presented.strip().split("_")
        if len(parts) != 3 or parts[0] != "flk":
            raise InvalidKey("malformed API key")
        entry = entries.get(parts[1])
        if entry is None or entry.get("revoked_at") or not hmac.compare_digest(str(entry["hash"]), _hash(parts[2])):
            raise InvalidKey("unknown or revoked API key")
        return _to_key(entry)

    def active(self) -> list[ApiKey]:
        return [_to_key(e) for e in self._load().values() if not e.get("revoked_at")]

    def create(self, name: str, scopes: list[Scope]) -> tuple[ApiKey, str]:
        """Add a key; returns it and its plaintext, which is not stored anywhere."""
        unknown = [s for s in scopes if s not in _RANK]
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")
        entry = {
            "id": key_id,
            "name": name,
            "scopes": list(scopes),
            "hash": _hash(secret),
            "created_at": datetime.now(UTC).isoformat(),
        }
        self._update(lambda keys: keys.append(entry))
        return ApiKey(key_id, name, tuple(scopes), str(entry["created_at"])), f"flk_{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        found = False

        def mark(keys: list[dict[str, object]]) -> None:
            nonlocal found
            for k in keys:
                if k["id"] == key_id and not k.get("revoked_at"):
                    k["revoked_at"], found = datetime.now(UTC).isoformat(), True

        self._update(mark)
        return found

    def _update(self, change: object) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two `keys create` at once must not lose one
            data = json.loads(self.path.read_text() or "{}") if self.path.exists() else {}
            keys = data.setdefault("keys", [])
            change(keys)  # type: ignore[operator]
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            os.chmod(tmp, 0o600)
            tmp.replace(self.path)


API_KEY_ENV = "FEEDBACKLOOP_API_KEY"


class NoApiKey(LookupError):
    """A command was given no key by any of the usual routes; the message names them."""


def cli_api_key(explicit: str | None, option: str, var_dir: Path = Path("var")) -> str:
    """The key a command calls a service with: ``option``'s value, else ``FEEDBACKLOOP_API_KEY``, else the
    key ``make run`` wrote to ``var/api-key``."""
    if explicit:
        return explicit
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV]
    try:
        key = (var_dir / "api-key").read_text().strip()
    except OSError:
        key = ""
    if not key:
        raise NoApiKey(f"no API key: pass {option}, set {API_KEY_ENV}, or run where `make run` wrote "
                       f"{var_dir / 'api-key'}")
    return key
