"""Markdown as the callers write issue bodies → Atlassian Document Format (Jira Cloud REST v3). Pure.

Understood: paragraphs (blank-line separated; single newlines become hard breaks), ``#`` headings, ``-``/``*``
bullet lists, ``1.`` ordered lists, fenced code blocks, and inline ``[text](url)`` links, bare ``http(s)://`` URLs,
``**bold**`` and ```code```. HTML comments (such as the idempotency marker) are dropped. Anything else is kept as
plain text, so no input is lost or rejected.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["markdown_to_adf"]

Node = dict[str, Any]

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^\s*(\d{1,9})[.)]\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*```")
_INLINE = re.compile(
    r"\[(?P<label>[^\]\n]+)\]\((?P<href>https?://[^)\s]+)\)"
    r"|(?P<url>https?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"])"
    r"|\*\*(?P<bold>[^*\n]+)\*\*"
    r"|`(?P<code>[^`\n]+)`"
)


def markdown_to_adf(markdown: str) -> Node:
    """An ADF document (``{"type": "doc", "version": 1, "content": [...]}``) for ``markdown``."""
    lines = _COMMENT.sub("", markdown).replace("\r\n", "\n").split("\n")
    content: list[Node] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_kind: str | None = None
    start = 1

    def flush_paragraph() -> None:
        if paragraph:
            content.append({"type": "paragraph", "content": _inline_lines(paragraph)})
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_kind
        if list_kind is not None and items:
            node: Node = {"type": list_kind, "content": [
                {"type": "listItem", "content": [_paragraph(item)]} for item in items]}
            if list_kind == "orderedList":
                node["attrs"] = {"order": start}
            content.append(node)
        items.clear()
        list_kind = None

    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            flush_paragraph()
            flush_list()
            code: list[str] = []
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                code.append(lines[i])
                i += 1
            block: Node = {"type": "codeBlock"}
            if "\n".join(code):
                block["content"] = [{"type": "text", "text": "\n".join(code)}]
            content.append(block)
        elif not line.strip():
            flush_paragraph()
            flush_list()
        elif heading := _HEADING.match(line):
            flush_paragraph()
            flush_list()
            node: Node = {"type": "heading", "attrs": {"level": len(heading[1])}}
            if heading[2]:
                node["content"] = _inline(heading[2])
            content.append(node)
        elif (bullet := _BULLET.match(line)) or (ordered := _ORDERED.match(line)):
            flush_paragraph()
            kind = "bulletList" if bullet else "orderedList"
            if list_kind != kind:
                flush_list()
                list_kind = kind
                start = int(ordered[1]) if not bullet and ordered else 1
            items.append(bullet[1] if bullet else ordered[2] if ordered else line)
        elif list_kind is not None and line.startswith((" ", "\t")) and items:
            items[-1] = f"{items[-1]} {line.strip()}"  # a list item continued on an indented line
        else:
            flush_list()
            paragraph.append(line.strip())
        i += 1
    flush_paragraph()
    flush_list()
    return {"type": "doc", "version": 1, "content": content}


def _paragraph(text: str) -> Node:
    node: Node = {"type": "paragraph"}
    if inline := _inline(text):
        node["content"] = inline
    return node


def _inline_lines(lines: list[str]) -> list[Node]:
    nodes: list[Node] = []
    for n, line in enumerate(lines):
        if n:
            nodes.append({"type": "hardBreak"})
        nodes.extend(_inline(line))
    return nodes


def _inline(text: str) -> list[Node]:
    nodes: list[Node] = []
    at = 0
    for m in _INLINE.finditer(text):
        if m.start() > at:
            nodes.append({"type": "text", "text": text[at:m.start()]})
        if m["label"]:
            nodes.append({"type": "text", "text": m["label"], "marks": [_link(m["href"])]})
        elif m["url"]:
            nodes.append({"type": "text", "text": m["url"], "marks": [_link(m["url"])]})
        elif m["bold"]:
            nodes.append({"type": "text", "text": m["bold"], "marks": [{"type": "strong"}]})
        else:
            nodes.append({"type": "text", "text": m["code"], "marks": [{"type": "code"}]})
        at = m.end()
    if at < len(text):
        nodes.append({"type": "text", "text": text[at:]})
    return nodes


def _link(href: str) -> Node:
    return {"type": "link", "attrs": {"href": href}}
