"""Outgoing HTTP that re-checks every target after DNS resolution (SSRF), and pins the address it checked.

:mod:`notification.domain.targets` refuses literal and obviously local targets when a rule is saved. That is
not enough: ``hooks.example.com`` may resolve to ``10.0.0.5`` (or start to, later). So, when private targets are
not allowed, every connection the sender opens goes through :class:`GuardedBackend`: it resolves the host,
refuses it with :class:`TargetRefused` if *any* address it resolves to is loopback, link-local, private,
unspecified, multicast or reserved, and otherwise connects to the address it checked — not to a second lookup,
so a DNS answer that changes between the check and the connection (rebinding) cannot slip through. TLS still
verifies the certificate against the host name (httpcore passes the name to the TLS handshake separately).

:class:`TargetRefused` is not an ``httpx`` error: it propagates out of ``client.send`` unchanged, and the sender
fails the delivery at once (it is not retried: the target is wrong, not away). Environment proxies are ignored
(``trust_env=False``): a proxy would make the resolution happen elsewhere, unchecked.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx

from notification.domain.targets import is_private_host

__all__ = ["GuardedBackend", "Resolver", "TargetRefused", "guarded_client", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(Exception):
    """The target's host resolves to an address the policy forbids; the message names host and address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as a connection would use it)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks and pins each TCP target before connecting."""

    def __init__(self, resolver: Resolver = system_resolver) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolver

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        refused = [a for a in addresses if is_private_host(a)]
        if refused:
            raise TargetRefused(f"{host} resolves to {refused[0]}, a loopback, link-local or private address; "
                                "set NOTIFICATION_ALLOW_PRIVATE_TARGETS=true to allow it")
        return await self._inner.connect_tcp(addresses[0], port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, resolver: Resolver) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(),
                                                  network_backend=GuardedBackend(resolver))


def guarded_client(*, allow_private: bool, timeout: float, headers: dict[str, str],
                   resolver: Resolver = system_resolver) -> httpx.AsyncClient:
    """The sender's HTTP client: redirects never followed; with ``allow_private`` off, every target is re-checked."""
    transport = None if allow_private else _GuardedTransport(resolver)
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers=headers, transport=transport,
                             trust_env=allow_private)
