"""Which webhook URLs a rule may target, and which addresses the sender may connect to. Pure: parses the URL and
literal addresses, resolves nothing.

Policy (the same for a URL checked when a rule is saved and for each address the sender resolves,
:mod:`notification.egress`):

* The URL must parse with ``httpx`` — the library that sends it — as well as with ``urllib``: a URL only one of
  them reads (``http://0177.0.0.1``, ``https://8.8.8.010/``, a bad ``xn--`` label) is refused when saved, so it
  never reaches the sender. ``httpx.URL`` is used as a pure parser here (no I/O).
* ``http`` and ``https`` only; no ``user:password@`` (the signature authenticates a delivery, and a URL is shown
  in every answer, so it must not carry credentials).
* ``https_only`` (the production profile): ``http`` is refused, except to loopback when private targets are
  allowed (a local test receiver).
* An address is allowed when it is globally routable (``ipaddress`` ``is_global``), not multicast, not 6to4
  (``2002::/16``), not IPv4-compatible IPv6 (``::/96``), not local-use NAT64 (``64:ff9b:1::/48``) and not a
  cloud metadata address; IPv4-mapped (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::a.b.c.d``) addresses are judged
  by the IPv4 address they carry. So shared address space (``100.64.0.0/10``), link-local (``169.254.0.0/16``,
  ``fe80::/10``), private, unspecified and reserved addresses are refused. ``allow_private`` (the embedded
  profile's default; ``NOTIFICATION_ALLOW_PRIVATE_TARGETS``) adds loopback (``127.0.0.0/8``, ``::1``) and local
  names (``localhost``, ``*.local``, a single-label name — checked again after resolution) and nothing else:
  link-local, private and metadata addresses stay refused.
* Literal addresses are recognised in every spelling a resolver accepts (IPv4 in any ``inet_aton`` form such as
  ``2130706433`` or ``0x7f.1``, IPv6, IPv4-mapped IPv6).

A public hostname whose DNS answer is a refused address is caught at send time, not here: the sender resolves,
checks and pins every connection (:mod:`notification.egress`). Redirects are never followed by the sender.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = ["TargetPolicy", "address_allowed", "check_webhook_url", "is_private_host", "sender_url_problem"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_MAX_URL = 2048
#: Refused although ``is_global`` may say otherwise: 6to4, IPv4-compatible IPv6, local-use NAT64, the deprecated
#: 6to4 relay anycast, and the cloud metadata endpoints (AWS, GCP, Azure, DigitalOcean, Oracle, Alibaba, ECS).
_REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "2002::/16", "::/96", "64:ff9b:1::/48", "192.88.99.0/24",
    "169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32", "168.63.129.16/32", "fd00:ec2::254/128"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class TargetPolicy:
    """``https_only``: plain ``http`` only to loopback; ``allow_private``: loopback addresses and local names are
    allowed too (never link-local, private or metadata addresses)."""

    https_only: bool
    allow_private: bool


def check_webhook_url(url: str, policy: TargetPolicy) -> str | None:
    """``None`` when ``url`` may be targeted under ``policy``; otherwise the reason, for a 422."""
    if len(url) > _MAX_URL:
        return f"the URL is longer than {_MAX_URL} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return "the URL must start with https:// (or http://)"
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL must not carry user:password; the webhook signature authenticates each delivery"
    unreadable = sender_url_problem(url)
    if unreadable:
        return f"not a valid URL: {unreadable}"
    name = host.rstrip(".").lower()
    address = _literal_address(name)
    if address is not None:
        local = _unwrapped(address).is_loopback
        if not address_allowed(address, allow_loopback=policy.allow_private):
            if local:
                return (f"{host} is a loopback address; set NOTIFICATION_ALLOW_PRIVATE_TARGETS=true to allow "
                        "loopback targets")
            return (f"{host} is not a globally routable address (private, link-local, shared, reserved, 6to4 or "
                    "cloud metadata); webhook targets must be public, and NOTIFICATION_ALLOW_PRIVATE_TARGETS "
                    "allows loopback only")
    else:
        local = _is_local_name(name)
        if local and not policy.allow_private:
            return (f"{host} is a local name (localhost, *.local, *.internal or a single label); set "
                    "NOTIFICATION_ALLOW_PRIVATE_TARGETS=true to allow loopback targets")
    if scheme == "http" and policy.https_only and not (local and policy.allow_private):
        return "the URL must use https:// in the production profile"
    return None


def sender_url_problem(url: str) -> str | None:
    """Why the sender's HTTP library (``httpx``) cannot build a request to ``url``; ``None`` when it can.

    ``urllib`` and ``httpx`` disagree on some URLs (``httpx`` refuses leading-zero IPv4 such as ``0177.0.0.1``,
    and decodes ``xn--`` labels only when asked for the host): a URL is checked by the library that will send it.
    """
    try:
        request = httpx.Request("POST", url)
        _ = request.url.host, request.url.port  # the host's IDNA decoding is lazy: a bad xn-- label fails here
    except Exception as exc:  # any failure is a URL the sender could not use; the reason goes back to the client
        return str(exc) or type(exc).__name__
    return None


def address_allowed(address: Address, *, allow_loopback: bool) -> bool:
    """Whether the sender may connect to ``address``: globally routable and not refused (see the module's policy),
    or loopback when ``allow_loopback``."""
    address = _unwrapped(address)
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64:
        # A NAT64 gateway connects to the IPv4 address this carries: judge that (its loopback is not ours).
        return address_allowed(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), allow_loopback=False)
    if address.is_loopback:
        return allow_loopback
    if address.is_multicast or any(address in network for network in _REFUSED_NETWORKS):
        return False
    return bool(address.is_global)


def is_private_host(host: str) -> bool:
    """Whether ``host`` (as ``urlsplit`` gives it: lower-case, no brackets) is a literal address that is not
    globally routable (see :func:`address_allowed`), or a local name."""
    name = host.rstrip(".").lower()
    address = _literal_address(name)
    if address is not None:
        return not address_allowed(address, allow_loopback=False)
    return _is_local_name(name)


def _is_local_name(name: str) -> bool:
    return name == "localhost" or name.endswith(_LOCAL_SUFFIXES) or "." not in name


def _unwrapped(address: Address) -> Address:
    """The IPv4 address an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is; else ``address``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _literal_address(name: str) -> Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    return _inet_aton(name)


def _inet_aton(name: str) -> ipaddress.IPv4Address | None:
    """IPv4 in the loose spellings resolvers accept: 1 to 4 parts, each decimal, 0x-hex or 0-octal."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part.startswith(("0x", "0X")):
                numbers.append(int(part[2:], 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                if not part.isdigit():
                    return None
                numbers.append(int(part))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)
