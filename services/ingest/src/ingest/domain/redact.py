"""Personal-data redaction: replace emails, phone numbers, card numbers, IBANs, IP addresses and
secrets in free text with typed placeholders, and count what was replaced.

Pure: no I/O. Validation keeps precision up: a card number must pass the Luhn check, an IBAN its
mod-97 check (python-stdnum), a phone number Google's libphonenumber rules (phonenumbers).
Order matters: secrets and emails first (they contain digits that look like phone numbers), then
cards and IBANs, then IPs, then phones.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

__all__ = ["PLACEHOLDERS", "Redaction", "redact"]

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ip": "[IP]",
    "secret": "[SECRET]",
}

_SECRET = re.compile(
    r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{10,}\b"  # Stripe
    r"|\bgh[pousr]_[0-9A-Za-z]{30,}\b"  # GitHub
    r"|\bxox[abposr]-[0-9A-Za-z-]{10,}\b"  # Slack
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API key
    r"|\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\b"  # JWT
    r"|\b(?:api[_-]?key|token|secret|password)\s*[:=]\s*['\"]?[^\s'\"]{8,}"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")


@dataclass
class Redaction:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


def redact(text: str, *, default_region: str = "US") -> Redaction:
    """``text`` with personal data replaced; ``counts`` by kind. Never raises on any input string."""
    counts: Counter[str] = Counter()

    def sub(pattern: re.Pattern[str], kind: str, s: str, valid: object = None) -> str:
        def repl(m: re.Match[str]) -> str:
            if valid is not None and not valid(m.group(0)):  # type: ignore[operator]
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        return pattern.sub(repl, s)

    out = sub(_SECRET, "secret", text)
    out = sub(_EMAIL, "email", out)
    out = sub(_CARD, "card", out, _is_card)
    out = sub(_IBAN, "iban", out, lambda s: stdnum_iban.is_valid(s.replace(" ", "")))
    out = sub(_IPV4, "ip", out, _is_ip)
    out = sub(_IPV6, "ip", out, _is_ip)
    out = _redact_phones(out, counts, default_region)
    return Redaction(out, counts)


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _is_ip(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return not (address.version == 4 and candidate.count(".") == 3 and candidate.startswith("0."))


def _redact_phones(text: str, counts: Counter[str], region: str) -> str:
    pieces: list[str] = []
    last = 0
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        pieces.append(text[last : match.start])
        pieces.append(PLACEHOLDERS["phone"])
        counts["phone"] += 1
        last = match.end
    pieces.append(text[last:])
    return "".join(pieces)
