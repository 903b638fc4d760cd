"""Rows of an export → ``FeedbackIn`` items, one mapping per kind of export. Pure.

    googleplay  Google Play Console's review export (``reviews_<package>_<yyyymm>.csv``, UTF-16):
                ``Review Text`` (+ ``Review Title`` as subject), ``Star Rating``, ``Review Submit Millis Since
                Epoch`` / ``…Date and Time``, ``Reviewer Language``, ``Review Link`` (its ``reviewId`` is the id);
                package, app version and device become tags
    appstore    App Store Connect customer reviews: the API's ``customerReviews`` resources saved as JSON /
                JSON Lines, or a CSV of the same attributes (``id, rating, title, body, reviewerNickname,
                createdDate, territory``; common spellings such as ``Review ID``, ``Nickname``, ``Review``
                accepted)
    generic     any CSV / JSON Lines with a column mapping ``target=column`` (targets in ``GENERIC_TARGETS``)

External ids are deterministic: the export's own review id, else a hash of the row's identifying fields,
so importing a file twice adds nothing. A row that cannot become an item is a ``BadRow`` with the reason;
a row with a rating but no words is counted as ``empty`` (not feedback text), not as an error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import ValidationError

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import as_datetime
from ingest.domain.feedback import FeedbackIn
from ingest.domain.reserved import reserved_source_reason
from ingest.tools.importer.errors import FileRejected
from ingest.tools.importer.rows import BadRow, Row

__all__ = [
    "GENERIC_TARGETS",
    "ExportKind",
    "Mapped",
    "MappedItem",
    "map_rows",
    "parse_column_map",
]

ExportKind = Literal["appstore", "googleplay", "generic"]

GENERIC_TARGETS: dict[str, tuple[str, ...]] = {
    # target: column names tried, in order, when --map does not name one
    "text": ("text", "body", "review", "comment", "message", "content", "review text", "reviewtext"),
    "external_id": ("external_id", "id", "review_id", "review id", "_id"),
    "subject": ("subject", "title"),
    "created_at": ("created_at", "date", "created", "timestamp", "time"),
    "stars": ("stars", "rating", "star rating", "ratingstars"),
    "nps": ("nps",),
    "csat": ("csat",),
    "author_id": ("author_id",),
    "author_name": ("author_name", "author", "name"),
    "author_email": ("author_email", "email"),
    "customer_id": ("customer_id",),
    "customer_name": ("customer_name", "company", "organization"),
    "customer_plan": ("customer_plan", "plan"),
    "language": ("language", "lang"),
    "url": ("url", "link"),
    "tags": ("tags",),
    "channel": ("channel",),
}
_SCALES = {"stars": (1, 5), "nps": (0, 10), "csat": (1, 5)}
_CHANNELS = {"ticket", "chat", "survey", "review", "community", "email", "api"}


@dataclass(frozen=True)
class MappedItem:
    where: str
    item: FeedbackIn


@dataclass
class Mapped:
    """Every row's fate, in file order: items to post, bad rows with their reasons, rows without text."""

    items: list[MappedItem] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    empty: int = 0

    @property
    def rows(self) -> int:
        return len(self.items) + len(self.bad) + self.empty


class _Empty(Exception):
    """The row has no customer words (a bare star rating)."""


class _Bad(Exception):
    pass


def parse_column_map(spec: str | None) -> dict[str, str]:
    """``text=Review,external_id=ID`` → {target: column}. Raises ``FileRejected`` naming an unknown target."""
    mapping: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        target, sep, column = part.partition("=")
        target = target.strip()
        if not sep or not column.strip():
            raise FileRejected(f"--map takes target=column pairs separated by commas; got {part.strip()!r}")
        if target not in GENERIC_TARGETS:
            raise FileRejected(f"--map: unknown target {target!r}; targets: {', '.join(GENERIC_TARGETS)}")
        mapping[target] = column.strip()
    return mapping


