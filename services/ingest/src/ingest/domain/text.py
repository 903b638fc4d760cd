"""Turning what support tools send into plain customer text. Pure: no I/O.

``html_to_text`` keeps paragraph and line breaks and drops markup, scripts and styles;
``strip_reply`` removes quoted reply chains ("On … wrote:", ``>`` lines) and signatures ("-- ",
"Sent from my iPhone") from an email or ticket comment, keeping what the customer wrote this time.
Neither raises on any string.
"""

from __future__ import annotations

import hashlib
import re

from bs4 import BeautifulSoup
from email_reply_parser import EmailReplyParser

__all__ = ["content_key", "html_to_text", "looks_like_html", "strip_reply", "to_text"]

_TAG = re.compile(r"<\s*(?:p|br|div|span|a|b|i|em|strong|ul|ol|li|table|tr|td|h[1-6]|blockquote|img|pre)\b[^>]*>", re.I)
_BLOCKS = ("p", "div", "li", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table")
_BLANKS = re.compile(r"\n{3,}")
_MOBILE_SIGNATURE = re.compile(r"^\s*(?:sent from my [\w .-]+|get outlook for \w+)\s*$", re.I | re.M)
_WORDS = re.compile(r"[^\w]+", re.UNICODE)


def looks_like_html(text: str) -> bool:
    """True when ``text`` carries common HTML tags (a plain '<' in prose does not count)."""
    return bool(_TAG.search(text))


def html_to_text(html: str) -> str:
    """The visible text of an HTML fragment, with block elements and ``<br>`` as line breaks."""
    soup = BeautifulSoup(html, "html.parser")
    for dead in soup(["script", "style", "head"]):
        dead.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_before("\n")
        block.insert_after("\n")
    text = soup.get_text()
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def strip_reply(text: str) -> str:
    """What is new in an email-like message: quoted replies and signatures removed.

    Falls back to the whole text when stripping would leave nothing (a message that is all quote).
    """
    kept = EmailReplyParser.parse_reply(text.replace("\r\n", "\n"))
    kept = _MOBILE_SIGNATURE.sub("", kept).strip()
    return kept or text.strip()


def to_text(body: str | None, *, strip_quotes: bool = False) -> str:
    """HTML or plain ``body`` as plain text, optionally without quoted replies and signatures; '' for None."""
    if not body:
        return ""
    text = html_to_text(body) if looks_like_html(body) else body.strip()
    return strip_reply(text) if strip_quotes else text


def content_key(author_key: str, text: str) -> str:
    """A key equal for the same author saying the same words, whatever the case, spacing or punctuation."""
    words = _WORDS.sub(" ", text.casefold()).strip()
    return hashlib.sha256(f"{author_key}\x1f{words}".encode()).hexdigest()
