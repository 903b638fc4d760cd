"""What the stand-ins hold, in memory: issues, tickets, conversations, faults, the request and webhook logs.

One lock guards it all: handlers run on the server's event loop while a test's fixture reads from its own thread.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["VENDORS", "Fault", "StandinConfig", "State", "iso_now"]

VENDORS = ("github", "jira", "linear", "zendesk", "intercom")
Vendor = Literal["github", "jira", "linear", "zendesk", "intercom"]
FaultKind = Literal["status", "down", "lose_answer"]


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StandinConfig:
    """Credentials the stand-ins accept and where closing an issue sends the vendor's webhook.

    Webhooks go to ``{webhook_url_base}/github|jira|linear`` (e.g. ingest's ``…/v1/webhooks``), signed with the
    tracker's secret (unsigned when it has none); with no ``webhook_url_base`` nothing is sent."""

    github_token: str = "ghp_standin"
    jira_email: str = "standin@example.com"
    jira_token: str = "jira-standin-token"
    linear_api_key: str = "lin_api_standin"
    zendesk_email: str = "agent@example.com"
    zendesk_token: str = "zendesk-standin-token"
    zendesk_agent_id: int = 1001
    intercom_token: str = "intercom-standin-token"
    intercom_admin_id: str = "1001"
    webhook_url_base: str | None = None
    github_secret: str | None = None
    jira_secret: str | None = None
    linear_secret: str | None = None
    github_html_url: str = "https://github.com"
    linear_workspace: str = "standin"


@dataclass
class Fault:
    """``status``: answer ``status`` (with ``retry_after``) instead of serving; ``down``: drop the connection
    without an answer; ``lose_answer``: perform the create/update/reply, then answer 502. Each of the next
    ``times`` matching requests (optionally only ``method`` and paths containing ``path_contains``)."""

    vendor: Vendor
    kind: FaultKind
    status: int = 503
    retry_after: float | None = None
    times: int = 1
    method: str | None = None
    path_contains: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path_contains is None or self.path_contains in path)


class State:
    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything held (issues, tickets, faults, logs); the configuration stays."""
        with self.lock:
            self.github: dict[str, list[dict[str, Any]]] = defaultdict(list)  # repo (lower-cased) → issues
            self.github_repos: dict[str, str] = {}  # lower-cased → as first written
            self.jira: dict[str, dict[str, Any]] = {}  # key → issue
            self.jira_counters: dict[str, int] = defaultdict(int)
            self.linear: dict[str, dict[str, Any]] = {}  # id → issue
            self.linear_teams: dict[str, dict[str, Any]] = {}  # key → team
            self.linear_counters: dict[str, int] = defaultdict(int)
            self.zendesk: dict[int, dict[str, Any]] = {}  # ticket id → {"ticket", "comments"}
            self.intercom: dict[str, dict[str, Any]] = {}  # conversation id → conversation
            self.missing: set[tuple[str, str]] = set()
            self.faults: list[Fault] = []
            self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
            self.webhooks: list[dict[str, Any]] = []
            self.counter = 10000

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def is_missing(self, vendor: str, target: str | int) -> bool:
        with self.lock:
            return (vendor, str(target).lower()) in self.missing

    def set_missing(self, vendor: str, target: str | int) -> None:
        with self.lock:
            self.missing.add((vendor, str(target).lower()))

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, vendor: str, kinds: tuple[str, ...], method: str, path: str) -> Fault | None:
        """The first pending fault of ``vendor`` of one of ``kinds`` matching the request, one use spent."""
        with self.lock:
            for fault in self.faults:
                if fault.vendor == vendor and fault.kind in kinds and fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def log_request(self, vendor: str, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests[vendor].append(entry)

    def log_webhook(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.webhooks.append(entry)

    def snapshot(self, what: str) -> Any:
        """A deep-enough copy of one part of the state for the operator views."""
        import copy

        with self.lock:
            if what == "github":
                return [copy.deepcopy(i) for issues in self.github.values() for i in issues]
            if what == "jira":
                return [copy.deepcopy(i) for i in self.jira.values()]
            if what == "linear":
                return [copy.deepcopy(i) for i in self.linear.values()]
            if what == "faults":
                return [asdict(f) for f in self.faults]
            if what == "webhooks":
                return copy.deepcopy(self.webhooks)
            raise KeyError(what)
