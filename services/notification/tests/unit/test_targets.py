"""Webhook URL validation: scheme, credentials, and literal or named private targets."""

from __future__ import annotations

import ipaddress

import pytest

from notification.domain.targets import (
    TargetPolicy,
    address_allowed,
    check_webhook_url,
    is_private_host,
    sender_url_problem,
)

EMBEDDED = TargetPolicy(https_only=False, allow_private=True)
PRODUCTION = TargetPolicy(https_only=True, allow_private=False)
PRODUCTION_PRIVATE_OK = TargetPolicy(https_only=True, allow_private=True)


@pytest.mark.parametrize("host", [
    "localhost", "api.localhost", "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "10.1.2.3",
    "172.16.0.1", "192.168.1.10", "169.254.169.254", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
    "printer.local", "db.internal", "receiver", "224.0.0.1",
])
def test_private_hosts(host: str) -> None:
    assert is_private_host(host)


@pytest.mark.parametrize("host", ["hooks.example.com", "8.8.8.8", "2606:4700::1111", "1.1.1.1", "api.slack.com",
                                  "0x7f.example.com"])
def test_public_hosts(host: str) -> None:
    assert not is_private_host(host)


def test_embedded_allows_http_and_loopback() -> None:
    assert check_webhook_url("http://127.0.0.1:8080/hook", EMBEDDED) is None
    assert check_webhook_url("http://hooks.example.com/hook", EMBEDDED) is None
    assert check_webhook_url("https://[::1]:8443/hook", EMBEDDED) is None


def test_production_requires_https_and_a_public_host() -> None:
    assert check_webhook_url("https://hooks.example.com/hook?x=1", PRODUCTION) is None
    assert "https://" in (check_webhook_url("http://hooks.example.com/hook", PRODUCTION) or "")
    for url in ("https://127.0.0.1/x", "https://localhost/x", "https://169.254.169.254/latest/meta-data",
                "https://[::ffff:10.0.0.1]/x", "https://2130706433/x"):
        problem = check_webhook_url(url, PRODUCTION)
        assert problem and "NOTIFICATION_ALLOW_PRIVATE_TARGETS" in problem, url


def test_production_with_private_targets_allows_loopback_http_only() -> None:
    assert check_webhook_url("http://127.0.0.1:9000/x", PRODUCTION_PRIVATE_OK) is None
    assert check_webhook_url("http://hooks.example.com/x", PRODUCTION_PRIVATE_OK) is not None


@pytest.mark.parametrize(("url", "fragment"), [
    ("ftp://hooks.example.com/x", "https://"),
    ("javascript:alert(1)", "https://"),
    ("https:///nohost", "no host"),
    ("https://user:pw@hooks.example.com/x", "user:password"),
    ("https://hooks.example.com:99999/x", "not a valid URL"),
    ("https://hooks.example.com/" + "x" * 3000, "longer than"),
])
def test_malformed_urls(url: str, fragment: str) -> None:
    problem = check_webhook_url(url, EMBEDDED)
    assert problem and fragment in problem, problem


# ------------------------------------------------------------------ one parser with the sender; routable addresses


@pytest.mark.parametrize("url", ["http://0177.0.0.1/hook", "https://8.8.8.010/", "https://xn--a.com/hook"])
@pytest.mark.parametrize("policy", [EMBEDDED, PRODUCTION], ids=["embedded", "production"])
def test_urls_the_sender_cannot_parse_are_refused_when_saved(url: str, policy: TargetPolicy) -> None:
    """urllib reads these; httpx, which sends them, does not: refused up front instead of stuck at send time."""
    assert sender_url_problem(url) is not None
    problem = check_webhook_url(url, policy)
    assert problem and "not a valid URL" in problem, problem


@pytest.mark.parametrize("address", [
    "100.64.0.1", "100.100.100.200", "169.254.169.254", "169.254.170.2", "168.63.129.16", "10.0.0.1",
    "192.168.1.1", "0.0.0.0", "224.0.0.1", "192.88.99.1", "fe80::1", "fd00:ec2::254", "fd00::1", "ff02::1",
    "2002:7f00:1::", "2002:808:808::1", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::1",
    "::ffff:169.254.169.254", "::",
])
def test_addresses_that_are_not_globally_routable_are_refused_in_every_profile(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert not address_allowed(parsed, allow_loopback=False)
    assert not address_allowed(parsed, allow_loopback=True), "the embedded profile adds loopback, nothing else"


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_globally_routable_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address), allow_loopback=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_allowed_only_in_the_embedded_profile(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert address_allowed(parsed, allow_loopback=True)
    assert not address_allowed(parsed, allow_loopback=False)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]:8080/x",
                                 "http://100.64.0.1/x", "http://10.0.0.5/x", "http://[2002:7f00:1::]/x"])
def test_embedded_allows_loopback_but_not_link_local_shared_or_metadata(url: str) -> None:
    problem = check_webhook_url(url, EMBEDDED)
    assert problem and "not a globally routable address" in problem, problem
