"""Where the pseudonym key comes from: configured, or generated once (0600) in the embedded profile."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from feedbackloop.settings import CommonSettings
from ingest.config import IngestSettings, PseudonymKeyMissing, load_pseudonymizer


def test_the_embedded_profile_generates_a_private_key_once_beside_the_store(tmp_path: Path) -> None:
    settings = IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/data/ingest.db")
    first = load_pseudonymizer(settings)
    key_file = tmp_path / "data" / "ingest-pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 64
    again = load_pseudonymizer(settings)
    assert again.pseudonym("author", "7") == first.pseudonym("author", "7"), "stable across restarts"
    assert [p.name for p in key_file.parent.iterdir()] == ["ingest-pseudonym.key"], "no staging file left"


def test_a_configured_key_wins_and_production_requires_one(tmp_path: Path) -> None:
    configured = IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/ingest.db",
                                pseudonym_key="a-configured-key-of-some-length")
    assert load_pseudonymizer(configured).key == b"a-configured-key-of-some-length"
    assert not (tmp_path / "ingest-pseudonym.key").exists()
    production = IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/ingest.db",
                                common=CommonSettings(profile="production"))
    with pytest.raises(PseudonymKeyMissing, match="INGEST_PSEUDONYM_KEY"):
        load_pseudonymizer(production)
    (tmp_path / "short.key").write_text("abc\n")
    with pytest.raises(ValueError, match="no usable pseudonym key"):
        load_pseudonymizer(IngestSettings(pseudonym_key_file=tmp_path / "short.key"))
