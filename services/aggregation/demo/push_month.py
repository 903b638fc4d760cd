"""``make demo``: push a realistic month of feedback through ingest's ``POST /v1/feedback``, with an incident.

About 3,000 items over the last 30 days (busier weekday afternoons, quiet weekends), each with a customer
(plan and mrr), a channel and, for surveys, an NPS or CSAT rating. Two hours ago release 4.2.1 went out
and login broke: a burst of login complaints from paying customers follows it, with poor ratings. The
release marker is posted to aggregation's ``POST /v1/releases``. Open http://127.0.0.1:8003/ afterwards:
the spike insight names the release.

Then the loop closes on three themes: each is linked to a tracker issue by its URL (a GitHub, a Jira and a
Linear issue; no tracker credentials needed to link an existing issue), and release 4.3.0, which ships two of
them, closes their loops — ``loop_closed`` insights naming every customer who asked, with their account owners.
The loop's KPIs (``GET /v1/kpis``, section ``loop``) are printed at the end.

Usage: ``.venv/bin/python services/aggregation/demo/push_month.py [--ingest URL] [--aggregation URL] [--key KEY]``
"""

from __future__ import annotations

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

TEXTS = {  # per theme: complaints and bugs, questions and requests, praise (mixed tone, like real feedback)
    "login": ["I can't log in, the password reset link never arrives", "SSO login keeps failing with a SAML error",
              "Locked out after entering the two-factor code, please help", "My session expires every few minutes",
              "How do I enable single sign-on for my team?", "Can we enforce two-factor authentication for all users?",
              "The new login page with passkeys is great", "Signing in with Google works perfectly now, thanks"],
    "billing": ["We were charged twice this month, we need a refund", "The invoice is missing our VAT number",
                "Why did our subscription price change without notice?", "Refund still not processed after 2 weeks",
                "Can we pay annually by bank transfer?", "How do I download past invoices?",
                "Upgrading our plan was quick and painless", "Billing support sorted out our invoice in minutes"],
    "export": ["Export to Excel times out on large reports", "The PDF export cuts off the last column",
               "CSV export mangles non-English characters", "Please add CSV export for the audit log",
               "Would love scheduled exports to S3", "Is there an API to export all our data?",
               "The new Excel export is exactly what we needed", "Exporting reports to PDF works great now"],
    "onboarding": ["The setup wizard was confusing for new users", "Signup asks for too much information",
                   "Inviting teammates during setup failed with an error", "Where do I find the getting started guide?",
                   "Could onboarding include a sample project?", "The getting started tutorial is great, thanks!",
                   "The onboarding checklist helped our team a lot", "Setup took five minutes, very smooth"],
    "performance": ["The dashboard is very slow to load this week", "Search takes forever on big projects",
                    "The app freezes when opening large files", "Reports time out when filtering by date",
                    "Is there a way to speed up loading of large boards?", "Pages load fast now, great improvement",
                    "Performance has been excellent since the last update", "The app feels much snappier, well done"],
    "mobile": ["The iOS app crashes when I open notifications", "Push notifications arrive hours late",
               "The Android app logs me out every day", "Offline mode loses my edits on the phone",
               "Please add dark mode to the Android app", "Will the iPad app support split view?",
               "The mobile app is smooth and reliable", "Love the new widget on iOS"],
}
PLANS = [("free", 0.0), ("pro", 99.0), ("business", 499.0), ("enterprise", 2500.0)]
OWNERS = ["maria@csm.example", "tom@csm.example", "lea@csm.example"]
#: Themes linked to tracker issues after the month is in; the release ships the first two.
LINKS = [("data", "https://github.com/acme/web/issues/112"), ("billing", "https://acme.atlassian.net/browse/BILL-7"),
         ("mobile", "https://linear.app/acme/issue/MOB-31/offline-edits-lost")]
