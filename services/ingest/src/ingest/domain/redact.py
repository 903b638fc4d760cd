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

from stdnum import iban as stdnum_iban
from stdnum import luhn, numdb

from ingest.domain.phones import DEFAULT_PHONE_REGIONS, MIN_PHONE_DIGITS, PHONE, phone_regions, redact_phones

__all__ = [
    "DEFAULT_PHONE_REGIONS", "MIN_PHONE_DIGITS", "PLACEHOLDERS", "Redaction", "phone_regions", "redact", "redact_many",
    "redact_url",
]

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": PHONE,
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ip": "[IP]",
    "secret": "[SECRET]",
    "address": "[ADDRESS]",
}

# Each kind of secret with the literals a match must contain: (any of these) and (any of those)… A text lacking
# them cannot hold that kind, so its alternative is left out of the pattern run on that text (see
# _secret_pattern): the same matches, in the same order, found in a fraction of the time (most texts hold none).
_SECRET_KINDS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    (r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{10,}\b", (("_live_", "_test_"),)),  # Stripe
    (r"\bgh[pousr]_[0-9A-Za-z]{30,}\b", (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),)),  # GitHub
    (r"\bxox[abposr]-[0-9A-Za-z-]{10,}\b", (("xox",),)),  # Slack
    (r"\bAKIA[0-9A-Z]{16}\b", (("AKIA",),)),  # AWS access key id
    (r"\bAIza[0-9A-Za-z_-]{35}\b", (("AIza",),)),  # Google API key
    (r"\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}\b", (("eyJ",),)),  # JWT
    (r"\bsk-(?:proj-|ant-)?[0-9A-Za-z_-]{20,}\b", (("sk-",),)),  # OpenAI / Anthropic
    (r"\bglpat-[0-9A-Za-z_-]{20,}\b", (("glpat-",),)),  # GitLab
    (r"\bnpm_[0-9A-Za-z]{36}\b", (("npm_",),)),  # npm
    (r"\bxapp-[0-9A-Za-z-]{20,}\b", (("xapp-",),)),  # Slack app token
    (r"\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}\b", (("SG.",),)),  # SendGrid
    (r"\bgithub_pat_[0-9A-Za-z_]{40,}\b", (("github_pat_",),)),  # GitHub fine-grained
    (r"\b(?:AC|SK)[0-9a-f]{32}\b", (("AC", "SK"),)),  # Twilio
    (r"\bwhsec_[0-9A-Za-z+/=]{20,}", (("whsec_",),)),  # webhook secrets
    # the key's body stops at the first "-----" (its own END line): a BEGIN without an END scans no further
    (r"-----BEGIN (?:[A-Z]{1,20} )?PRIVATE KEY-----(?:[^-]|-(?!----))*+-----END (?:[A-Z]{1,20} )?PRIVATE KEY-----",
     (("-----BEGIN ",), ("PRIVATE KEY-----",))),
    (r"\bBearer\s+[0-9A-Za-z._~+/-]{20,}=*", (("Bearer",),)),
    (r"\b(?:api[_-]?key|token|secret|password)\s*[:=]\s*['\"]?[^\s'\"]{8,}",
     (("api_key", "api-key", "apikey", "token", "secret", "password"), (":", "="))),
)
_SECRET_FIRST_LITERALS = tuple(dict.fromkeys(literal for _, needs in _SECRET_KINDS for literal in needs[0]))
#: Every kind at once (what _secret_pattern gives a text holding every kind's literals).
_SECRET = re.compile("|".join(pattern for pattern, _ in _SECRET_KINDS))
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
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")


# Hints: what a match of each later pattern must contain, searched first (each starts with a character class, which
# the regex engine skips to, while the patterns themselves start with a look-around or \b and are tried at every
# position). A text without the hint cannot match; the pass is skipped and the text is the same as if it had run.
_DIGIT = re.compile(r"\d")  # every pattern but the IPv6 one needs a digit
_IBAN_HINT = re.compile(r"\d\d(?<=[A-Za-z]\d\d)")  # two letters, two check digits
_CARD_HINT = re.compile(r"\d(?:[ -]?\d){12}")  # 13 digits, single separators
_ADDRESS_HINT = re.compile(r"\d(?:[A-Za-z,]?\s|(?<=\s\d))")  # "12 Main St", "12, rue …", "…straße 5"
_IPV4_HINT = re.compile(r"\d\.\d")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{1,4}:")
#: Texts up to this long are redacted once: the result is cached (tags, names, plans and repeated texts recur).
CACHED_CHARS = 1000
_CACHE_SIZE = 4096


@dataclass
class Redaction:
    text: str
    counts: Counter[str] = field(default_factory=Counter)


def redact(text: str, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Redaction:
    """``text`` with personal data replaced; ``counts`` by kind. Never raises on any input string.

    ``regions`` (ISO 3166 codes, first = the default) are where national-format phone numbers are
    recognised; numbers written with ``+`` and a country code are found whatever the regions.
    """
    regions = tuple(regions) or DEFAULT_PHONE_REGIONS
    if len(text) > CACHED_CHARS:
        return _redact(text, regions)
    out, counts = _redact_cached(text, regions)
    return Redaction(out, Counter(dict(counts)))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _redact_cached(text: str, regions: tuple[str, ...]) -> tuple[str, tuple[tuple[str, int], ...]]:
    result = _redact(text, regions)
    return result.text, tuple(result.counts.items())


def _redact(text: str, regions: tuple[str, ...]) -> Redaction:
    """Each pass in order (see the module docstring), skipped when the text lacks what any match of it contains."""
    counts: Counter[str] = Counter()

    def sub(pattern: re.Pattern[str], kind: str, s: str, valid: object = None) -> str:
        def repl(m: re.Match[str]) -> str:
            if valid is not None and not valid(m.group(0)):  # type: ignore[operator]
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        return pattern.sub(repl, s)

    secrets = _secret_pattern(text)
    out = sub(secrets, "secret", text) if secrets is not None else text
    out = sub(_EMAIL, "email", out) if "@" in out else out
    # placeholders hold no digit, so a text without one keeps none
    if _DIGIT.search(out):
        out = _redact_ibans(out, counts) if _IBAN_HINT.search(out) else out
        out = sub(_CARD, "card", out, _is_card) if _CARD_HINT.search(out) else out
        out = sub(_ADDRESS, "address", out) if _ADDRESS_HINT.search(out) else out
        out = sub(_IPV4, "ip", out, _is_ip) if _IPV4_HINT.search(out) else out
    out = sub(_IPV6, "ip", out, _is_ip) if ":" in out and _IPV6_HINT.search(out) else out
    out = redact_phones(out, counts, regions)
    return Redaction(out, counts)


def _secret_pattern(text: str) -> re.Pattern[str] | None:
    """The secret pattern with only the kinds whose literals ``text`` holds (None: it holds no kind's)."""
    for literal in _SECRET_FIRST_LITERALS:  # most texts hold none of them: one flat loop says so
        if literal in text:
            break
    else:
        return None
    kinds = tuple(i for i, (_, needs) in enumerate(_SECRET_KINDS)
                  if all(any(literal in text for literal in group) for group in needs))
    return _secret_kinds(kinds) if kinds else None


@functools.lru_cache(maxsize=256)
def _secret_kinds(kinds: tuple[int, ...]) -> re.Pattern[str]:
    # an alternative that cannot match anywhere in the text changes no match of the others: same leftmost matches,
    # the same alternative winning at each (they keep their order)
    return re.compile("|".join(_SECRET_KINDS[i][0] for i in kinds))


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
