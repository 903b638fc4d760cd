"""Survey tools. Typeform: ``Typeform-Signature: sha256=`` base64 HMAC-SHA256 of the body; ``form_response``
maps free-text answers to the text, an NPS / opinion-scale / rating answer to the rating, hidden fields to
the author and customer. Delighted: ``X-Delighted-Webhook-Signature: sha256=`` hex HMAC-SHA256 of the body
under the API key; ``survey_response.created|updated`` maps the 0-10 score as NPS and the comment as text."""

from __future__ import annotations

from typing import Any

from feedbackloop.contracts import Customer
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

_CUSTOMER_KEYS = ("customer_id", "account_id", "company_id", "company", "organization", "org_id")
_PLAN_KEYS = ("plan", "tier")


class Typeform:
    source: str = "typeform"
    channel: Channel = "survey"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(
            delivery, secret, header="typeform-signature", algorithm="sha256", encoding="base64", prefix="sha256="
        )
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        if dig(payload, "event_type") != "form_response":
            return Outcome.ignore(f"unsupported Typeform event type {dig(payload, 'event_type')!r}")
        response = as_dict(dig(payload, "form_response"))
        fields = {
            f["id"]: f
            for f in as_list(dig(response, "definition", "fields"))
            if isinstance(f, dict) and isinstance(f.get("id"), str)
        }
        texts: dict[str, list[str]] = {"long_text": [], "short_text": []}
        scores: dict[str, tuple[float, int]] = {}
        email = None
        for answer in as_list(response.get("answers")):
            if not isinstance(answer, dict):
                continue
            key = dig(answer, "field", "id")
            field = (fields.get(key) if isinstance(key, str) else None) or as_dict(answer.get("field"))
            ftype = field.get("type") or dig(answer, "field", "type")
            if not isinstance(ftype, str):
                continue
            if ftype in texts and (said := text_of(answer.get("text"))):
                texts[ftype].append(said.strip())
            elif ftype in ("nps", "opinion_scale", "rating") and _finite(answer.get("number")):
                steps = dig(field, "properties", "steps")
                value = float(answer["number"])
                scale = (
                    10 if ftype == "nps" else int(steps) if isinstance(steps, int) else (5 if ftype == "rating" else 10)
                )
                scores.setdefault(ftype, (value, max(scale, int(value), 1)))
            elif ftype == "email" and (address := text_of(answer.get("email"))):
                email = address
        rating = None
        for kind, label in (("nps", "nps"), ("opinion_scale", "csat"), ("rating", "stars")):
            if kind in scores:
                rating = (label, *scores[kind])
                break
        raw_hidden = response.get("hidden")
        hidden: dict[str, Any] = raw_hidden if isinstance(raw_hidden, dict) else {}
        text = "\n\n".join(texts["long_text"] or texts["short_text"])
        if not text and rating is not None:
            text = f"{rating[0].upper()} {rating[1]:g}/{rating[2]}"
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=response.get("token"),
            text=text,
            subject=text_of(dig(response, "definition", "title")),
            author_id=text_of(hidden.get("user_id")) or text_of(hidden.get("email")),
            email=email or text_of(hidden.get("email")),
            customer_id=next((hidden[k] for k in _CUSTOMER_KEYS if text_of(hidden.get(k))), None),
            rating=rating,
            created_at=as_datetime(response.get("submitted_at")),
            tags=[f"form:{response.get('form_id')}"] if response.get("form_id") else None,
        )
        if not isinstance(item, str) and any(text_of(hidden.get(k)) for k in _PLAN_KEYS):
            plan = next(hidden[k] for k in _PLAN_KEYS if text_of(hidden.get(k)))
            customer = item.customer or Customer()
            item = item.model_copy(update={"customer": customer.model_copy(update={"plan": str(plan)})})
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)


class Delighted:
    source: str = "delighted"
    channel: Channel = "survey"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(
            delivery,
            secret,
            header="x-delighted-webhook-signature",
            algorithm="sha256",
            encoding="hex",
            prefix="sha256=",
        )
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        event = dig(payload, "event_type")
        if event not in ("survey_response.created", "survey_response.updated"):
            return Outcome.ignore(f"unsupported Delighted event type {event!r}")
        data = as_dict(dig(payload, "event_data"))
        score = data.get("score")
        if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 10:
            return Outcome.ignore("the response has no 0-10 score")
        raw_properties = data.get("person_properties")
        properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=data.get("id"),
            text=text_of(data.get("comment")) or f"NPS {score}/10",
            author_id=dig(data, "person", "id"),
            email=text_of(dig(data, "person", "email")),
            name=text_of(dig(data, "person", "name")),
            customer_id=text_of(properties.get("Company ID")) or text_of(properties.get("company_id")),
            customer_name=text_of(properties.get("Company")) or text_of(properties.get("company")),
            rating=("nps", float(score), 10),
            url=text_of(data.get("permalink")),
            created_at=as_datetime(data.get("created_at")),
            tags=[t for t in as_list(data.get("tags")) if isinstance(t, str)],
        )
        return Outcome([item]) if not isinstance(item, str) else Outcome.ignore(item)


def _finite(value: Any) -> bool:
    """A real number (not a bool, NaN or infinite), as a score must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e12
