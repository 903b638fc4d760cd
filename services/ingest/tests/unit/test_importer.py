"""The importer's pure parts on small export files written here: Google Play's UTF-16 export, App Store
Connect reviews (API JSON and CSV), generic CSV / JSON Lines with a column mapping, bad rows and encodings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.tools.importer.decoding import decode_export
from ingest.tools.importer.errors import FileRejected
from ingest.tools.importer.mapping import Mapped, map_rows, parse_column_map
from ingest.tools.importer.rows import read_rows
from ingest.tools.importer.run import ImportRequest, load_mapped

# Google Play Console's review export columns, in its order.
PLAY_HEADER = [
    "Package Name", "App Version Code", "App Version Name", "Reviewer Language", "Device",
    "Review Submit Date and Time", "Review Submit Millis Since Epoch", "Review Last Update Date and Time",
    "Review Last Update Millis Since Epoch", "Star Rating", "Review Title", "Review Text",
    "Developer Reply Date and Time", "Developer Reply Millis Since Epoch", "Developer Reply Text", "Review Link",
]


def _play_row(**values: str) -> list[str]:
    base = dict.fromkeys(PLAY_HEADER, "")
    base.update({"Package Name": "com.example.app", "App Version Code": "210", "App Version Name": "2.1.0",
                 "Reviewer Language": "en_GB", "Device": "a52q",
                 "Review Submit Date and Time": "2025-03-01T10:00:00Z",
                 "Review Submit Millis Since Epoch": "1740823200000", "Star Rating": "4"})
    base.update({k.replace("_", " "): v for k, v in values.items()})
    return [base[h] for h in PLAY_HEADER]


def _csv(rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value

    return "\n".join(",".join(cell(v) for v in row) for row in rows) + "\n"


def _mapped(tmp_path: Path, name: str, data: bytes, kind: str, **options: object) -> Mapped:
    path = tmp_path / name
    path.write_bytes(data)
    return load_mapped(ImportRequest(path=path, kind=kind, url="http://x", api_key="k", **options))[1]  # type: ignore[arg-type]


def test_google_play_utf16_export_maps_each_review(tmp_path: Path) -> None:
    link = "https://play.google.com/console/developers/1/app/2/user-feedback/review-details?reviewId=gp%3AAOqpTOE"
    text = _csv([
        PLAY_HEADER,
        _play_row(Review_Title="Crashes", Review_Text="Crashes on start,\nevery time since 2.1", Review_Link=link),
        _play_row(Review_Title="Nice", Review_Text="", Star_Rating="5"),
        _play_row(Review_Text="", Star_Rating="1"),  # a rating without words
        _play_row(Review_Text="fine", Star_Rating="five"),
        ["com.example.app", "only", "three"],
        _play_row(Review_Text="Dark mode please", Review_Submit_Millis_Since_Epoch="1740909600000"),
    ])
    data = text.encode("utf-16")  # what the Play Console writes: UTF-16 LE with a BOM
    assert data[:2] == b"\xff\xfe"

    mapped = _mapped(tmp_path, "reviews_com.example.app_202503.csv", data, "googleplay")

    assert [m.where for m in mapped.items] == ["line 2", "line 4", "line 8"]
    first, title_only, third = (m.item for m in mapped.items)
    assert first.external_id == "gp:AOqpTOE" and first.source == "googleplay" and first.channel == "review"
    assert first.text == "Crashes on start,\nevery time since 2.1" and first.subject == "Crashes"
    assert first.rating is not None and (first.rating.kind, first.rating.value, first.rating.scale) == ("stars", 4, 5)
    assert first.created_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert first.language == "en-GB" and first.url == link
    assert set(first.tags) == {"app:com.example.app", "version:2.1.0", "device:a52q"}
    assert title_only.text == "Nice" and title_only.subject is None
    assert third.external_id.startswith("row:") and third.created_at == datetime(2025, 3, 2, 10, 0, tzinfo=UTC)
    assert mapped.empty == 1
    assert [(b.where, b.reason) for b in mapped.bad] == [
        ("line 6", "Star Rating: 'five' is not a number"),
        ("line 7", "3 fields where the header has 16"),
    ]
    again = _mapped(tmp_path, "copy.csv", data, "googleplay")
    assert [m.item.external_id for m in again.items] == [m.item.external_id for m in mapped.items]


def test_google_play_export_without_bom_is_read_as_utf16(tmp_path: Path) -> None:
    data = _csv([PLAY_HEADER, _play_row(Review_Text="Ünïcödé ✓ works")]).encode("utf-16-le")
    mapped = _mapped(tmp_path, "nobom.csv", data, "googleplay")
    assert [m.item.text for m in mapped.items] == ["Ünïcödé ✓ works"]


def test_a_file_that_is_not_a_google_play_export_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="no `Review Text` column"):
        _mapped(tmp_path, "x.csv", b"id,text\n1,hello\n", "googleplay")


def test_app_store_connect_api_json_and_csv(tmp_path: Path) -> None:
    page = {"data": [
        {"type": "customerReviews", "id": "00000029-1a5c-4b01", "attributes": {
            "rating": 2, "title": "Login loop", "body": "Keeps asking me to log in", "reviewerNickname": "kim",
            "createdDate": "2025-02-03T04:05:06-08:00", "territory": "USA"}},
        {"type": "customerReviews", "id": "00000029-1a5c-4b02", "attributes": {
            "rating": 9, "title": "?", "body": "rated nine", "createdDate": "2025-02-03T04:05:06-08:00"}},
    ], "links": {"self": "https://api.appstoreconnect.apple.com/v1/apps/1/customerReviews"}}
    mapped = _mapped(tmp_path, "reviews.json", json.dumps(page, indent=2).encode(), "appstore")
    (item,) = (m.item for m in mapped.items)
    assert (item.source, item.external_id, item.text, item.subject) == (
        "appstore", "00000029-1a5c-4b01", "Keeps asking me to log in", "Login loop")
    assert item.author is not None and item.author.name == "kim" and "territory:USA" in item.tags
    assert item.created_at == datetime(2025, 2, 3, 12, 5, 6, tzinfo=UTC)
    assert [(b.where, b.reason) for b in mapped.bad] == [("item 2", "rating: 9 is outside 1 to 5")]

    csv_text = "Review ID,Date,Rating,Title,Review,Nickname,Territory\r\n" \
               "r-1,2025-01-02,5,Great,\"Love it, really\",ann,GBR\r\nr-2,yesterday,4,Hm,meh,bob,FRA\r\n"
    mapped = _mapped(tmp_path, "appstore.csv", b"\xef\xbb\xbf" + csv_text.encode(), "appstore")
    assert [(m.item.external_id, m.item.text) for m in mapped.items] == [("r-1", "Love it, really")]
    assert [(b.where, b.reason) for b in mapped.bad] == [("line 3", "createdDate: cannot read 'yesterday' as a time")]


def test_generic_csv_with_a_column_map(tmp_path: Path) -> None:
    text = "Ticket;Comment;Score;When;Who;Plan\n" \
           "T-1;Export to PDF is broken;3;2025-05-01T09:00:00Z;acme;enterprise\n" \
           "T-2;;4;2025-05-01;acme;pro\n" \
           "T-3;Too slow;eleven;2025-05-01;acme;pro\n" \
           "T-4;Fine now;2;not a date;acme;pro\n"
    columns = parse_column_map("external_id=Ticket, text=Comment,csat=Score,created_at=When,customer_id=Who,"
                               "customer_plan=Plan")
    mapped = _mapped(tmp_path, "tickets.csv", text.encode(), "generic", columns=columns, source_name="zoho",
                     channel="ticket")
    (item,) = (m.item for m in mapped.items)
    assert (item.source, item.external_id, item.channel, item.text) == ("zoho", "T-1", "ticket",
                                                                         "Export to PDF is broken")
    assert item.rating is not None and item.rating.kind == "csat" and item.customer is not None
    assert (item.customer.id, item.customer.plan) == ("acme", "enterprise")
    assert mapped.empty == 1
    assert [(b.where, b.reason) for b in mapped.bad] == [
        ("line 4", "Score: 'eleven' is not a number"),
        ("line 5", "When: cannot read 'not a date' as a time"),
    ]


def test_generic_json_lines_without_ids_get_stable_row_hashes(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "App freezes", "stars": 1}), "{not json", json.dumps([1, 2]), "",
             json.dumps({"text": {"nested": True}}), json.dumps({"text": "App freezes", "stars": 1, "x": 1})]
    mapped = _mapped(tmp_path, "f.jsonl", "\n".join(lines).encode(), "generic")
    ids = [m.item.external_id for m in mapped.items]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.startswith("row:") for i in ids)
    assert [b.where for b in mapped.bad] == ["line 2", "line 3", "line 5"]
    assert mapped.bad[0].reason.startswith("not JSON")
    assert mapped.bad[2].reason == "text: expected text, got dict"
    assert ids == [m.item.external_id for m in _mapped(tmp_path, "g.jsonl", "\n".join(lines).encode(),
                                                        "generic").items]


def test_a_broken_encoding_is_one_clear_error() -> None:
    data = b"id,text\n1,fine\n2,caf" + b"\xe9 cr\xe8me\n"
    with pytest.raises(FileRejected) as caught:
        decode_export(data, "export.csv")
    assert str(caught.value) == (
        "export.csv is not valid UTF-8: byte 0xe9 at offset 20 (line 3); nothing was imported; "
        "save it as UTF-8 or UTF-16, or pass --encoding (e.g. cp1252)"
    )
    assert decode_export(data, "export.csv", "cp1252").endswith("café crème\n")
    with pytest.raises(FileRejected, match="unknown encoding"):
        decode_export(data, "export.csv", "no-such-codec")


def test_bad_maps_and_missing_columns_are_rejected_before_anything_is_read() -> None:
    with pytest.raises(FileRejected, match="unknown target 'txt'"):
        parse_column_map("txt=Comment")
    with pytest.raises(FileRejected, match="target=column"):
        parse_column_map("text")
    header, rows = read_rows("a,b\n1,2\n", "f.csv")
    with pytest.raises(FileRejected, match="text=Comment"):
        map_rows(rows, "generic", header=header, columns={"text": "Comment"})
    with pytest.raises(FileRejected, match="no text column"):
        map_rows(rows, "generic", header=header)
    with pytest.raises(FileRejected, match="is empty"):
        read_rows("  \n", "f.csv")


@pytest.mark.parametrize("reserved", ["zendesk", "intercom", "canny", "standard"])
def test_a_source_name_reserved_for_a_signed_webhook_is_refused_before_anything_is_posted(
    tmp_path: Path, reserved: str
) -> None:
    """Imported under `zendesk`, item 6001 would take the id of the genuine signed ticket 6001 (squatting)."""
    text = "id,text\n6001,Forged ticket\n"
    with pytest.raises(FileRejected, match=f"`{reserved}` is reserved for its signed webhook"):
        _mapped(tmp_path, "forged.csv", text.encode(), "generic",
                columns=parse_column_map("external_id=id,text=text"), source_name=reserved)
