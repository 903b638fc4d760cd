"""Keyed pseudonyms of the identity fields that leave ingest. Pure: the key is handed in.

A pseudonym is the hex HMAC-SHA256, under ingest's pseudonym key, of ``<purpose>\\x1f<value>``: equal values
give equal pseudonyms (an author, a customer, an item joins across events and sources as before), but without
the key nobody can recompute one from a guessed value (an unsalted SHA-256 of an address could be, by anyone
holding the address). The purpose separates the fields: a customer id and an author id that happen to be the
same string get different pseudonyms. Rotating the key changes every pseudonym (items before and after no
longer join); see the README's redaction section.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

__all__ = ["MIN_KEY_BYTES", "Pseudonymizer"]

#: A shorter key is refused: 128 bits at least (a generated one has 256).
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class Pseudonymizer:
    """Pseudonyms under one key; ``repr`` never shows the key. Raises ValueError for a key under 16 bytes."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonym key must have at least {MIN_KEY_BYTES} bytes")

    def pseudonym(self, purpose: str, value: str) -> str:
        """64 hex characters, the same for the same ``(purpose, value)`` under this key."""
        return hmac.new(self.key, f"{purpose}\x1f{value}".encode(), hashlib.sha256).hexdigest()

    def email_hash(self, email: str) -> str:
        """The published ``author.email_hash``: the address trimmed and lower-cased, then keyed."""
        return self.pseudonym("email", email.strip().lower())
