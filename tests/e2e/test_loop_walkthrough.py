"""The README's "Close the loop" walkthrough, end to end, on the processes `make run` starts.

Local stand-ins answer as GitHub's API does (and send GitHub's signed `issues` webhook when an issue is closed);
a local mailbox receives what notification sends the customers' owners. The steps are the README's: feedback
about logging in from three customers (two with an owner), a rule that tells owners when a loop closes, the login
theme linked to a new GitHub issue, the issue closed — and each owner told once.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from feedbackloop_testing import free_port, wait_for
from feedbackloop_testing.standins import StandinServer
from feedbackloop_testing.standins.mail import PrintingMailbox, start_mailbox
from feedbackloop_testing.standins.state import StandinConfig
from tests.e2e.system import System

pytestmark = pytest.mark.e2e
GITHUB_SECRET = "walkthrough-github-secret"
THEME = "account.login"
CUSTOMERS = [("acme", "ana@acme.example", "enterprise", 2400), ("globex", "bo@globex.example", "pro", 900),
             ("initech", None, "free", 0)]


@pytest.fixture(scope="module")
def loop_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, StandinServer, PrintingMailbox]]:
    running = System.on_free_ports(tmp_path_factory.mktemp("var"))
    config = StandinConfig(webhook_url_base=f"{running.url('ingest')}/v1/webhooks", github_secret=GITHUB_SECRET)
    smtp_port = free_port()
    controller, mailbox = start_mailbox("127.0.0.1", smtp_port)
    with StandinServer(config) as standins:
        running.extra_env.update(standins.env())
        running.extra_env.update({"NOTIFICATION_SMTP_HOST": "127.0.0.1", "NOTIFICATION_SMTP_PORT": str(smtp_port)})
        running.start()
        try:
            yield running, standins, mailbox
        finally:
            code = running.stop()
            controller.stop()
    assert code == 0, "".join(running.output[-40:])


async def test_closing_the_linked_issue_tells_each_owner_once(
        loop_system: tuple[System, StandinServer, PrintingMailbox]) -> None:
    system, standins, mailbox = loop_system
    headers = {"authorization": f"Bearer {system.api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=15) as client:
        # 1. Feedback about logging in, from three customers.
        for n, (customer, owner, plan, mrr) in enumerate(CUSTOMERS):
            body = {"source": "api", "external_id": f"login-{n}-{uuid.uuid4()}",
                    "text": "I can't log in, the password reset link never arrives",
                    "customer": {"id": customer, "plan": plan, "mrr": mrr, **({"owner": owner} if owner else {})}}
            posted = await client.post(f"{system.url('ingest')}/v1/feedback", json=body)
            assert posted.status_code == 202, posted.text

        async def login_theme() -> list[dict[str, Any]]:
            themes = (await client.get(f"{system.url('aggregation')}/v1/themes")).json()["items"]
            return [t for t in themes if t["id"] == THEME]

        await wait_for(login_theme, lambda ts: bool(ts) and ts[0]["count"] >= 3, timeout=30,
                       what="the login theme with three items")

        # 2. A rule: when a loop closes, email the customer's owner.
        rule = await client.post(f"{system.url('notification')}/v1/rules", json={
            "name": "tell owners when it ships", "team": "customer-success",
            "match": {"all": [{"field": "type", "op": "eq", "value": "loop_closed"}]},
            "channels": [{"type": "email", "to_owner": True}]})
        assert rule.status_code == 201, rule.text

        # 3. File a GitHub issue for the theme.
        link = await client.post(f"{system.url('aggregation')}/v1/themes/{THEME}/links",
                                 json={"create": {"tracker": "github", "repository": "acme/web"}})
        assert link.status_code == 201, link.text
        issue_key = link.json()["issue_key"]
        filed = standins.issues("github")
        assert len(filed) == 1 and "3 reports" in filed[0]["title"] + filed[0]["body"], filed

        # 4. Close it on GitHub: GitHub's signed webhook reaches ingest, the loop closes.
        delivery = await standins.close_issue(issue_key, "done")
        assert delivery is not None and delivery["status"] == 202, delivery

        async def told() -> list[EmailMessage]:
            return list(mailbox.messages)

        await wait_for(told, lambda ms: len(ms) >= 2, timeout=40, what="the owners' emails")
        linked = (await client.get(f"{system.url('aggregation')}/v1/links/{link.json()['link_id']}")).json()
        assert linked["status"] == "done" and linked["loop_closed_at"], linked
        kpis = (await client.get(f"{system.url('aggregation')}/v1/kpis", params={"window": "7d"})).json()
        assert kpis["loop"]["closed"] >= 1 and kpis["loop"]["customers_told"] >= 3, kpis["loop"]

        # Each owner once, and nobody else (the third customer has no owner).
        await asyncio.sleep(3)
        recipients = sorted(a.addr_spec for m in mailbox.messages for a in m["to"].addresses)
        assert recipients == ["ana@acme.example", "bo@globex.example"], recipients

        # The dashboard, rendered by a real browser, shows the theme's issue and that its loop closed.
        dom = await asyncio.to_thread(_rendered, f"{system.url('aggregation')}/")
        row = dom[dom.index("Login &amp; authentication"):]
        assert issue_key in row and "status-done" in row and "loop closed" in row, row[:2000]


def _rendered(url: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian package `chromium` is required (.ci/run installs it)"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url], check=True,
                          capture_output=True, timeout=120).stdout.decode()