def map_rows(
    rows: Iterable[Row | BadRow],
    kind: ExportKind,
    *,
    header: list[str] | None = None,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    channel: Channel | None = None,
) -> Mapped:
    """Map every row. ``source_name`` is the items' ``source`` (default: the export kind, ``import`` for
    generic); ``channel`` defaults to ``review`` for the app stores and ``api`` for generic.

    Raises ``FileRejected`` when the header lacks a column the kind needs, or ``source_name`` is reserved for a
    signed webhook (:mod:`ingest.domain.reserved`): nothing can be imported.
    """
    source = source_name or ("import" if kind == "generic" else kind)
    reason = reserved_source_reason(source)
    if reason is not None:
        raise FileRejected(f"--source-name {reason}")
    chosen: Channel = channel or ("api" if kind == "generic" else "review")
    mapper = _mapper(kind, header, dict(columns or {}))
    result = Mapped()
    for row in rows:
        if isinstance(row, BadRow):
            result.bad.append(row)
            continue
        try:
            data = mapper(_Fields(row.fields))
        except _Empty:
            result.empty += 1
            continue
        except _Bad as exc:
            result.bad.append(BadRow(row.where, str(exc)))
            continue
        if data.get("channel") is None:
            data["channel"] = chosen
        data["source"] = source
        try:
            item = FeedbackIn.model_validate({k: v for k, v in data.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "row"
            result.bad.append(BadRow(row.where, f"{name}: {first['msg']}"))
            continue
        result.items.append(MappedItem(row.where, item))
    return result


class _Fields:
    """A row's values by column name, compared without case, spaces or punctuation."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.raw = fields
        self.by_key = {_key(k): v for k, v in fields.items() if isinstance(k, str)}

    def get(self, *names: str) -> Any:
        for name in names:
            value = self.by_key.get(_key(name))
            if value is not None and value != "":
                return value
        return None

    def text(self, *names: str) -> str | None:
        value = self.get(*names)
        if value is None or isinstance(value, dict | list | bool):
            return None
        out = str(value).strip()
        return out or None


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _has(header: list[str] | None, *names: str) -> bool:
    keys = {_key(h) for h in header or []}
    return any(_key(n) in keys for n in names)


def _row_hash(prefix: str, values: Iterable[Any]) -> str:
    blob = json.dumps(list(values), sort_keys=True, ensure_ascii=False, default=str)
    return f"{prefix}:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


def _time(value: Any, column: str) -> Any:
    if value is None:
        return None
    parsed = as_datetime(value)
    if parsed is None:
        raise _Bad(f"{column}: cannot read {str(value)[:40]!r} as a time")
    return parsed


def _rating(value: Any, kind: str, column: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Bad(f"{column}: {str(value)[:40]!r} is not a number") from None
    low, high = _SCALES[kind]
    if not low <= number <= high:
        raise _Bad(f"{column}: {number:g} is outside {low} to {high}")
    return {"kind": kind, "value": number, "scale": high}


def _language(value: str | None) -> str | None:
    if not value:
        return None
    candidate = value.strip().replace("_", "-")
    head, _, tail = candidate.partition("-")
    if re.fullmatch(r"[A-Za-z]{2,3}", head) and (not tail or re.fullmatch(r"[A-Za-z0-9]{2,8}", tail)):
        return head.lower() + (f"-{tail}" if tail else "")
    return None  # only a hint: an unreadable one is dropped, not an error


_REVIEW_ID = re.compile(r"(?i)reviewid[=:]([^&#\s]+)")


def _mapper(kind: ExportKind, header: list[str] | None, columns: dict[str, str]) -> Any:
    if kind == "googleplay":
        if header is not None and not _has(header, "Review Text"):
            raise FileRejected(
                "not a Google Play review export: no `Review Text` column (found: " + ", ".join(header[:8]) + ")"
            )
        return _googleplay
    if kind == "appstore":
        if header is not None and not _has(header, *_APPSTORE["body"]):
            raise FileRejected("not an App Store review export: no `body` / `Review` column (found: "
                               + ", ".join(header[:8]) + ")")
        return _appstore
    if header is not None:
        missing = [f"{t}={c}" for t, c in columns.items() if not _has(header, c)]
        if missing:
            raise FileRejected(f"--map names columns the file does not have: {', '.join(missing)} "
                               f"(found: {', '.join(header[:12])})")
        if "text" not in columns and not _has(header, *GENERIC_TARGETS["text"]):
            raise FileRejected("no text column: pass --map text=<column> (found: " + ", ".join(header[:12]) + ")")
    return lambda fields: _generic(fields, columns)


def _googleplay(f: _Fields) -> dict[str, Any]:
    text = f.text("Review Text")
    title = f.text("Review Title")
    if not text and not title:
        raise _Empty
    link = f.text("Review Link")
    found = _REVIEW_ID.search(link or "")
    package = f.text("Package Name")
    submitted = f.get("Review Submit Millis Since Epoch") or f.get("Review Submit Date and Time")
    external_id = (
        unquote(found.group(1))
        if found
        else _row_hash("row", [package, submitted, f.get("Device"), f.get("Reviewer Language"),
                               f.get("App Version Code"), text, title])
    )
    tags = [f"app:{package}" if package else None, _tag("version", f.text("App Version Name")),
            _tag("device", f.text("Device"))]
    return {
        "external_id": external_id[:256],
        "text": text or title,
        "subject": title if text else None,
        "rating": _rating(f.get("Star Rating"), "stars", "Star Rating"),
        "created_at": _time(submitted, "Review Submit Millis Since Epoch"),
        "language": _language(f.text("Reviewer Language")),
        "url": link if link and link.startswith("http") else None,
        "tags": [t for t in tags if t],
    }


_APPSTORE = {
    "id": ("id", "review id", "reviewid"),
    "body": ("body", "review", "content", "review body", "text"),
    "title": ("title", "review title", "subject"),
    "rating": ("rating", "stars", "star rating"),
    "nickname": ("reviewerNickname", "nickname", "reviewer", "author", "user name", "username"),
    "created": ("createdDate", "date", "created", "review date", "created at"),
    "territory": ("territory", "country", "storefront"),
    "version": ("version", "app version", "appVersion", "appVersionString"),
}


def _appstore(f: _Fields) -> dict[str, Any]:
    body = f.text(*_APPSTORE["body"])
    title = f.text(*_APPSTORE["title"])
    if not body and not title:
        raise _Empty
    nickname = f.text(*_APPSTORE["nickname"])
    created = f.get(*_APPSTORE["created"])
    external_id = f.text(*_APPSTORE["id"]) or _row_hash("row", [nickname, created, title, body])
    tags = [_tag("territory", f.text(*_APPSTORE["territory"])), _tag("version", f.text(*_APPSTORE["version"]))]
    return {
        "external_id": external_id[:256],
        "text": body or title,
        "subject": title if body else None,
        "rating": _rating(f.get(*_APPSTORE["rating"]), "stars", "rating"),
        "created_at": _time(created, "createdDate"),
        "author": {"name": nickname[:256]} if nickname else None,
        "tags": [t for t in tags if t],
    }


def _generic(f: _Fields, columns: dict[str, str]) -> dict[str, Any]:
    def pick(target: str) -> Any:
        if target in columns:
            return f.get(columns[target])
        return f.get(*GENERIC_TARGETS[target])

    def label(target: str) -> str:
        return columns.get(target, target)

    text_value = pick("text")
    text = str(text_value).strip() if isinstance(text_value, str | int | float) else ""
    if not text:
        if text_value is None or text_value == "" or isinstance(text_value, str):
            raise _Empty
        raise _Bad(f"{label('text')}: expected text, got {type(text_value).__name__}")
    ext = pick("external_id")
    external_id = str(ext).strip() if isinstance(ext, str | int) and str(ext).strip() else _row_hash(
        "row", sorted((k, v) for k, v in f.raw.items() if isinstance(k, str))
    )
    rating = None
    for kind in ("stars", "nps", "csat"):
        rating = rating or _rating(pick(kind), kind, label(kind))
    author = {"id": _str(pick("author_id")), "name": _str(pick("author_name")), "email": _str(pick("author_email"))}
    customer = {"id": _str(pick("customer_id")), "name": _str(pick("customer_name")),
                "plan": _str(pick("customer_plan"))}
    tags = pick("tags")
    tag_list = tags if isinstance(tags, list) else str(tags).split(",") if tags is not None else []
    channel = _str(pick("channel"))
    if channel is not None and channel not in _CHANNELS:
        raise _Bad(f"{label('channel')}: {channel!r} is not one of {', '.join(sorted(_CHANNELS))}")
    return {
        "external_id": external_id[:256],
        "text": text,
        "subject": _str(pick("subject")),
        "created_at": _time(pick("created_at"), label("created_at")),
        "rating": rating,
        "author": {k: v for k, v in author.items() if v} or None,
        "customer": {k: v for k, v in customer.items() if v} or None,
        "language": _language(_str(pick("language"))),
        "url": _str(pick("url")),
        "tags": [str(t).strip()[:100] for t in tag_list if str(t).strip()][:50],
        "channel": channel,
    }


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text or None


def _tag(name: str, value: str | None) -> str | None:
    return f"{name}:{value}"[:100] if value else None
