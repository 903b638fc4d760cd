"""What people read: a delivery's payload rendered as a Slack Block Kit message or an email, and digests. Pure.

Every payload (see :mod:`notification.domain.payload`) is first reduced to a :class:`Message` — a title, a
severity (and its colour), the key numbers, up to three quotes, and a link to the dashboard — then laid out for
each channel. A digest payload (``"type": "digest"``) rolls up the items a throttle or quiet hours held back.

* **feedback**: the title names the kind, the customer and the subject; severity follows urgency
  (critical → critical, high → warning, else info); the quote is the (already redacted) text.
* **insight**: its own title and severity; the key numbers are its metrics (and, for a ``channel_paused`` one, the
  rule, team and channel); quotes come from an optional ``quotes`` (or ``examples``) list on the insight.
* **loop_closed** (one customer's view, :mod:`notification.domain.loop`): which issue was fixed (title, link), the
  release if any, the customer (plan, MRR, owner) and their items (count and ids; no customer text).
* **digest**: "N more matches of <rule>", the highest severity of its items, and the first three items' quotes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notification.domain.noise import SEVERITY_RANK

__all__ = [
    "COLOURS",
    "DIGEST_ITEMS_LISTED",
    "Message",
    "build_digest_payload",
    "email_parts",
    "issue_markdown",
    "issue_title",
    "item_summary",
    "slack_body",
    "summarize",
]

COLOURS = {"critical": "#D92D20", "warning": "#F79009", "info": "#2E90FA"}
DIGEST_ITEMS_LISTED = 50
_QUOTES = 3
_QUOTE_CHARS = 300
_URGENCY_SEVERITY = {"critical": "critical", "high": "warning"}
_REASONS = {"throttle": "over the rule's throttle", "quiet_hours": "held during the team's quiet hours"}


@dataclass(frozen=True)
class Message:
    title: str
    severity: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    link: str = ""
    footer: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, URL) besides the dashboard's

    @property
    def colour(self) -> str:
        return COLOURS.get(self.severity, COLOURS["info"])


def _clip(text: Any, limit: int) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _quotes_of(data: Mapping[str, Any]) -> list[str]:
    raw = data.get("quotes") or data.get("examples") or []
    quotes: list[str] = []
    if isinstance(raw, list):
        for entry in raw:
            text = entry.get("text") if isinstance(entry, Mapping) else entry
            if isinstance(text, str) and text.strip():
                quotes.append(_clip(text, _QUOTE_CHARS))
    return quotes[:_QUOTES]


def item_summary(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One line of a digest: type, event id, title, severity and quote of a message payload."""
    message = summarize(payload, "")
    return {"type": payload.get("type"), "event_id": payload.get("event_id"), "title": message.title,
            "severity": message.severity, "quote": message.quotes[0] if message.quotes else None}


def build_digest_payload(*, rule: Mapping[str, Any], reason: str, window_from: datetime, window_to: datetime,
                         items: Sequence[Mapping[str, Any]], digest_id: str) -> dict[str, Any]:
    """The body of a digest: how many items were held, why, over which window, and the first items listed."""
    return {"type": "digest", "rule": dict(rule), "reason": reason, "count": len(items),
            "window": {"from": window_from.isoformat(), "to": window_to.isoformat()},
            "items": [item_summary(p) for p in items[:DIGEST_ITEMS_LISTED]],
            "event_ids": [p.get("event_id") for p in items], "digest_id": digest_id}


def summarize(payload: Mapping[str, Any], dashboard_url: str) -> Message:
    """The channel-neutral message of a payload; total: missing fields are left out, never an error."""
    rule = payload.get("rule") or {}
    footer = f"rule “{rule.get('name', '?')}” · team {rule.get('team', '?')}"
    kind = payload.get("type")
    if kind == "digest":
        return _digest(payload, dashboard_url, footer)
    data = payload.get("data") or {}
    if kind == "insight" and data.get("type") == "loop_closed" and isinstance(data.get("loop"), Mapping):
        return _loop(data, dashboard_url, footer)
    if kind == "insight":
        return _insight(data, dashboard_url, footer)
    return _feedback(data, dashboard_url, footer)


def _feedback(data: Mapping[str, Any], link: str, footer: str) -> Message:
    customer = data.get("customer") or {}
    who = customer.get("name") or customer.get("id")
    label = str(data.get("kind") or "feedback").replace("_", " ").capitalize()
    about = data.get("subject") or data.get("text") or ""
    plan = customer.get("plan")
    title = _clip(f"{label}{f' from {who}' if who else ''}{f' ({plan})' if plan else ''}: {about}", 150)
    facts: list[tuple[str, str]] = []
    for name, value in (("Kind", data.get("kind")), ("Urgency", data.get("urgency")),
                        ("Sentiment", _sentiment(data.get("sentiment"))),
                        ("Customer", who), ("Plan", customer.get("plan")),
                        ("MRR", _number(customer["mrr"]) if customer.get("mrr") is not None else None),
                        ("Themes", ", ".join(str(t.get("name") or t.get("id")) for t in data.get("themes") or [])),
                        ("Product area", data.get("product_area")), ("Source", data.get("source"))):
        if value not in (None, ""):
            facts.append((name, str(value)))
    text = data.get("text")
    return Message(title=title, severity=_URGENCY_SEVERITY.get(str(data.get("urgency")), "info"), facts=facts,
                   quotes=[_clip(text, _QUOTE_CHARS)] if isinstance(text, str) and text.strip() else [],
                   link=link, footer=footer)


