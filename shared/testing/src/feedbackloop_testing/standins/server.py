"""The stand-ins served by uvicorn on a thread of their own, with the helpers a test uses.

A thread (not the test's event loop) so that a synchronous test can use them too, and so that a webhook sent to a
server running on the test's loop is answered while the test awaits :meth:`StandinServer.close_issue`. Reads and
fault set-ups act on the state directly (under its lock); closing an issue goes through the operator HTTP API.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from typing import Any, Literal

import httpx
import uvicorn

from feedbackloop.trackers.keys import parse_issue_ref
from feedbackloop_testing.standins.app import create_app, env_for
from feedbackloop_testing.standins.faults import QuietDrops
from feedbackloop_testing.standins.state import Fault, StandinConfig, State

__all__ = ["StandinServer"]


class StandinServer:
    def __init__(self, config: StandinConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or StandinConfig()
        self.app = create_app(self.config)
        self.state: State = self.app.state.standins
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off"))
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30) -> StandinServer:
        logging.getLogger("uvicorn.error").addFilter(QuietDrops())
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="standins", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the stand-ins exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stand-ins did not start within {timeout:g} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what a test reads -------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """TRACKER_* and NOTIFICATION_* variables pointing the clients at these stand-ins."""
        return env_for(self.url, self.config)

    def issues(self, vendor: Literal["github", "jira", "linear"]) -> list[dict[str, Any]]:
        """The issues ``vendor`` holds, as the vendor's API shows them (GitHub, Jira) or as GraphQL nodes (Linear)."""
        items: list[dict[str, Any]] = self.state.snapshot(vendor)
        return items

    def comments(self, ticket_id: int | str) -> list[dict[str, Any]]:
        """The comments on a Zendesk ticket (empty when it was never touched)."""
        with self.state.lock:
            held = self.state.zendesk.get(int(ticket_id))
            return copy.deepcopy(held["comments"]) if held else []

    def conversation_parts(self, conversation_id: str) -> list[dict[str, Any]]:
        """The parts (replies and notes) of an Intercom conversation (empty when never touched)."""
        with self.state.lock:
            held = self.state.intercom.get(str(conversation_id))
            return copy.deepcopy(held["conversation_parts"]["conversation_parts"]) if held else []

    def requests(self, vendor: str) -> list[dict[str, Any]]:
        """The requests ``vendor`` received: method, path, query, status (``dropped`` for a down fault), body."""
        with self.state.lock:
            return copy.deepcopy(self.state.requests[vendor])

    def webhooks(self) -> list[dict[str, Any]]:
        """Webhook deliveries sent: tracker, event, issue key, url, receiver's status or error, payload."""
        items: list[dict[str, Any]] = self.state.snapshot("webhooks")
        return items

    # --- what a test sets up -------------------------------------------------------------------------------------
    def fault(self, vendor: str, kind: Literal["status", "down", "lose_answer"] = "status", *, status: int = 503,
              retry_after: float | None = None, times: int = 1, method: str | None = None,
              path_contains: str | None = None) -> Fault:
        """The next ``times`` matching requests to ``vendor`` fail that way (see :class:`Fault`)."""
        return self.state.add_fault(Fault(vendor=vendor, kind=kind, status=status,  # type: ignore[arg-type]
                                          retry_after=retry_after, times=times, method=method,
                                          path_contains=path_contains))

    def missing(self, vendor: str, target: str | int) -> None:
        """``target`` (owner/repo, project or team key, ticket or conversation id) answers 404 from now on."""
        self.state.set_missing(vendor, target)

    def configure_webhooks(self, url_base: str | None, *, github_secret: str | None = None,
                           jira_secret: str | None = None, linear_secret: str | None = None) -> None:
        """Send webhooks to ``{url_base}/github|jira|linear``, signed with these secrets."""
        with self.state.lock:
            self.config.webhook_url_base = url_base
            self.config.github_secret, self.config.jira_secret = github_secret, jira_secret
            self.config.linear_secret = linear_secret

    def reset(self) -> None:
        """Forget issues, tickets, conversations, faults and logs (the configuration stays)."""
        self.state.reset()

    # --- closing issues (fires the webhook; async so a receiver on the caller's loop can answer) -----------------
    async def close_issue(self, key: str, outcome: Literal["done", "cancelled"] = "done") -> dict[str, Any] | None:
        """Close ``key`` (``github:acme/web#1``, ``jira:AUTH-1``, ``linear:ENG-1``) as fixed or not, as its vendor
        would; the webhook delivery it fired (with the receiver's status), or None when nothing changed."""
        ref = parse_issue_ref(key)
        if ref.tracker == "github":
            repo, _, number = ref.local_id.rpartition("#")
            path, body = f"github/repos/{repo}/issues/{number}/close", {
                "state_reason": "completed" if outcome == "done" else "not_planned"}
        elif ref.tracker == "jira":
            path, body = f"jira/issues/{ref.local_id}/transition", {
                "to": "Done", "resolution": "Done" if outcome == "done" else "Won't Do"}
        else:
            path, body = f"linear/issues/{ref.local_id}/state", {"state": "Done" if outcome == "done" else "Canceled"}
        return await self._operate(path, body)

    async def reopen_issue(self, key: str) -> dict[str, Any] | None:
        ref = parse_issue_ref(key)
        if ref.tracker == "github":
            repo, _, number = ref.local_id.rpartition("#")
            return await self._operate(f"github/repos/{repo}/issues/{number}/reopen", {})
        if ref.tracker == "jira":
            return await self._operate(f"jira/issues/{ref.local_id}/transition", {"to": "To Do"})
        return await self._operate(f"linear/issues/{ref.local_id}/state", {"state": "Todo"})

    async def _operate(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
            answer = await http.post(f"/_standin/{path}", json=body)
        answer.raise_for_status()
        webhook: dict[str, Any] | None = answer.json().get("webhook")
        return webhook
