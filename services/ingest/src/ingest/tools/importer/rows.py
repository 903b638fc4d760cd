"""Text of an export → rows (a dict of column → value each), or a bad row naming its line. Pure.

Shapes read: CSV (comma, semicolon or tab, chosen from the header line; quoted fields may span lines),
JSON Lines (one object a line), and one JSON document (a list of objects, or an App Store Connect API
page ``{"data": [{"id", "attributes": {…}}]}``, whose ``attributes`` are lifted beside ``id``).
A row that cannot be read is a ``BadRow`` and the rest go on; a file that is none of these shapes is
``FileRejected``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from ingest.tools.importer.errors import FileRejected

__all__ = ["BadRow", "Row", "read_rows"]

csv.field_size_limit(1 << 24)


@dataclass(frozen=True)
class Row:
    """One record: ``where`` is what a person looks for in the file (``line 12``, ``item 3``)."""

    where: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class BadRow:
    where: str
    reason: str


def read_rows(text: str, name: str) -> tuple[list[str] | None, list[Row | BadRow]]:
    """The header (None for JSON shapes, whose keys vary by row) and every row in file order.

    Raises ``FileRejected`` when the file is empty, a JSON document that does not parse, or a CSV without
    a header line.
    """
    stripped = text.lstrip()
    if not stripped:
        raise FileRejected(f"{name} is empty")
    if stripped[0] in "[{":
        return None, _json_rows(text, name)
    return _csv_rows(text, name)


def _json_rows(text: str, name: str) -> list[Row | BadRow]:
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileRejected(f"{name} is not valid JSON: {exc}") from None
        return [_json_row(f"item {i}", value) for i, value in enumerate(document, 1)]
    first_line = text.lstrip().split("\n", 1)[0]
    try:
        json.loads(first_line)
    except json.JSONDecodeError:
        try:  # not one object a line: one (pretty-printed) document
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileRejected(f"{name} is neither JSON Lines nor a JSON document: {exc}") from None
        return _document_rows(document)
    rows: list[Row | BadRow] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(BadRow(f"line {number}", f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        if isinstance(value, dict) and isinstance(value.get("data"), list):  # a saved API page per line
            rows += _document_rows(value, prefix=f"line {number} ")
        else:
            rows.append(_json_row(f"line {number}", value))
    return rows


def _document_rows(document: Any, prefix: str = "") -> list[Row | BadRow]:
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        document = [document]
    return [_json_row(f"{prefix}item {i}", value) for i, value in enumerate(document, 1)]


def _json_row(where: str, value: Any) -> Row | BadRow:
    if not isinstance(value, dict):
        return BadRow(where, f"expected a JSON object, got {type(value).__name__}")
    attributes = value.get("attributes")
    if isinstance(attributes, dict) and "id" in value:  # a JSON:API resource (App Store Connect)
        value = {**attributes, "id": value["id"]}
    return Row(where, value)


def _csv_rows(text: str, name: str) -> tuple[list[str], list[Row | BadRow]]:
    header_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise FileRejected(f"{name} has no readable header line: {exc}") from None
    if not any(header):
        raise FileRejected(f"{name} has an empty header line")
    rows: list[Row | BadRow] = []
    ended = reader.line_num
    while True:
        start = ended + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            ended = reader.line_num
            rows.append(BadRow(f"line {start}", f"unreadable CSV ({exc})"))
            continue
        ended = reader.line_num
        if not values or not any(v.strip() for v in values):
            continue
        where = f"line {start}"
        if len(values) != len(header):
            rows.append(BadRow(where, f"{len(values)} fields where the header has {len(header)}"))
            continue
        rows.append(Row(where, dict(zip(header, values, strict=True))))
    return header, rows