INCIDENT = ["Since the update I cannot log in at all", "Login broken after today's release, whole team locked out",
            "SSO login fails since this morning, urgent", "Password login returns an error since the update",
            "We cannot sign in anymore, this is blocking our work"]


def _customers(rng: random.Random) -> list[dict[str, object]]:
    out = []
    for i in range(160):
        plan, mrr = rng.choices(PLANS, weights=[50, 30, 14, 6])[0]
        customer: dict[str, object] = {"id": f"cust-{i:03d}", "name": f"Customer {i:03d}", "plan": plan,
                                       "mrr": round(mrr * rng.uniform(0.8, 1.6), 0) if mrr else 0.0}
        if plan in ("business", "enterprise"):  # paying accounts have an owner on the vendor's side
            customer["owner"] = OWNERS[i % len(OWNERS)]
        out.append(customer)
    return out


def _rating(rng: random.Random, bad: bool) -> dict[str, object] | None:
    roll = rng.random()
    if roll < 0.18:
        weights = [1, 1, 1, 1, 2, 3, 4, 8, 10, 14, 14]
        value = rng.choice([0, 2, 3, 5, 6]) if bad else rng.choices(range(11), weights=weights)[0]
        return {"kind": "nps", "value": value, "scale": 10}
    if roll < 0.30:
        value = rng.choice([1, 2, 2, 3]) if bad else rng.choices([1, 2, 3, 4, 5], weights=[1, 2, 4, 10, 12])[0]
        return {"kind": "csat", "value": value, "scale": 5}
    return None


def build(now: datetime, seed: int = 11) -> tuple[list[dict[str, object]], datetime]:
    rng = random.Random(seed)
    customers = _customers(rng)
    items: list[dict[str, object]] = []
    start = now - timedelta(days=30)
    hour = start.replace(minute=0, second=0, microsecond=0)
    n = 0
    while hour < now - timedelta(hours=1):
        weekend = hour.weekday() >= 5
        rate = 7.5 * (0.35 + 1.3 * math.exp(-((hour.hour - 14) ** 2) / 20)) * (0.5 if weekend else 1.0)
        for _ in range(rng.randint(0, int(rate * 2))):
            theme = rng.choice(list(TEXTS))
            at = hour + timedelta(seconds=rng.randrange(3600))
            if at >= now:
                continue
            text = rng.choice(TEXTS[theme])
            if rng.random() < 0.4:
                text = rng.choice(["Hi team, ", "Hello, ", "Quick note: ", "FYI: "]) + text[0].lower() + text[1:]
            items.append({"source": "demo", "external_id": f"demo-{n}", "text": text,
                          "channel": rng.choice(["ticket", "chat", "survey", "review", "email"]),
                          "customer": rng.choice(customers), "rating": _rating(rng, False),
                          "created_at": at.isoformat()})
            n += 1
        hour += timedelta(hours=1)
    release_at = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2) + timedelta(minutes=2)
    paying = [c for c in customers if c["plan"] in ("business", "enterprise")]
    for i in range(30):
        at = release_at + timedelta(minutes=11 + i * 3)
        items.append({"source": "demo", "external_id": f"incident-{i}", "text": rng.choice(INCIDENT),
                      "channel": rng.choice(["ticket", "chat"]), "customer": rng.choice(paying),
                      "rating": {"kind": "nps", "value": rng.choice([0, 1, 2, 3]), "scale": 10},
                      "created_at": at.isoformat()})
    items.sort(key=lambda i: str(i["created_at"]))
    for item in items:
        if item["rating"] is None:
            del item["rating"]
    return items, release_at