def _sentiment(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    score = value.get("score")
    return f"{value.get('label')}" + (f" ({_number(score)})" if isinstance(score, (int, float)) else "")


def _insight(data: Mapping[str, Any], link: str, footer: str) -> Message:
    facts: list[tuple[str, str]] = [("Type", str(data.get("type", "")).replace("_", " "))]
    if data.get("theme"):
        facts.append(("Theme", str(data["theme"])))
    paused = data.get("paused_channel")
    if isinstance(paused, Mapping):  # type channel_paused: which channel of which rule
        facts += [("Rule", str(paused.get("rule_name", "?"))), ("Team", str(paused.get("team", "?"))),
                  ("Channel", f"{paused.get('type', '?')} {paused.get('index', '?')}: {paused.get('target', '?')}")]
    metrics = data.get("metrics") or {}
    for key in ("observed", "expected", *sorted(k for k in metrics if k not in ("observed", "expected"))):
        if key in metrics and metrics[key] is not None and len(facts) < 10:
            facts.append((key.replace("_", " ").capitalize(), _number(metrics[key])))
    window = data.get("window") or {}
    if window.get("from") and window.get("to") and len(facts) < 10:
        facts.append(("Window", f"{window['from']} → {window['to']}"))
    evidence = data.get("evidence") or []
    if evidence and len(facts) < 10:
        facts.append(("Evidence", f"{len(evidence)} items"))
    return Message(title=_clip(data.get("title") or "Insight", 150), severity=str(data.get("severity", "info")),
                   facts=facts, quotes=_quotes_of(data), link=link, footer=footer)


_ITEM_IDS_LISTED = 10


def _loop(data: Mapping[str, Any], link: str, footer: str) -> Message:
    """A closed loop: the issue, the release, and the customer of this view (or the count of customers)."""
    loop = data["loop"]
    issue = loop.get("issue") if isinstance(loop.get("issue"), Mapping) else {}
    release = loop.get("release") if isinstance(loop.get("release"), Mapping) else {}
    customers = [c for c in loop.get("customers") or [] if isinstance(c, Mapping)]
    issue_title = str(issue.get("title") or issue.get("issue_key") or "a linked issue")
    facts: list[tuple[str, str]] = [("Issue", f"{issue_title} ({issue.get('issue_key', '?')}, "
                                              f"{issue.get('status', '?')})")]
    if release.get("version"):
        facts.append(("Release", str(release["version"])))
    if data.get("theme"):
        facts.append(("Theme", str(data["theme"])))
    if len(customers) == 1:
        customer = customers[0]
        who = str(customer.get("id") or "?")
        title = f"Fixed: {issue_title} — {who} asked for it"
        items = [str(i) for i in customer.get("items") or []]
        facts += [(name, str(value)) for name, value in (
            ("Customer", who), ("Plan", customer.get("plan")),
            ("MRR", _number(customer["mrr"]) if customer.get("mrr") is not None else None),
            ("Owner", customer.get("owner"))) if value not in (None, "")]
        facts.append(("Their items", _number(len(items))))
        if items:
            more = f" and {len(items) - _ITEM_IDS_LISTED} more" if len(items) > _ITEM_IDS_LISTED else ""
            facts.append(("Item ids", ", ".join(items[:_ITEM_IDS_LISTED]) + more))
        conversations = [f"{c.get('source')} {c.get('id')}" for c in customer.get("conversations") or []
                         if isinstance(c, Mapping)]
        if conversations:
            facts.append(("Conversations", ", ".join(conversations[:5])))
    else:
        title = str(data.get("title") or f"Fixed: {issue_title}")
        facts += [("Customers", _number(len(customers))), ("Items", _number(loop.get("items", 0)))]
    links = [(label, str(url)) for label, url in (("The issue", issue.get("url")),
                                                  ("The release", release.get("link")))
             if isinstance(url, str) and url.startswith(("https://", "http://"))]  # never a javascript: link
    return Message(title=_clip(title, 150), severity=str(data.get("severity", "info")), facts=facts[:12],
                   link=link, footer=footer, links=links)


def _digest(payload: Mapping[str, Any], link: str, footer: str) -> Message:
    items = payload.get("items") or []
    count = int(payload.get("count") or len(items))
    rule = payload.get("rule") or {}
    reason = str(payload.get("reason", ""))
    severity = max((str(i.get("severity", "info")) for i in items), key=lambda s: SEVERITY_RANK.get(s, 0),
                   default="info")
    window = payload.get("window") or {}
    facts = [("Items", _number(count)), ("Why held", _REASONS.get(reason, reason)),
             ("Window", f"{window.get('from', '?')} → {window.get('to', '?')}")]
    titles = [str(i.get("title")) for i in items[:5] if i.get("title")]
    if titles:
        facts.append(("First", "; ".join(_clip(t, 80) for t in titles)))
    quotes = [str(i["quote"]) for i in items if i.get("quote")][:_QUOTES]
    title = _clip(f"Digest: {count} more match{'es' if count != 1 else ''} of “{rule.get('name', '?')}”", 150)
    return Message(title=title, severity=severity, facts=facts, quotes=quotes, link=link, footer=footer)


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(message: Message) -> dict[str, Any]:
    """A Slack incoming-webhook body: fallback ``text`` and one attachment (the severity colour) of Block Kit blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(message.title, 150), "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": f"*{message.severity.upper()}* · {_mrkdwn(message.footer)}"}]},
    ]
    if message.facts:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{_mrkdwn(_clip(k, 100))}*\n{_mrkdwn(_clip(v, 1800))}"}
            for k, v in message.facts[:10]]})
    for quote in message.quotes[:_QUOTES]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "> " + _mrkdwn(quote)}})
    buttons = [{"type": "button", "url": url, "text": {"type": "plain_text", "text": _clip(label, 70)}}
               for label, url in message.links]
    if message.link:
        buttons.insert(0, {"type": "button", "url": message.link,
                           "text": {"type": "plain_text", "text": "Open the dashboard"}})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:5]})
    # The fallback text is mrkdwn too (notifications, old clients): a customer's "<!channel>" or "<https://x|bank>"
    # must arrive as text, not as a mention or a disguised link.
    return {"text": f"[{message.severity}] {_mrkdwn(message.title)}",
            "attachments": [{"color": message.colour, "blocks": blocks}]}


def email_parts(message: Message) -> tuple[str, str, str]:
    """``(subject, text, html)`` of an email carrying ``message``."""
    subject = _clip(f"[{message.severity}] {message.title}", 200)
    lines = [message.title, "", *(f"{k}: {v}" for k, v in message.facts)]
    if message.quotes:
        lines += ["", *(f"> {q}" for q in message.quotes)]
    if message.links:
        lines += ["", *(f"{label}: {url}" for label, url in message.links)]
    if message.link:
        lines += ["", f"Dashboard: {message.link}"]
    lines += ["", f"-- {message.footer}"]
    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in message.facts)
    quotes = "".join(f"<blockquote>{e(q)}</blockquote>" for q in message.quotes)
    link = "".join(f"<p><a href='{e(url)}'>{e(label)}</a></p>" for label, url in message.links)
    link += f"<p><a href='{e(message.link)}'>Open the dashboard</a></p>" if message.link else ""
    body = (f"<html><body><div style='border-left:6px solid {message.colour};padding-left:12px'>"
            f"<h2>{e(message.title)}</h2><table>{rows}</table>{quotes}{link}"
            f"<p style='color:#667085'>{e(message.footer)}</p></div></body></html>")
    return subject, "\n".join(lines) + "\n", body


def issue_title(payload: Mapping[str, Any]) -> str:
    """The title of the tracker issue a tracker channel files for an insight: the insight's own."""
    data = payload.get("data") or {}
    return _clip(data.get("title") or "Insight", 200)


def issue_markdown(payload: Mapping[str, Any], dashboard_url: str) -> str:
    """The Markdown body of the tracker issue filed for an insight: what it is, its metrics, its window, how many
    items are its evidence, a link to the dashboard (bullets, bold and links: what every tracker renders)."""
    data = payload.get("data") or {}
    rule = payload.get("rule") or {}
    kind = str(data.get("type", "insight")).replace("_", " ")
    lines = [f"**{str(data.get('severity', 'info')).capitalize()}** {kind}"
             + (f" in theme **{_md(data['theme'])}**" if data.get("theme") else "") + ".", ""]
    raw_metrics = data.get("metrics")
    metrics: Mapping[str, Any] = raw_metrics if isinstance(raw_metrics, Mapping) else {}
    keys = [k for k in ("observed", "expected") if k in metrics] + sorted(k for k in metrics
                                                                          if k not in ("observed", "expected"))
    if keys:
        lines += ["Metrics:", *(f"- {_md(k.replace('_', ' ').capitalize())}: {_md(_number(metrics[k]))}"
                                for k in keys[:20] if metrics[k] is not None), ""]
    window = data.get("window") or {}
    if window.get("from") and window.get("to"):
        lines += [f"Window: {_md(window['from'])} → {_md(window['to'])}", ""]
    evidence = data.get("evidence") or []
    lines += [f"Evidence: {len(evidence)} feedback item{'s' if len(evidence) != 1 else ''}.", ""]
    if dashboard_url.startswith(("https://", "http://")):
        lines += [f"[Open the dashboard]({dashboard_url})", ""]
    lines.append(f"Filed by Feedback Loop (rule “{_md(rule.get('name', '?'))}”, team {_md(rule.get('team', '?'))}, "
                 f"insight {_md(data.get('insight_id', '?'))}).")
    return "\n".join(lines)


def _md(value: Any) -> str:
    """Plain text for Markdown: no markup, links or HTML sneaks in from a title or a theme name."""
    text = " ".join(str(value).split())
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)
