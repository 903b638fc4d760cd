"""Which webhook URLs a rule may target. Pure: parses the URL and literal addresses, resolves nothing.

Policy:

* ``http`` and ``https`` only; no ``user:password@`` (the signature authenticates a delivery, and a URL is shown
  in every answer, so it must not carry credentials).
* ``https_only`` (the production profile): ``http`` is refused, except to a private target when private targets
  are allowed (an in-cluster receiver, a local test receiver).
* ``allow_private`` off (the production default): loopback, link-local, private, unspecified, multicast and
  reserved addresses are refused, whether written as an IP literal (IPv4 in any ``inet_aton`` spelling such as
  ``2130706433`` or ``0x7f.1``, IPv6, IPv4-mapped IPv6) or as a local name (``localhost``, ``*.localhost``,
  ``*.local``, ``*.internal``, a single-label name).

A public hostname whose DNS answer is a private address is caught at send time, not here: the sender resolves,
checks and pins every connection (:mod:`notification.egress`). Redirects are never followed by the sender.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["TargetPolicy", "check_webhook_url", "is_private_host"]

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_MAX_URL = 2048


@dataclass(frozen=True)
class TargetPolicy:
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
    private = is_private_host(host)
    if private and not policy.allow_private:
        return (f"{host} is a loopback, link-local or private address; set NOTIFICATION_ALLOW_PRIVATE_TARGETS=true "
                "to allow it")
    if scheme == "http" and policy.https_only and not (private and policy.allow_private):
        return "the URL must use https:// in the production profile"
    return None


def is_private_host(host: str) -> bool:
    """Whether ``host`` (as ``urlsplit`` gives it: lower-case, no brackets) is a literal or named local target."""
    name = host.rstrip(".").lower()
    address = _literal_address(name)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return bool(address.is_loopback or address.is_link_local or address.is_private or address.is_unspecified
                    or address.is_multicast or address.is_reserved)
    return name == "localhost" or name.endswith(_LOCAL_SUFFIXES) or "." not in name


def _literal_address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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
