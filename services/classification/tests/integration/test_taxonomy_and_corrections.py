"""Taxonomy control, human corrections and emerging-theme clusters, on a real broker, store and HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from classification.config import ClassificationSettings
from classification.main import create_app
from classification.model.embedding import Encoder
from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    FEEDBACK_RAW,
    RawFeedback,
    feedback_id_for,
)
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import publish_events, query_store, read_events, serve_app, store_url, wait_for

#: Customer messages of a bank's support, written for this test (five intents; the names alone say little).
#: Per intent, the first TAUGHT are stored and corrected to their intent, the rest measure what was learned.
WRITTEN: dict[str, list[str]] = {
    "card_arrival": [
        "I ordered my new card two weeks ago and it still hasn't shown up in the mail",
        "Has my card been posted yet? Nothing in the letterbox so far",
        "The replacement card you sent never reached my house",
        "Where is my card? The app says it was dispatched ages ago",
        "My debit card was supposed to be here last Friday and there is still nothing",
        "Still waiting for the card in the post, can you check what happened to it?",
        "Nothing has come through the door yet, was my card actually mailed?",
        "The card I requested has not been delivered to my address",
        "Can you track the letter with my new card? It is overdue",
        "My partner got her card but mine never turned up",
    ],
    "card_delivery_estimate": [
        "How many days does it usually take for a new card to be delivered?",
        "When can I expect my card if I order it today?",
        "What is the normal shipping time for cards to Spain?",
        "Roughly how long until a card gets here after I request it?",
        "Is there an express option so the card comes faster?",
        "How soon will a replacement card reach me if I order one now?",
        "What's the expected delivery window for a physical card?",
        "Do cards take longer to ship abroad than at home?",
        "If I request a card this week, will it be here before my trip next month?",
        "How long is the wait for a card to be posted out?",
    ],
    "lost_or_stolen_card": [
        "Someone took my wallet on the train and my card was in it",
        "I can't find my card anywhere, I think I dropped it at the bar",
        "My bag was snatched with my bank card inside, please block it",
        "I misplaced my card yesterday and need to freeze it right away",
        "My card was pickpocketed this morning, what should I do?",
        "I left my card in a taxi and it's gone, please cancel it",
        "Thieves broke into my car and my card was taken",
        "I have no idea where my card went, I need it blocked",
        "My purse got stolen at the market with the card in it",
        "I lost my card while travelling, can you disable it?",
    ],
    "exchange_rate": [
        "What rate do you use when I pay in dollars with my euro account?",
        "Why did I get so few pounds for my euros today?",
        "How is the conversion between currencies calculated?",
        "Is the currency conversion rate better on weekends or weekdays?",
        "The rate I got converting to yen looks worse than the market one",
        "Where can I see today's rate for swapping euros into francs?",
        "How much will 100 euros be in Turkish lira with your rate?",
        "Do you add a margin on top of the interbank conversion rate?",
        "Why is the rate for converting to Swiss francs different in the app?",
        "What rate applies if I withdraw cash in another currency?",
    ],
    "top_up_failed": [
        "I tried to add money to my account with my card but it was declined",
        "Loading funds from my credit card keeps failing",
        "My attempt to put money into the app didn't go through",
        "Adding money by bank transfer was rejected, why?",
        "The payment to fund my account shows as failed",
        "I can't load money into my balance, it says error every time",
        "Why does adding funds with Apple Pay not work for me?",
        "My deposit into the wallet bounced back and the balance is unchanged",
        "I keep getting an error when I try to load cash onto my account",
        "Funding my account from my other bank failed twice today",
    ],
}
INTENTS = tuple(WRITTEN)
TAUGHT = 4


def _written() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per intent: texts to store and correct, and held-out texts to measure on."""
    return ({i: texts[:TAUGHT] for i, texts in WRITTEN.items()}, {i: texts[TAUGHT:] for i, texts in WRITTEN.items()})


