"""A minimal HTTP/1.1 keep-alive POST client for the benchmarks (``make bench``, ``make bench-ingest``).

httpx spends ~4 ms of CPU per request — more than ingest spends answering it — so on a 2-core machine a
benchmark driven by httpx mostly measures httpx. This client only writes request bytes and reads the
status line, headers and a ``Content-Length`` body (~0.1 ms per request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

__all__ = ["Send", "raw_poster"]

#: ``send(path, body, headers)`` → True when ingest answered 202 with feedback ids.
Send = Callable[[str, bytes, dict[str, str]], Awaitable[bool]]


@asynccontextmanager
async def raw_poster(url: str, key: str) -> AsyncIterator[Send]:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: one connection per worker (task), reused.

    It writes the request bytes and reads the status line, the headers and a ``Content-Length`` body —
    enough for ingest's answers, at a fraction of httpx's CPU, so that the load generator sharing the
    machine's 2 cores with the server takes as little of them as possible.
    """
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    connections: dict[asyncio.Task[object] | None, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def send(path: str, body: bytes, headers: dict[str, str]) -> bool:
        task = asyncio.current_task()
        conn = connections.get(task)
        if conn is None:
            conn = connections[task] = await asyncio.open_connection(host, port)
        reader, writer = conn
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {key}\r\n{head}"
                     f"content-length: {len(body)}\r\n\r\n".encode() + body)
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            payload = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            connections.pop(task, None)
            writer.close()
            raise
        if fields.get("connection", "").lower() == "close":
            connections.pop(task, None)
            writer.close()
        return status == 202 and b'"feedback_ids"' in payload

    try:
        yield send
    finally:
        for _, writer in connections.values():
            writer.close()
