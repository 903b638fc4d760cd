import pytest

from classification.domain.language import detect_language, normalize_hint


@pytest.mark.parametrize(("text", "expected"), [
    ("The export to Excel has been failing since the last update.", "en"),
    ("Die App stürzt jedes Mal ab, wenn ich eine Rechnung öffnen möchte.", "de"),
    ("La aplicación se cierra cada vez que intento pagar con mi tarjeta.", "es"),
    ("L'application plante à chaque fois que j'ouvre mes factures.", "fr"),
])
def test_detects_the_language_of_a_sentence(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "ok", "👍👍👍", "10/10", "!!!"])
def test_short_or_empty_text_uses_the_hint_or_und(text: str) -> None:
    assert detect_language(text) == "und"
    assert detect_language(text, "pt-BR") == "pt"


def test_hint_is_normalized() -> None:
    assert normalize_hint("EN_us") == "en"
    assert normalize_hint("  ") is None
    assert normalize_hint(None) is None


def test_long_text_is_read_in_part() -> None:
    assert detect_language("Bonjour, je voudrais exporter mes données. " * 3000) == "fr"
