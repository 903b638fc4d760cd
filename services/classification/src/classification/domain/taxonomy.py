"""Themes: a validated tree of product themes, and keyword matching of a text against it.

A taxonomy document (YAML or the same shape as a dict)::

    version: "2026.1"          # required; goes into every classified event's model info
    match_threshold: 0.45      # optional; a theme is assigned only when its confidence reaches this
    max_themes: 3              # optional; at most this many themes per item, best first
    themes:
      - id: billing            # required, unique: lower-case letters, digits, "_", "-", "."
        name: Billing          # required
        description: ...       # optional
        keywords: [invoice, "charged twice", refund*]   # optional; phrases, "*" = any word ending
        examples: ["I was billed twice this month"]     # optional; short texts the embedding matcher learns from
      - id: billing.invoices
        name: Invoices
        parent: billing        # optional; the product area of a theme is its top-level ancestor

:func:`parse_taxonomy` raises :class:`TaxonomyError` naming every problem it finds (duplicate ids, unknown
parents, cycles, a theme with no name …); it never returns a half-valid tree.

Matching (:meth:`Taxonomy.match`): each keyword is a case-insensitive phrase matched at word boundaries; a
multi-word phrase weighs 1.0, a single word 0.7. A theme's confidence is ``1 - exp(-sum of weights of the
distinct keywords found)`` — one single word gives 0.50, one phrase 0.63, two words 0.75. A theme without
keywords matches its own name. Themes under ``match_threshold`` are dropped; nothing above it means no theme.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from feedbackloop.contracts import ThemeLabel

__all__ = ["VERSION", "Taxonomy", "TaxonomyError", "Theme", "ThemeMatch", "parse_taxonomy", "taxonomy_from_yaml"]

VERSION = "1"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_PHRASE_WEIGHT = 1.0
_WORD_WEIGHT = 0.7


class TaxonomyError(ValueError):
    """The taxonomy document is invalid; ``problems`` lists each problem found, the message joins them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid taxonomy: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Theme:
    id: str
    name: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    parent: str | None = None
    examples: tuple[str, ...] = ()

    def prototype_texts(self) -> list[str]:
        """What the embedding matcher learns this theme from: name + description (zero-shot), then examples."""
        head = f"{self.name}: {self.description}" if self.description else self.name
        return [head, *self.examples]


@dataclass(frozen=True, slots=True)
class ThemeMatch:
    theme: Theme
    confidence: float
    keywords: tuple[str, ...]

    def as_label(self) -> ThemeLabel:
        return ThemeLabel(id=self.theme.id, name=self.theme.name, confidence=self.confidence)


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = keyword.strip().lower().split()
    parts = [re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) for w in words]
    body = r"\s+".join(parts)
    # Word boundaries that also hold next to non-word characters ("2fa", "c++", "e-mail").
    return re.compile(rf"(?<!\w){body}(?!\w)")


def _needle(keyword: str) -> str:
    """A substring every match of :func:`_keyword_pattern` contains: the first word (without a trailing ``*``)."""
    words = keyword.strip().lower().split()
    return words[0].removesuffix("*") if words else ""


@dataclass(frozen=True)
class Taxonomy:
    version: str
    themes: tuple[Theme, ...]
    match_threshold: float = 0.45
    max_themes: int = 3
    _by_id: dict[str, Theme] = field(init=False, repr=False, compare=False)
    _patterns: dict[str, tuple[tuple[str, float, re.Pattern[str], str], ...]] = field(init=False, repr=False,
                                                                                       compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {t.id: t for t in self.themes})
        patterns = {}
        for theme in self.themes:
            words = theme.keywords or (theme.name,)
            patterns[theme.id] = tuple(
                (w, _PHRASE_WEIGHT if len(w.split()) > 1 else _WORD_WEIGHT, _keyword_pattern(w), _needle(w))
                for w in words)
        object.__setattr__(self, "_patterns", patterns)

    def get(self, theme_id: str) -> Theme | None:
        return self._by_id.get(theme_id)

    def root_of(self, theme_id: str) -> Theme:
        """The top-level ancestor of a theme (itself when it has no parent): its product area."""
        theme = self._by_id[theme_id]
        while theme.parent is not None:
            theme = self._by_id[theme.parent]
        return theme

    def match(self, text: str, embedding_scores: Mapping[str, float] | None = None) -> list[ThemeMatch]:
        """Themes whose confidence reaches the threshold, best first, at most ``max_themes``.

        ``embedding_scores`` (theme id → confidence in [0, 1] from the embedding matcher) combine with the
        keyword confidence as independent evidence: ``1 - (1 - keywords) * (1 - embedding)``.
        """
        lowered = text.lower()
        found: list[ThemeMatch] = []
        for theme in self.themes:
            # The needle (the keyword's first word, literally) is a cheap pre-check before the regex.
            hits = [(word, weight) for word, weight, pattern, needle in self._patterns[theme.id]
                    if needle in lowered and pattern.search(lowered)]
            from_embedding = float((embedding_scores or {}).get(theme.id, 0.0))
            if not hits and from_embedding <= 0:
                continue
            keyword_miss = math.exp(-sum(weight for _, weight in hits))
            confidence = round(min(1.0, max(0.0, 1 - keyword_miss * (1 - from_embedding))), 3)
            if confidence >= self.match_threshold:
                found.append(ThemeMatch(theme, confidence, tuple(word for word, _ in hits)))
        # Deeper themes first on a tie: "billing.invoices" says more than "billing".
        found.sort(key=lambda m: (-m.confidence, -self._depth(m.theme), m.theme.id))
        return found[: self.max_themes]

    def _depth(self, theme: Theme) -> int:
        depth = 0
        while theme.parent is not None:
            theme, depth = self._by_id[theme.parent], depth + 1
        return depth

    def tree(self) -> list[dict[str, Any]]:
        """The themes as nested dicts (``children`` lists), roots in document order."""
        children: dict[str | None, list[Theme]] = {}
        for theme in self.themes:
            children.setdefault(theme.parent, []).append(theme)

        def node(theme: Theme) -> dict[str, Any]:
            return {"id": theme.id, "name": theme.name, "description": theme.description,
                    "keywords": list(theme.keywords), "examples": list(theme.examples),
                    "parent": theme.parent, "children": [node(c) for c in children.get(theme.id, [])]}

        return [node(t) for t in children.get(None, [])]


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    return str(value).strip()


