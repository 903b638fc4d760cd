"""A feedback item as a document: its title, its prose sentences, and the structure around them.

Tickets, chats, forum posts and GitHub issues are several sentences, often with a title, template headings
("Steps to reproduce", "Describe the solution you'd like"), code blocks and logs. The kind of such an item is
decided from its parts (:mod:`classification.domain.kind`), so this module cuts an item into them:

* :func:`split_document` returns the **parts** to classify one by one — the title (the subject, or a short first
  line followed by a line break), then each prose sentence — at most :data:`MAX_PARTS` of them, each at most
  :data:`MAX_PART_CHARS` long; and the **cues** found in the structure: which issue-template headings occur, and
  whether the text carries a stack trace or error log.
* Code (fenced blocks, indented lines) and log lines are not sentences: they are dropped from the parts, and a
  trace among them is a cue. Every pattern here is linear in the text's length; the text is read up to
  :data:`SCAN_CHARS` characters.

Never raises; an empty text gives no parts and no cues.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["MAX_PARTS", "Document", "split_document"]

MAX_PARTS = 16
MAX_PART_CHARS = 400
SCAN_CHARS = 20_000
TITLE_MAX_WORDS = 16

_FENCE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_TRACE = re.compile(
    r"Traceback \(most recent call last\)|^\s*at [\w$.<>]+\(.*\)\s*$|^\s*File \".+\", line \d+"
    r"|\b(?:Unhandled|Uncaught) (?:exception|error)\b|\b[A-Z]\w*(?:Exception|Error): |\bpanicked at\b"
    r"|\bsegmentation fault\b|\bstack ?trace\b|\bcore dumped\b",
    re.IGNORECASE | re.MULTILINE)
#: Headings of the issue templates most trackers ship (GitHub's defaults, GitLab's, Jira's), by the kind they mark.
_HEADINGS: dict[str, re.Pattern[str]] = {
    "bug": re.compile(
        r"^\W*(?:steps to reproduce|to reproduce|reproduction steps|how to reproduce|expected (?:behaviou?r|result)"
        r"|actual (?:behaviou?r|result)|current behaviou?r|observed behaviou?r|describe the bug|bug description"
        r"|what happened\??|error (?:message|log)s?|logs?|stack ?trace|crash report)\W*$",
        re.IGNORECASE | re.MULTILINE),
    "feature_request": re.compile(
        r"^\W*(?:is your feature request related to a problem.*|describe the solution you'?d like"
        r"|describe alternatives you'?ve considered|proposed (?:solution|feature|change|api)|feature description"
        r"|motivation|use cases?|proposal|alternatives considered|desired (?:behaviou?r|solution))\W*$",
        re.IGNORECASE | re.MULTILINE),
    "question": re.compile(
        r"^\W*(?:question|my question|what is your question\??|questions?:?)\W*$", re.IGNORECASE | re.MULTILINE),
}
_TAGS = (r"bug(?: report)?|feature(?: request)?|enhancement|request|proposal|suggestion|rfe|question"
         r"|help(?: wanted)?|support|how ?to|q")
#: "[Bug] …", "(Question) …", "Feature request: …", "Q - …": a tag in brackets, or followed by a colon or dash.
_TITLE_TAG = re.compile(rf"^\s*(?:\[\s*(?P<b>{_TAGS})\s*\]|\(\s*(?P<p>{_TAGS})\s*\)|(?P<c>{_TAGS})\s*[:\u2013-])",
                        re.IGNORECASE)
_TAG_KIND = {"bug": "bug", "bug report": "bug", "feature": "feature_request", "feature request": "feature_request",
             "enhancement": "feature_request", "request": "feature_request", "proposal": "feature_request",
             "suggestion": "feature_request", "rfe": "feature_request", "question": "question",
             "help": "question", "help wanted": "question", "support": "question", "how to": "question",
             "howto": "question", "q": "question"}


@dataclass(frozen=True, slots=True)
class Document:
    """What :func:`split_document` found: ``parts`` (title first when there is one), ``has_title``, and the cues."""

    parts: tuple[str, ...]
    has_title: bool = False
    headings: frozenset[str] = field(default_factory=frozenset)   # kinds whose template headings occur
    title_tag: str | None = None                                   # kind named by a "[Bug]" / "Question:" tag
    has_trace: bool = False


def _is_code_or_log(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    if line.startswith(("    ", "\t")) or stripped.startswith(("$ ", ">>> ", "#include", "//")):
        return True
    letters = sum(ch.isalpha() for ch in stripped)
    # Lines that are mostly symbols and digits (paths, JSON, timestamps, hex dumps) are not prose.
    return letters < 0.5 * len(stripped) or (" " not in stripped and len(stripped) > 25)


def split_document(text: str, subject: str | None = None) -> Document:
    """Cut ``text`` (and ``subject``, the item's title) into parts and cues; see the module docstring."""
    body = text[:SCAN_CHARS].replace("\r\n", "\n").replace("\u2019", "'")
    has_trace = bool(_TRACE.search(body))
    headings = frozenset(kind for kind, pattern in _HEADINGS.items() if pattern.search(body))
    prose = _FENCE.sub("\n", body)
    lines = prose.split("\n")
    title = subject.strip() if subject and subject.strip() else None
    if title is None and len(lines) > 1 and lines[0].strip() and len(lines[0].split()) <= TITLE_MAX_WORDS \
            and not lines[0].rstrip().endswith((".", ",", ":")) and lines[1:] and any(x.strip() for x in lines[1:]):
        title, lines = lines[0].strip(), lines[1:]
    title_tag = None
    if title:
        tag = _TITLE_TAG.match(title)
        if tag:
            named = tag.group("b") or tag.group("p") or tag.group("c")
            title_tag = _TAG_KIND.get(re.sub(r"\s+", " ", named.lower()))
    parts: list[str] = [title[:MAX_PART_CHARS]] if title else []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            joined = " ".join(paragraph)
            parts.extend(s.strip()[:MAX_PART_CHARS] for s in _SENTENCE_END.split(joined) if s.strip())
            paragraph.clear()

    for line in lines:
        if _is_code_or_log(line) or any(p.match(line) for p in _HEADINGS.values()):
            flush()
            continue
        cleaned = re.sub(r"^\s*(?:[-*+>]|\d+[.)])\s+", "", line).strip()
        if cleaned:
            paragraph.append(cleaned)
        if len(parts) >= MAX_PARTS:
            break
    flush()
    return Document(tuple(p for p in parts if any(ch.isalnum() for ch in p))[:MAX_PARTS], bool(title), headings,
                    title_tag, has_trace)
