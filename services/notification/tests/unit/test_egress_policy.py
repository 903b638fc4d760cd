"""The send-time check of every resolved address, per profile: a fake resolver and a fake connector, no network.

Production allows globally routable addresses only; the embedded profile adds loopback, and nothing else (not
link-local, not shared address space, not metadata). A refused answer never reaches the connector.
"""

from __future__ import annotations

import typing

import httpcore
import pytest

from notification.transports.egress import GuardedBackend, TargetRefused


class _Connector(httpcore.AsyncNetworkBackend):
    """Records where it was asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        return typing.cast(httpcore.AsyncNetworkStream, object())

    async def sleep(self, seconds: float) -> None:
        return None


def _backend(answer: list[str], *, allow_loopback: bool) -> tuple[GuardedBackend, _Connector]:
    async def resolve(host: str, port: int) -> list[str]:
        return answer

    connector = _Connector()
    return GuardedBackend(resolve, allow_loopback=allow_loopback, inner=connector), connector


@pytest.mark.parametrize("answer", [
    ["100.64.0.1"], ["100.100.100.200"], ["169.254.169.254"], ["fe80::1%eth0"], ["2002:7f00:1::"],
    ["fd00:ec2::254"], ["10.0.0.5"], ["8.8.8.8", "100.64.0.1"], ["127.0.0.1"], ["::1"], ["not-an-address"],
])
async def test_production_connects_to_globally_routable_addresses_only(answer: list[str]) -> None:
    backend, connector = _backend(answer, allow_loopback=False)
    with pytest.raises(TargetRefused, match=r"hooks\.example\.com resolves to .*not a globally routable address"):
        await backend.connect_tcp("hooks.example.com", 443)
    assert connector.connected == []


@pytest.mark.parametrize("answer", [["169.254.169.254"], ["fe80::1"], ["100.64.0.1"], ["2002:a9fe:a9fe::"],
                                    ["192.168.1.20"], ["127.0.0.1", "169.254.169.254"]])
async def test_embedded_refuses_link_local_shared_metadata_and_private(answer: list[str]) -> None:
    backend, connector = _backend(answer, allow_loopback=True)
    with pytest.raises(TargetRefused, match="not a globally routable or loopback address"):
        await backend.connect_tcp("receiver.example.com", 80)
    assert connector.connected == []


@pytest.mark.parametrize(("answer", "allow_loopback"), [
    (["8.8.8.8"], False), (["2606:4700::1111"], False), (["8.8.8.8"], True), (["127.0.0.1"], True), (["::1"], True),
])
async def test_allowed_answers_connect_to_the_address_checked(answer: list[str], allow_loopback: bool) -> None:
    backend, connector = _backend(answer, allow_loopback=allow_loopback)
    await backend.connect_tcp("receiver.example.com", 443)
    assert connector.connected == answer[:1]
