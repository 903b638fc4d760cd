"""Personal-data redaction: replace emails, phone numbers, card numbers, IBANs, IP addresses and
secrets in free text with typed placeholders, and count what was replaced.

Pure: no I/O. Validation keeps precision up: a card number must pass the Luhn check, an IBAN its
mod-97 check (python-stdnum), a phone number Google's libphonenumber rules (phonenumbers).
Street addresses are found by shape (a number and a street-type word, in English, German, Dutch,
Nordic, French, Spanish and Italian forms), which is a heuristic: see the evaluation in bench/.
Order matters: secrets and emails first (they contain digits that look like phone numbers), then
IBANs (before cards: their digits can pass Luhn), cards and addresses, then IPs, then phones.

Bounded time on any input (the text is untrusted): every pattern is linear in the text — each repeat is
bounded, atomic (``(?>…)``) or stops at a character the next part needs, so no start position scans the rest
of the text — and libphonenumber, whose cost grows with the candidates it tries, gets a fixed budget of tries
and numbers per text. A text that exhausts it (only a flood of number-like strings does) has the rest of its
phone-shaped digit runs redacted without validation: it fails closed. tests/unit/test_redact.py times
adversarial 100 KB texts.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn, numdb

__all__ = ["PLACEHOLDERS", "Redaction", "redact"]

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ip": "[IP]",
    "secret": "[SECRET]",
    "address": "[ADDRESS]",
}

_SECRET = re.compile(
    r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{10,}\b"  # Stripe
    r"|\bgh[pousr]_[0-9A-Za-z]{30,}\b"  # GitHub
    r"|\bxox[abposr]-[0-9A-Za-z-]{10,}\b"  # Slack
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API key
    r"|\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\b"  # JWT
    r"|\bsk-(?:proj-|ant-)?[0-9A-Za-z_-]{20,}\b"  # OpenAI / Anthropic
    r"|\bglpat-[0-9A-Za-z_-]{20,}\b"  # GitLab
    r"|\bnpm_[0-9A-Za-z]{36}\b"  # npm
    r"|\bxapp-[0-9A-Za-z-]{20,}\b"  # Slack app token
    r"|\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}\b"  # SendGrid
    r"|\bgithub_pat_[0-9A-Za-z_]{40,}\b"  # GitHub fine-grained
    r"|\b(?:AC|SK)[0-9a-f]{32}\b"  # Twilio
    r"|\bwhsec_[0-9A-Za-z+/=]{20,}"  # webhook secrets
    # the key's body stops at the first "-----" (its own END line): a BEGIN without an END scans no further
    r"|-----BEGIN (?:[A-Z]{1,20} )?PRIVATE KEY-----(?:[^-]|-(?!----))*+-----END (?:[A-Z]{1,20} )?PRIVATE KEY-----"
    r"|\bBearer\s+[0-9A-Za-z._~+/-]{20,}=*"
    r"|\b(?:api[_-]?key|token|secret|password)\s*[:=]\s*['\"]?[^\s'\"]{8,}"
)
# RFC 5321 bounds (local part 64, domain 253, label 63); the local part is atomic, so a start position that
# is not at most 64 characters before an "@" fails at once instead of backtracking through the whole run.
_EMAIL = re.compile(r"\b(?>[A-Za-z0-9._%+-]{1,64})@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){11,30}\b")
_IBAN_REGISTRY = numdb.get("iban")
_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Way|Square|Sq"
    r"|Parkway|Pkwy|Highway|Hwy|Close|Crescent|Gardens)\.?"
)
_ADDRESS = re.compile(
    # "221B Baker Street", "1600 Pennsylvania Ave NW, Suite 300"
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,3}" + _STREET_SUFFIX + r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,?\s+(?:Apt|Suite|Unit|Flat)\.?\s*#?\w+)?"
    # "Hauptstraße 5", "Rue de Rivoli 12" is rarer; German/Dutch/Scandinavian street then number
    r"|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|platz|allee|laan|straat|gatan|vej)\s+\d{1,4}[a-z]?\b"
    # French / Spanish / Italian: number, type, name
    r"|\b\d{1,4},?\s+(?:rue|avenue|boulevard|calle|via|viale|avenida|place)\s+(?:(?:de|del|la|le|des|du|di)\s+)?"
    r"[A-ZÀ-Ý][\w'-]+(?:\s+[A-ZÀ-Ý][\w'-]+)?",
    re.UNICODE,
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")
# The shortest valid phone number anywhere has 6 digits, country code included (libphonenumber's metadata:
# Austria, +43 and 4 digits; tests/unit/test_redact.py checks this bound against the installed metadata).
# A text with fewer decimal digits cannot hold one, so the matcher — a third of redaction's time — is skipped.
MIN_PHONE_DIGITS = 6
_ENOUGH_DIGITS_FOR_A_PHONE = re.compile(r"(?:\D*\d){" + str(MIN_PHONE_DIGITS) + "}")
# libphonenumber's budget per text. A try is one candidate parsed and validated (20-100 µs; real text has a few,
# a flood of digit groups one per group), a number found costs about as much: together at most ~0.2 s per text.
PHONE_TRIES = 1000
MAX_PHONES = 1000
# Past the budget: any run of 6+ digits joined by phone punctuation is taken for a number (linear: digits and
# separators are disjoint, and a separator run is at most 3 long).
_PHONE_SHAPE = re.compile(r"(?<!\d)\+?\d(?:[ \-./()\u00a0]{0,3}\d){" + str(MIN_PHONE_DIGITS - 1) + ",}")
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
    out = sub(_EMAIL, "email", out) if "@" in out else out
    out = _redact_ibans(out, counts)
    out = sub(_CARD, "card", out, _is_card)
    out = sub(_ADDRESS, "address", out)
    out = sub(_IPV4, "ip", out, _is_ip)
    out = sub(_IPV6, "ip", out, _is_ip)
    out = _redact_phones(out, counts, default_region)
    return Redaction(out, counts)


def _redact_ibans(text: str, counts: Counter[str]) -> str:
    """IBANs, checked by mod 97; a candidate that swallowed trailing words is cut to its country's IBAN length
    (fixed per country), so each candidate costs one check however long it is."""

    def repl(m: re.Match[str]) -> str:
        candidate = m.group(0)
        length = _iban_length(candidate[:2])
        if length is None:
            return candidate
        seen = 0
        for end, char in enumerate(candidate, 1):
            seen += char not in " -"
            if seen == length:
                if stdnum_iban.is_valid(candidate[:end]):
                    counts["iban"] += 1
                    return PLACEHOLDERS["iban"] + candidate[end:]
                break
        return candidate

    return _IBAN.sub(repl, text)


@functools.cache
def _iban_length(country: str) -> int | None:
    """The length of ``country``'s IBANs from the IBAN registry python-stdnum ships (``8!n10!n``: 4 + 18), or None."""
    structure = _IBAN_REGISTRY.info(country)[0][1].get("bban")
    return 4 + sum(int(n) for n in re.findall(r"(\d+)!", structure)) if structure else None


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
    if not _ENOUGH_DIGITS_FOR_A_PHONE.match(text):
        return text
    matcher = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID, max_tries=PHONE_TRIES
    )
    pieces: list[str] = []
    last = found = 0
    for match in matcher:
        pieces.append(text[last : match.start])
        pieces.append(PLACEHOLDERS["phone"])
        last = match.end
        found += 1
        if found == MAX_PHONES:
            break
    if found:
        counts["phone"] += found
    rest = text[last:]
    # The matcher stops silently when its tries run out; it keeps the count in `_max_tries` (no public API).
    # Should a new version drop that attribute, every text counts as past the budget: over-redaction, not a leak.
    if found == MAX_PHONES or getattr(matcher, "_max_tries", 0) <= 0:
        rest = _redact_phone_shapes(rest, counts)
    pieces.append(rest)
    return "".join(pieces)


def _redact_phone_shapes(text: str, counts: Counter[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        counts["phone"] += 1
        return PLACEHOLDERS["phone"]

    return _PHONE_SHAPE.sub(repl, text)
