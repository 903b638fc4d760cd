"""Outgoing HTTP that re-checks every target after DNS resolution (SSRF), and pins the address it checked.

:mod:`notification.domain.targets` refuses literal and obviously local targets when a rule is saved. That is
not enough: ``hooks.example.com`` may resolve to ``10.0.0.5`` (or start to, later). So every connection the sender
opens goes through :class:`GuardedBackend`: it resolves the host, refuses it with :class:`TargetRefused` if *any*
address it resolves to is not allowed (:func:`notification.domain.targets.address_allowed`), and otherwise
connects to the address it checked — not to a second lookup, so a DNS answer that changes between the check and
the connection (rebinding) cannot slip through. TLS still verifies the certificate against the host name
(httpcore passes the name to the TLS handshake separately).

The policy follows the profile, through ``NOTIFICATION_ALLOW_PRIVATE_TARGETS`` (unset: on in the embedded profile,
off in production):

* off (production): globally routable addresses only — not loopback, private, shared (``100.64.0.0/10``),
  link-local (``169.254.0.0/16``, ``fe80::/10``), 6to4 (``2002::/16``), multicast, reserved, nor cloud metadata;
* on (embedded / dev): the same, plus loopback (``127.0.0.0/8``, ``::1``) for a local receiver; link-local,
  private and metadata addresses stay refused.

:class:`TargetRefused` is not an ``httpx`` error: it propagates out of ``client.send`` unchanged, and the sender
fails the delivery at once (it is not retried: the target is wrong, not away). Environment proxies are ignored
(``trust_env=False``): a proxy would make the resolution happen elsewhere, unchecked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable

import httpcore
import httpx

from notification.domain.targets import address_allowed

__all__ = ["GuardedBackend", "Resolver", "TargetRefused", "guarded_client", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(Exception):
    """The target's host resolves to an address the policy forbids; the message names host and address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as a connection would use it)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks and pins each TCP target before connecting.

    ``allow_loopback`` adds loopback to the globally routable addresses allowed; ``inner`` is the backend that
    opens the checked connection (AnyIO's by default).
    """

    def __init__(self, resolver: Resolver = system_resolver, *, allow_loopback: bool = False,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._resolve = resolver
        self._allow_loopback = allow_loopback

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        refused = [a for a in addresses if not _allowed(a, self._allow_loopback)]
        if refused:
            allowed = "globally routable or loopback" if self._allow_loopback else "globally routable"
            raise TargetRefused(f"{host} resolves to {refused[0]}, which is not a {allowed} address; webhook "
                                "targets must be public (NOTIFICATION_ALLOW_PRIVATE_TARGETS=true adds loopback)")
        return await self._inner.connect_tcp(addresses[0], port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _allowed(address: str, allow_loopback: bool) -> bool:
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 answer may carry a zone: fe80::1%eth0
    except ValueError:
        return False
    return address_allowed(parsed, allow_loopback=allow_loopback)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, resolver: Resolver, allow_loopback: bool) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=GuardedBackend(resolver, allow_loopback=allow_loopback))


def guarded_client(*, allow_private: bool, timeout: float, headers: dict[str, str],
                   resolver: Resolver = system_resolver) -> httpx.AsyncClient:
    """The sender's HTTP client: redirects never followed, every target re-checked after resolution;
    ``allow_private`` (the embedded profile) allows loopback besides globally routable addresses."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers=headers,
                             transport=_GuardedTransport(resolver, allow_private), trust_env=False)
