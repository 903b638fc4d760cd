"""Bytes of an export → text, or one clear reason it cannot be read. Pure.

Google Play's review export is UTF-16 (little-endian, with a byte-order mark); App Store and generic
exports are UTF-8 (with or without a BOM). The whole file is decoded before anything is posted, so a
broken encoding stops the import with nothing stored.
A broken encoding raises ``FileRejected`` (see ``errors.py``) naming the byte, its line and the fix.
"""

from __future__ import annotations

import codecs

from ingest.tools.importer.errors import FileRejected

__all__ = ["decode_export"]

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_export(data: bytes, name: str, encoding: str | None = None) -> str:
    """The file's text. ``encoding`` forces a codec; otherwise a BOM decides (UTF-8 or UTF-16), else UTF-8,
    else UTF-16 when the bytes look like it (every other byte NUL: a BOM-less Google Play export).

    Raises ``FileRejected`` naming the first undecodable byte (offset and line) and the fix.
    """
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise FileRejected(f"{name}: unknown encoding {encoding!r}") from None
        return _decode(data, name, encoding, forced=True)
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decode(data, name, codec, forced=False)
    sample = data[:4096]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
        return _decode(data, name, "utf-16-le", forced=False)
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4:
        return _decode(data, name, "utf-16-be", forced=False)
    return _decode(data, name, "utf-8", forced=False)


def _decode(data: bytes, name: str, codec: str, *, forced: bool) -> str:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
        label = codec.replace("-sig", "").upper().replace("UTF-16-LE", "UTF-16").replace("UTF-16-BE", "UTF-16")
        hint = "check --encoding" if forced else "save it as UTF-8 or UTF-16, or pass --encoding (e.g. cp1252)"
        raise FileRejected(
            f"{name} is not valid {label}: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
            f"nothing was imported; {hint}"
        ) from None
    if "\x00" in text:
        raise FileRejected(f"{name} holds NUL characters after decoding as {codec}: wrong encoding? pass --encoding")
    return text.removeprefix("\ufeff")