def expected_kpis(items: list[dict[str, object]], now: datetime) -> dict[str, float | int | None]:
    """NPS and CSAT of the items the dashboard's 7-day window holds (it ends on the next whole hour), as sent."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=7)
    def ratings(kind: str) -> list[float]:
        out = []
        for item in items:
            rating = item.get("rating")
            if isinstance(rating, dict) and rating["kind"] == kind and \
                    start <= datetime.fromisoformat(str(item["created_at"])) < end:
                out.append(float(rating["value"]))
        return out

    nps, csat = ratings("nps"), ratings("csat")
    return {"nps": round(100 * (sum(v >= 9 for v in nps) - sum(v <= 6 for v in nps)) / len(nps), 1) if nps else None,
            "nps_responses": len(nps), "csat": round(100 * sum(v >= 4 for v in csat) / len(csat), 1) if csat else None,
            "csat_responses": len(csat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingest", default="http://127.0.0.1:8001")
    parser.add_argument("--aggregation", default="http://127.0.0.1:8003")
    parser.add_argument("--key", default=None, help="an API key with the write scope (default: var/api-key)")
    args = parser.parse_args()
    key = args.key or Path("var/api-key").read_text().strip()
    headers = {"authorization": f"Bearer {key}"}
    now = datetime.now(UTC)
    items, release_at = build(now)
    with httpx.Client(headers=headers, timeout=60) as client:
        posted = client.post(f"{args.aggregation}/v1/releases", json={
            "release_id": "demo-4.2.1", "version": "4.2.1", "service": "web", "released_at": release_at.isoformat(),
            "link": "https://example.com/releases/4.2.1", "description": "New login page"})
        posted.raise_for_status()
        for i in range(0, len(items), 500):
            response = client.post(f"{args.ingest}/v1/feedback", json=items[i:i + 500])
            response.raise_for_status()
            print(f"pushed {min(i + 500, len(items))}/{len(items)} items")
        close_loops(client, args.aggregation, expected=len(items))
    kpis = expected_kpis(items, now)
    print(f"done: {len(items)} items over 30 days, release 4.2.1 at {release_at:%H:%M} UTC followed by a login "
          f"incident.\nThe dashboard's KPI cards (last 7 days) should read NPS {kpis['nps']} "
          f"({kpis['nps_responses']} responses) and CSAT {kpis['csat']}% ({kpis['csat_responses']} responses)."
          f"\nOpen {args.aggregation}/ in a browser (give the detectors ~30 s after classification).")


def close_loops(client: httpx.Client, aggregation: str, *, expected: int, timeout: float = 600) -> None:
    """Once every item is aggregated: link three themes to issues, ship two in a release, print the loop KPIs."""
    deadline = time.monotonic() + timeout
    # 31 days: the month reaches back past the 30-day window that ends with the current hour
    while (stored := client.get(f"{aggregation}/v1/kpis", params={"window": "31d"}).json()["current"]["volume"]) \
            < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: only {stored}/{expected} items aggregated after {timeout:.0f} s")
        print(f"waiting for the loop: {stored}/{expected} items aggregated", flush=True)
        time.sleep(5)
    for theme, url in LINKS:
        linked = client.post(f"{aggregation}/v1/themes/{theme}/links", json={"issue": url})
        if linked.status_code not in (201, 409):  # 409: linked by an earlier run
            raise SystemExit(f"demo: linking {theme} to {url} failed: {linked.status_code} {linked.text}")
    shipped = client.post(f"{aggregation}/v1/releases", json={
        "release_id": "demo-4.3.0", "version": "4.3.0", "service": "web", "link": "https://example.com/releases/4.3.0",
        "description": "Fixes exports and invoices", "issues": [url for _, url in LINKS[:2]]})
    shipped.raise_for_status()
    while (loop := client.get(f"{aggregation}/v1/kpis", params={"window": "30d"}).json()["loop"])["closed"] < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: the release closed {loop['closed']} of 2 loops within {timeout:.0f} s")
        time.sleep(1)
    shown = {k.removesuffix("_s"): f"{v / 86_400:.1f} days" if k.endswith("_s") and v is not None else v
             for k, v in loop.items()}
    print("the loop (last 30 days): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown.items()))


if __name__ == "__main__":
    main()
