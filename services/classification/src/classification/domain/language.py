"""Language step: ISO 639-1 code of the text by ``py3langid`` (its model ships inside the wheel).

Contract of :func:`detect_language`:

* A text with fewer than :data:`MIN_LETTERS` letters (empty, emoji, "ok") says too little: the source's hint is
  returned (normalized: ``"en-US"`` → ``"en"``), or ``"und"`` (undetermined, ISO 639-2) without one.
* Otherwise the identifier's best language when its probability reaches :data:`MIN_PROBABILITY`; below that, the
  hint or ``"und"`` again. Only the first :data:`MAX_CHARS` characters are read.
* Never raises.
"""

from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

__all__ = ["MIN_LETTERS", "MIN_PROBABILITY", "UNDETERMINED", "VERSION", "detect_language", "normalize_hint"]

VERSION = "1"
UNDETERMINED = "und"
MIN_LETTERS = 12
MIN_PROBABILITY = 0.5
MAX_CHARS = 2_000


@cache
def _identifier() -> LanguageIdentifier:
    # Built on first use (about half a second), never at import.
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def normalize_hint(hint: str | None) -> str | None:
    """``"en-US"`` / ``"EN_us"`` → ``"en"``; blank → ``None``."""
    if not hint or not hint.strip():
        return None
    return hint.strip().replace("_", "-").split("-")[0].lower() or None


def detect_language(text: str, hint: str | None = None) -> str:
    """The language of ``text``, falling back to ``hint`` or ``"und"`` as the module docstring says."""
    fallback = normalize_hint(hint) or UNDETERMINED
    sample = text[:MAX_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return fallback
    language, probability = _identifier().classify(sample)
    if float(probability) < MIN_PROBABILITY:
        return fallback
    return str(language)
