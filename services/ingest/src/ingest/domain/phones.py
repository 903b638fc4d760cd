"""Phone numbers in free text: libphonenumber's matcher, one pass per region, under one budget of tries. Pure.

:func:`redact_phones` is the phone pass of :func:`ingest.domain.redact.redact`. A pass that cannot find anything
is skipped (fewer digits in a row than the shortest number; a later region's trunk prefix nowhere a number could
start) when skipping it cannot change the result: see :func:`_phone_digit_group` and :func:`_tries_bound`;
tests/unit/test_redact_fast_paths.py checks the matcher's facts they rest on.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

import phonenumbers

__all__ = ["DEFAULT_PHONE_REGIONS", "MAX_PHONES", "MIN_PHONE_DIGITS", "PHONE", "PHONE_TRIES", "phone_regions",
           "redact_phones"]

PHONE = "[PHONE]"
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


def redact_phones(text: str, counts: Counter[str], regions: tuple[str, ...]) -> str:
    """One libphonenumber pass per region over what the previous passes left, sharing ONE budget of tries
    (so more regions cost no more time on hostile text). The first region takes every number valid there;
    a later region only numbers written the national way, with its trunk prefix ("020 7946 0958" in GB) and
    grouped or 10+ digits long, so an order number that happens to be valid somewhere is not taken for a phone."""
    group = _phone_digit_group(regions)
    if not _ENOUGH_DIGITS_FOR_A_PHONE.match(text) or not group.search(text):
        return text
    tries, found = PHONE_TRIES, 0
    # Short texts cannot spend the budget, whichever passes run: a pass that finds nothing then changes nothing.
    bounded = len(regions) * _tries_bound(text) < min(PHONE_TRIES, MAX_PHONES)
    for index, region in enumerate(regions):
        prefix = None if index == 0 else _trunk_prefix(region)
        if index and prefix is None:
            continue
        if index and not (_ENOUGH_DIGITS_FOR_A_PHONE.match(text) and group.search(text)):
            break
        if index and bounded and prefix and not _starts_with_prefix(prefix).search(text):
            continue  # no number written with the trunk prefix: nothing this pass could take
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID, max_tries=tries
        )
        pieces: list[str] = []
        last = 0
        for match in matcher:
            if prefix is not None and not _national_shape(match.raw_string, prefix):
                continue
            pieces.append(text[last : match.start])
            pieces.append(PHONE)
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


@functools.cache
def _phone_digit_group(regions: tuple[str, ...]) -> re.Pattern[str]:
    """A run of as many digits as the shortest number the passes over ``regions`` can find, each digit at most 4
    other characters from the next. libphonenumber's matcher only tries candidates whose digit blocks are joined
    by at most 4 punctuation characters (its ``_PUNCTUATION_LIMIT``), so a text without such a run holds no number
    for any pass; nor a phone-shaped run for the fallback past the budget (6 digits, 3 separators at most)."""
    return re.compile(r"\d(?:\D{0,4}\d){" + str(_shortest_number(regions) - 1) + "}")


def _shortest_number(regions: tuple[str, ...]) -> int:
    """The fewest digits a number found by the passes over ``regions`` has in the text: MIN_PHONE_DIGITS with its
    country code; the first region's shortest national number; a later region's with its trunk prefix."""
    shortest = MIN_PHONE_DIGITS
    for index, region in enumerate(regions):
        prefix = "" if index == 0 else _trunk_prefix(region)
        if prefix is None:  # a pass that is skipped
            continue
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
        if metadata is None:  # libphonenumber finds only numbers written with their country code there
            continue
        desc = metadata.general_desc
        lengths = [n for n in (desc.possible_length or ()) if n > 0] if desc is not None else []
        if not lengths:
            return 1  # no lengths known: no bound
        shortest = min(shortest, len(prefix) + min(lengths))
    return max(1, shortest)


# Where the matcher's tries go (phonenumbers.phonenumbermatcher): one per candidate, which starts at a digit or a
# lead character; then, per kind of inner group (6), one for the text before its first match and one per match,
# each starting at a separator ("/", "(", "-", a wide hyphen, "." or whitespace; whitespace starts two kinds).
_TRY_START = re.compile(r"[\d(\[\uff08\uff3b+\uff0b]")
_GROUP_START = re.compile(r"[\s/(.\-\u2012-\u2015\uff0d]")
_BOUNDED_CHARS = 2000


def _tries_bound(text: str) -> int:
    """At most how many tries one matcher pass spends on ``text`` (candidates are disjoint; later texts, with
    numbers replaced by placeholders, spend no more). Long texts are not counted: the bound is the budget."""
    if len(text) > _BOUNDED_CHARS:
        return PHONE_TRIES
    return 7 * len(_TRY_START.findall(text)) + 2 * len(_GROUP_START.findall(text))


@functools.cache
def _starts_with_prefix(prefix: str) -> re.Pattern[str]:
    """Where a number written with the trunk ``prefix`` can start: where no digit is before it (a candidate or an
    inner group starts after a non-digit), or after 6 digits (where the matcher cuts a run: an extension's
    digits, or a block limit)."""
    escaped = re.escape(prefix)
    return re.compile(rf"(?<!\d){escaped}|(?<=\d{{6}}){escaped}")


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
        return PHONE

    return _PHONE_SHAPE.sub(repl, text)
