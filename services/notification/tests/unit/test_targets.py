"""Webhook URL validation: scheme, credentials, and literal or named private targets."""

from __future__ import annotations

import pytest

from notification.domain.targets import TargetPolicy, check_webhook_url, is_private_host

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
