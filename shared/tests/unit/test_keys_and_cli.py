from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedbackloop.cli.common import parse_since
from feedbackloop.keys import InvalidKey, KeyStore


def test_key_is_stored_only_as_a_hash_and_verifies(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, plaintext = store.create("ci", ["write"])
    assert plaintext.startswith(f"flk_{key.id}_")
    assert plaintext.split("_")[2] not in (tmp_path / "keys.json").read_text()
    verified = store.verify(plaintext)
    assert verified.allows("read") and verified.allows("write") and not verified.allows("admin")


def test_wrong_malformed_and_revoked_keys_are_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, plaintext = store.create("x", ["read"])
    for bad in ["", "nope", f"flk_{key.id}_wrong", "flk_unknown_secret"]:
        with pytest.raises(InvalidKey):
            store.verify(bad)
    assert store.revoke(key.id)
    with pytest.raises(InvalidKey):
        store.verify(plaintext)


def test_another_process_creating_a_key_is_seen_without_restart(tmp_path: Path) -> None:
    reader = KeyStore(tmp_path / "keys.json")
    assert reader.active() == []
    _, plaintext = KeyStore(tmp_path / "keys.json").create("late", ["admin"])
    assert reader.verify(plaintext).name == "late"


def test_unknown_scope_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scopes must be"):
        KeyStore(tmp_path / "k.json").create("x", ["root"])


def test_parse_since_takes_durations_and_iso_times() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-04-01T00:00:00", now) == datetime(2026, 4, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", now)


def test_a_key_verified_before_is_refused_on_the_first_request_after_its_revocation(tmp_path: Path) -> None:
    """Verified keys are remembered between changes of the key file, never across one: a revocation by another
    process, or the file removed, is seen by the very next verify."""
    reader = KeyStore(tmp_path / "keys.json")
    key, plaintext = KeyStore(tmp_path / "keys.json").create("x", ["write"])
    assert reader.verify(plaintext) == reader.verify(plaintext) == key
    assert KeyStore(tmp_path / "keys.json").revoke(key.id)
    with pytest.raises(InvalidKey):
        reader.verify(plaintext)
    other, second = KeyStore(tmp_path / "keys.json").create("y", ["read"])
    assert reader.verify(second) == other
    (tmp_path / "keys.json").unlink()
    with pytest.raises(InvalidKey):
        reader.verify(second)
