"""GitHub: ``X-Hub-Signature-256: sha256=`` hex HMAC-SHA256 of the body; event name in ``X-GitHub-Event``.

``issues`` (opened), ``issue_comment`` (created) and ``discussion`` (created) from repositories on the
allow-list (``INGEST_GITHUB_REPOSITORIES``; empty allows every repository); ``ping`` is answered. Comments
by the repository's owners, members and collaborators are ignored: they are the team, not customers."""

from __future__ import annotations

from typing import Any

from feedbackloop.contracts.events import Channel
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    Verified,
    as_datetime,
    as_dict,
    as_list,
    build,
    dig,
    text_of,
)
from ingest.domain.connectors.hmac_schemes import verify_body_hmac
from ingest.domain.text import to_text

_TEAM = {"OWNER", "MEMBER", "COLLABORATOR"}
_TAKEN = {
    ("issues", "opened"): "issue",
    ("issue_comment", "created"): "comment",
    ("discussion", "created"): "discussion",
}


class GitHub:
    source: str = "github"
    channel: Channel = "community"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(
            delivery, secret, header="x-hub-signature-256", algorithm="sha256", encoding="hex", prefix="sha256="
        )
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        event = delivery.header("x-github-event") or ""
        if event == "ping":
            return Outcome(ignored="ping", reply={"ok": True, "zen": dig(payload, "zen")})
        what = _TAKEN.get((event, str(dig(payload, "action"))))
        if what is None:
            return Outcome.ignore(f"unsupported GitHub event {event!r} with action {dig(payload, 'action')!r}")
        repository = str(dig(payload, "repository", "full_name") or "")
        allowed = {r.lower() for r in options.github_repositories}
        if allowed and repository.lower() not in allowed:
            return Outcome.ignore(f"repository {repository!r} is not on INGEST_GITHUB_REPOSITORIES")
        thing = as_dict(dig(payload, "comment" if what == "comment" else what))
        if what == "comment" and thing.get("author_association") in _TEAM:
            return Outcome.ignore("a comment by the repository's team is not customer feedback")
        title = dig(payload, "issue", "title") if what == "comment" else thing.get("title")
        labels = [dig(label, "name") for label in as_list(dig(payload, "issue", "labels"))]
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=f"{repository}:{what}:{thing.get('id')}" if thing.get("id") is not None else None,
            text=to_text(text_of(thing.get("body")), strip_quotes=True),
            subject=text_of(title),
            author_id=dig(thing, "user", "id"),
            name=text_of(dig(thing, "user", "login")),
            customer_name=text_of(dig(payload, "organization", "login")),
            url=text_of(thing.get("html_url")),
            created_at=as_datetime(thing.get("created_at")),
            tags=[f"repo:{repository}"] + [label for label in labels if isinstance(label, str)],
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)
