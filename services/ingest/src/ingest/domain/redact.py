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
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn, numdb

__all__ = ["DEFAULT_PHONE_REGIONS", "PLACEHOLDERS", "Redaction", "phone_regions", "redact", "redact_many", "redact_url"]

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
# Any case: "de89 3704 …" is as much an IBAN as "DE89 3704 …" (the check is on the upper-cased candidate).
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}\b")
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
#: Where national-format numbers are recognised unless the caller says otherwise (ingest: INGEST_PHONE_REGIONS).
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR")
# North American Numbering Plan regions: their trunk prefix "1" is mostly left out in writing.
_NANP = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ()))
# Past the budget: any run of 6+ digits joined by phone punctuation is taken for a number (linear: digits and
# separators are disjoint, and a separator run is at most 3 long).
_PHONE_SHAPE = re.compile(r"(?<!\d)\+?\d(?:[ \-./()\u00a0]{0,3}\d){" + str(MIN_PHONE_DIGITS - 1) + ",}")
# A date written day-first with dots, slashes or dashes ("05.03.2024"): valid as a German number, never one.
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1(?:\d{2}|\d{4})")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")


@dataclass
class Redaction:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


def redact(text: str, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Redaction:
    """``text`` with personal data replaced; ``counts`` by kind. Never raises on any input string.

    ``regions`` (ISO 3166 codes, first = the default) are where national-format phone numbers are
    recognised; numbers written with ``+`` and a country code are found whatever the regions.
    """
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
    out = _redact_phones(out, counts, tuple(regions) or DEFAULT_PHONE_REGIONS)
    return Redaction(out, counts)


def redact_many(texts: Sequence[str], *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Redaction:
    """Several short texts (tags) redacted as ONE text, so they share one phone budget (50 tags cost no more
    than one text of their length); ``text`` holds them joined by newlines, in order. Newlines inside a text
    become spaces. Should a match span two of them (it cannot, but the join must never merge or lose a text),
    each is redacted alone."""
    cleaned = [t.replace("\r", " ").replace("\n", " ") for t in texts]
    joined = redact("\n".join(cleaned), regions=regions)
    if joined.text.count("\n") == max(len(cleaned) - 1, 0):
        return joined
    counts: Counter[str] = Counter()
    parts = []
    for text in cleaned:
        one = redact(text, regions=regions)
        counts += one.counts
        parts.append(one.text)
    return Redaction("\n".join(parts), counts)


def redact_url(url: str, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Redaction:
    """``url`` fit to publish: credentials (``user:pass@``) dropped, each query value and the fragment redacted
    like text (``?email=jane@example.com`` → ``?email=[EMAIL]``), the path redacted when it holds an ``@``.
    Scheme, host and an ordinary path are kept: they link back to the item in the vendor's tool. A string that is
    not a URL at all is redacted whole."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return redact(url, regions=regions)
    counts: Counter[str] = Counter()

    def clean(value: str) -> str:
        result = redact(value, regions=regions)
        counts.update(result.counts)
        return result.text

    netloc = parts.netloc
    if "@" in netloc:
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
        counts["secret"] += 1  # credentials in a URL are a secret, whatever they look like
    path = clean(parts.path) if "@" in parts.path else parts.path
    query = parts.query
    if query:
        before = sum(counts.values())
        pairs = [(key, clean(value)) for key, value in parse_qsl(query, keep_blank_values=True)]
        if sum(counts.values()) != before:  # untouched query strings keep their own encoding
            query = urlencode(pairs, quote_via=quote, safe="[]")
    fragment = clean(parts.fragment) if parts.fragment else ""
    return Redaction(urlunsplit((parts.scheme, netloc, path, query, fragment)), counts)


def _redact_ibans(text: str, counts: Counter[str]) -> str:
    """IBANs, checked by mod 97; a candidate that swallowed trailing words is cut to its country's IBAN length
    (fixed per country), so each candidate costs one check however long it is."""

    def repl(m: re.Match[str]) -> str:
        candidate = m.group(0)
        length = _iban_length(candidate[:2].upper())
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


def _redact_phones(text: str, counts: Counter[str], regions: tuple[str, ...]) -> str:
    """One libphonenumber pass per region over what the previous passes left, sharing ONE budget of tries
    (so more regions cost no more time on hostile text). The first region takes every number valid there;
    a later region only numbers written the national way, with its trunk prefix ("020 7946 0958" in GB) and
    grouped or 10+ digits long, so an order number that happens to be valid somewhere is not taken for a phone."""
    if not _ENOUGH_DIGITS_FOR_A_PHONE.match(text):
        return text
    tries, found = PHONE_TRIES, 0
    for index, region in enumerate(regions):
        prefix = None if index == 0 else _trunk_prefix(region)
        if index and prefix is None:
            continue
        if index and not _ENOUGH_DIGITS_FOR_A_PHONE.match(text):
            break
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID, max_tries=tries
        )
        pieces: list[str] = []
        last = 0
        for match in matcher:
            if prefix is not None and not _national_shape(match.raw_string, prefix):
                continue
            pieces.append(text[last : match.start])
            pieces.append(PLACEHOLDERS["phone"])
            last = match.end
            found += 1
            if found == MAX_PHONES:
                break
        rest = text[last:]
        # The matcher stops silently when its tries run out; it keeps the count in `_max_tries` (no public API).
        # Should a new version drop that attribute, every text counts as past the budget: over-redaction, not a leak.
        tries = getattr(matcher, "_max_tries", 0)
        exhausted = found == MAX_PHONES or tries <= 0
        if exhausted:
            rest = _redact_phone_shapes(rest, counts)
        pieces.append(rest)
        text = "".join(pieces)
        if exhausted:
            break
    if found:
        counts["phone"] += found
    return text


def _national_shape(raw: str, prefix: str) -> bool:
    """A later region's number must start with its trunk prefix (if it writes one), and be grouped ("030 1234567")
    or 10+ digits long: a bare "0224976" is more often an invoice number than a German phone; "05.03.2024" is a date."""
    if not raw.lstrip("(").startswith(prefix) or _DATE.fullmatch(raw):
        return False
    return any(not c.isdigit() for c in raw) or sum(c.isdigit() for c in raw) >= 10


@functools.cache
def _trunk_prefix(region: str) -> str | None:
    """The digits a national number of ``region`` starts with ("0" in GB, DE, FR); "" where none is written (the
    NANP's "1" mostly is not, Italy has none); None for a region libphonenumber does not know."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    if metadata is None:
        return None
    return "" if region.upper() in _NANP else (metadata.national_prefix or "")


def phone_regions(setting: str) -> tuple[str, ...]:
    """``"US,GB,DE,FR"`` as region codes, checked against libphonenumber; raises ValueError naming an unknown one."""
    regions = tuple(dict.fromkeys(r.strip().upper() for r in setting.split(",") if r.strip()))
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"unknown phone region(s): {', '.join(unknown)}; use ISO 3166 codes such as US, GB, DE")
    return regions or DEFAULT_PHONE_REGIONS


def _redact_phone_shapes(text: str, counts: Counter[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        counts["phone"] += 1
        return PLACEHOLDERS["phone"]

    return _PHONE_SHAPE.sub(repl, text)