def _raw(external_id: str, text: str) -> RawFeedback:
    now = datetime.now(UTC)
    return RawFeedback.model_validate({"feedback_id": feedback_id_for("api", external_id), "source": "api",
                                       "external_id": external_id, "channel": "chat", "text": text,
                                       "created_at": now, "received_at": now})


def _accuracy(items: list[dict[str, Any]], truth: list[str]) -> float:
    right = sum(1 for item, intent in zip(items, truth, strict=True) if item["themes"]
                and item["themes"][0]["id"] == intent)
    return right / len(truth)


TAXONOMY = {"version": "banking-1", "match_threshold": 0.2, "max_themes": 2,
            "themes": [{"id": i, "name": i.replace("_", " ")} for i in INTENTS]}


async def test_taxonomy_put_corrections_learning_and_restart(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        read_key: str, encoder: Encoder) -> None:
    taught, held = _written()
    raws = {intent: [_raw(f"{intent}-{n}", t) for n, t in enumerate(texts)] for intent, texts in taught.items()}
    oddities = [_raw("odd-1", "Your podcast recommendations keep suggesting true crime shows to me"),
                _raw("odd-2", "The podcast recommendations are all true crime, I hate true crime"),
                _raw("odd-3", "🙂🙂"), _raw("odd-4", "x" * 100_000)]
    everything = [r for rs in raws.values() for r in rs] + oddities
    await ensure_topics(kafka_settings)
    await publish_events(kafka_settings, FEEDBACK_RAW, everything, key="feedback_id")

    settings = ClassificationSettings(database_url=store_url(tmp_path, "classification"),
                                      kafka=kafka_settings, common=common_settings)
    admin = {"authorization": f"Bearer {admin_key}"}
    held_texts = [{"text": t} for i in INTENTS for t in held[i]]
    held_truth = [i for i in INTENTS for _ in held[i]]
    async with serve_app(create_app(settings, encoder=encoder)) as url, \
            httpx.AsyncClient(base_url=url, headers=admin, timeout=60) as client:
        first = await read_events(kafka_settings, FEEDBACK_CLASSIFIED,
                                  lambda es: len({e.subject for e in es}) >= len(everything),
                                  what="every item classified once")
        assert len(first) == len(everything) and all(e.data.revision == 1 for e in first)
        clustered = {e.subject: e.data.cluster for e in first if not e.data.themes}
        odd = [clustered.get(str(r.feedback_id)) for r in oddities[:2]]
        assert odd[0] is not None and odd[1] is not None, "items with no theme carry a cluster"
        assert odd[0].id == odd[1].id and odd[1].size == 2, "similar unthemed items share a cluster that grows"
        assert {"podcast", "crime", "recommendations"} & {w for t in odd[1].terms for w in t.split()}

        # Invalid taxonomies: 422 naming the problem; the old one stays in force.
        bad = {"version": "bad", "themes": [{"id": "a", "name": "A"}, {"id": "a", "name": "A again"},
                                            {"id": "b", "name": "B", "parent": "c"},
                                            {"id": "c", "name": "C", "parent": "b"}, {"id": "d"}]}
        rejected = await client.put("/v1/taxonomy", json=bad)
        assert rejected.status_code == 422, rejected.text
        problems = " ".join(e["message"] for e in rejected.json()["errors"])
        assert "duplicate id" in problems and "cycle" in problems and "'d' has no name" in problems
        assert (await client.get("/v1/taxonomy")).json()["version"] == "default-2026.1"
        not_admin = await client.put("/v1/taxonomy", json=TAXONOMY, headers={"authorization": f"Bearer {read_key}"})
        assert not_admin.status_code == 403

        before = (await client.post("/v1/classify", json=held_texts)).json()["items"]
        accuracy_before = _accuracy(before, held_truth)
        put = await client.put("/v1/taxonomy", json=TAXONOMY)
        assert put.status_code == 200, put.text
        assert put.json()["version"] == "banking-1"
        again = await client.put("/v1/taxonomy", json={**TAXONOMY, "max_themes": 1})
        assert again.status_code == 409, "a changed taxonomy needs a new version"
        versions = (await client.get("/v1/taxonomy/versions")).json()["items"]
        assert [v["version"] for v in versions] == ["banking-1"] and versions[0]["changed_by"].startswith("test admin")
        zero_shot = (await client.post("/v1/classify", json=held_texts)).json()["items"]
        accuracy_zero_shot = _accuracy(zero_shot, held_truth)

        # Corrections: the stored items get their true theme; one also a kind.
        missing = await client.post(f"/v1/feedback/{feedback_id_for('api', 'nope')}/labels", json={"kind": "bug"})
        assert missing.status_code == 404
        unknown_theme = await client.post(f"/v1/feedback/{raws[INTENTS[0]][0].feedback_id}/labels",
                                          json={"themes": ["no-such-theme"]})
        assert unknown_theme.status_code == 422 and unknown_theme.json()["errors"][0]["field"] == "themes"
        empty = await client.post(f"/v1/feedback/{raws[INTENTS[0]][0].feedback_id}/labels", json={})
        assert empty.status_code == 422
        for intent, items in raws.items():
            for raw in items:
                body: dict[str, Any] = {"themes": [intent]}
                if raw is items[0]:
                    body["kind"] = "question"
                corrected = await client.post(f"/v1/feedback/{raw.feedback_id}/labels", json=body)
                assert corrected.status_code == 200, corrected.text
                assert corrected.json()["revision"] == 2 and corrected.json()["corrected_by"] == "test admin"
        taught_count = TAUGHT * len(INTENTS)
        await wait_for(lambda: client.get("/v1/taxonomy"), lambda r: r.json()["examples_learned"] == taught_count,
                       what="every correction learned")
        after = (await client.post("/v1/classify", json=held_texts)).json()["items"]
        accuracy_after = _accuracy(after, held_truth)
        assert accuracy_after >= accuracy_zero_shot + 0.1, (accuracy_before, accuracy_zero_shot, accuracy_after)

        # What an aggregation-style consumer sees: one item per id, the corrected ones at revision 2.
        events = await read_events(kafka_settings, FEEDBACK_CLASSIFIED,
                                   lambda es: len(es) >= len(everything) + taught_count,
                                   what="the corrections re-published")
        latest: dict[str, Any] = {}
        for event in events:
            if event.subject not in latest or event.data.revision > latest[event.subject].revision:
                latest[event.subject] = event.data
        assert len(latest) == len(everything) and len(events) == len(everything) + taught_count
        assert len({e.id for e in events}) == len(events)
        for intent, items in raws.items():
            for raw in items:
                item = latest[str(raw.feedback_id)]
                assert (item.revision, item.corrected_by, [t.id for t in item.themes]) == (2, "test admin", [intent])
                assert item.cluster is None

    # A restart keeps the taxonomy, the learned examples and the clusters.
    async with serve_app(create_app(settings, encoder=encoder)) as url, \
            httpx.AsyncClient(base_url=url, headers=admin, timeout=60) as client:
        taxonomy = (await client.get("/v1/taxonomy")).json()
        assert taxonomy["version"] == "banking-1" and taxonomy["examples_learned"] == taught_count
        restarted = (await client.post("/v1/classify", json=held_texts)).json()["items"]
        assert _accuracy(restarted, held_truth) == accuracy_after
    assert await query_store(settings.database_url, "SELECT count(*) FROM corrections") == [(taught_count,)]
    sizes = dict(await query_store(settings.database_url, "SELECT id, size FROM theme_clusters"))
    assert sizes[odd[0].id] == 2
    print(f"theme accuracy on held-out items: default taxonomy {accuracy_before:.2f}, "
          f"zero-shot {accuracy_zero_shot:.2f}, after {taught_count} corrections {accuracy_after:.2f}")