def parse_taxonomy(document: Any) -> Taxonomy:
    """Validate a taxonomy document (see the module docstring) and build it; :class:`TaxonomyError` otherwise."""
    if not isinstance(document, Mapping):
        raise TaxonomyError(["the document must be a mapping with `version` and `themes`"])
    problems: list[str] = []
    version = _text(document, "version")
    if not version:
        problems.append("`version` is missing")
    threshold = document.get("match_threshold", 0.45)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 < threshold <= 1:
        problems.append(f"`match_threshold` must be a number in (0, 1], not {threshold!r}")
        threshold = 0.45
    max_themes = document.get("max_themes", 3)
    if not isinstance(max_themes, int) or isinstance(max_themes, bool) or max_themes < 1:
        problems.append(f"`max_themes` must be a positive integer, not {max_themes!r}")
        max_themes = 3
    entries = document.get("themes")
    if not isinstance(entries, list) or not entries:
        raise TaxonomyError([*problems, "`themes` must be a non-empty list"])

    themes: list[Theme] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"themes[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} is not a mapping")
            continue
        theme_id = _text(entry, "id")
        if not theme_id:
            problems.append(f"{where} has no id")
            continue
        where = f"theme {theme_id!r}"
        if not _ID.match(theme_id):
            problems.append(f"{where}: id must be lower-case letters, digits, '_', '-' or '.'")
        if theme_id in seen:
            problems.append(f"{where}: duplicate id")
            continue
        seen.add(theme_id)
        name = _text(entry, "name")
        if not name:
            problems.append(f"{where} has no name")
        keywords = entry.get("keywords") or []
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip().strip("*") for k in keywords):
            problems.append(f"{where}: keywords must be a list of non-empty strings")
            keywords = []
        examples = entry.get("examples") or []
        if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
            problems.append(f"{where}: examples must be a list of non-empty strings")
            examples = []
        parent = _text(entry, "parent") or None
        if parent == theme_id:
            problems.append(f"{where} is its own parent")
            parent = None
        themes.append(Theme(id=theme_id, name=name or theme_id, description=_text(entry, "description") or "",
                            keywords=tuple(dict.fromkeys(k.strip().lower() for k in keywords)), parent=parent,
                            examples=tuple(dict.fromkeys(e.strip() for e in examples))))

    by_id = {t.id: t for t in themes}
    for theme in themes:
        if theme.parent is not None and theme.parent not in by_id:
            problems.append(f"theme {theme.id!r}: parent {theme.parent!r} does not exist")
    problems.extend(_cycles(by_id))
    if problems:
        raise TaxonomyError(problems)
    assert version is not None
    return Taxonomy(version=version, themes=tuple(themes), match_threshold=float(threshold), max_themes=max_themes)


def _cycles(by_id: dict[str, Theme]) -> list[str]:
    problems: list[str] = []
    reported: set[str] = set()
    for start in by_id:
        path: list[str] = []
        current: str | None = start
        while current is not None and current in by_id and current not in path:
            path.append(current)
            current = by_id[current].parent
        if current is not None and current in path:
            cycle = path[path.index(current):]
            if not reported.intersection(cycle):
                reported.update(cycle)
                problems.append("parent cycle: " + " -> ".join([*cycle, current]))
    return problems


def taxonomy_from_yaml(text: str) -> Taxonomy:
    """Parse YAML text into a validated :class:`Taxonomy`; bad YAML is a :class:`TaxonomyError` too."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError([f"not valid YAML: {exc}"]) from exc
    return parse_taxonomy(document)
