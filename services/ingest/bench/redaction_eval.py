"""Recall and precision of ingest's redaction, per kind, on a generated set of a few thousand strings.

Each string plants at most one value of one kind (or none: a negative that looks like one: order numbers,
versions, dates, prices, Luhn-failing cards, IBANs with a wrong check, street-like words, zero-led invoice and
customer numbers) inside a sentence. Phones of US, GB, DE and FR are written in national format half the time,
IBANs in lower case a fifth of the time.
A planted value counts as found when its kind's placeholder appears and no digit-run of it survives; a
placeholder of a kind in a string that planted none of that kind is a false positive.

    .venv/bin/python services/ingest/bench/redaction_eval.py [--n 3000] [--seed 7]

Prints a table and writes var/bench/redaction.json.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections import Counter
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat
from stdnum import iban as stdnum_iban

from ingest.domain.redact import PLACEHOLDERS, redact

# Numbers of these regions are also written in national format ("020 7946 0958"): ingest's default
# INGEST_PHONE_REGIONS. Other regions' numbers are written internationally (+CC …).
NATIONAL_REGIONS = {"US", "GB", "DE", "FR"}
REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "JP", "AU", "CA", "MX", "SE", "PL", "ZA", "SG", "CH"]
IBAN_BBAN = {
    "DE": "18n",
    "FR": "10n11c2n",
    "GB": "4a14n",
    "ES": "20n",
    "IT": "1a10n12c",
    "NL": "4a10n",
    "BE": "12n",
    "CH": "5n12c",
    "AT": "16n",
    "PL": "24n",
    "SE": "20n",
    "NO": "11n",
    "DK": "14n",
    "IE": "4a14n",
}
TEMPLATES = [
    "Please contact me at {} if the refund fails.",
    "My details: {}. Thanks!",
    "I already gave {} to your agent twice",
    "{} is what I used",
    "Hi, re order 4471: {} — can you check?",
]
NEGATIVES = [
    "Order #{n6} still not shipped",
    "Crashes on version {v} after update",
    "Paid ${p} on {d} but got charged twice",
    "Ticket {n8} reopened, build {n4}.{n3}",
    "Card ending 4242 declined, ref {n12}",
    "Tracking 1Z{n6}{n6}",
    "Card {badcard} was rejected",
    "IBAN {badiban} failed validation",
    "Streetwise mode is on level {n3}",
    "Error code 0x{hex8} at 12:45",
    "Scored {n2} out of 100 in 2024",
    "Invoice 0{n6} paid on 01.03.2024 at 10:30",
    "Termin am 05.03.2024, Kundennummer 00{n6}",
]


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _bban(spec: str, rng: random.Random) -> str:
    out, num = [], ""
    for ch in spec:
        if ch.isdigit():
            num += ch
            continue
        pool = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}[ch]
        out.append("".join(rng.choice(pool) for _ in range(int(num))))
        num = ""
    return "".join(out)


def iban(country: str, rng: random.Random, valid: bool = True) -> str:
    """An IBAN of ``country``; valid ones also pass the national check digits (real IBANs always do)."""
    while True:
        raw = _iban(country, rng, valid)
        if not valid or stdnum_iban.is_valid(raw):
            raw = raw.lower() if rng.random() < 0.2 else raw  # typed in lower case now and then
            return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.6 else raw


def _iban(country: str, rng: random.Random, valid: bool) -> str:
    bban = _bban(IBAN_BBAN[country], rng)
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(digits) % 97
    if not valid:
        check = (check + 1) % 97 or 2
    return f"{country}{check:02d}{bban}"


def phone(rng: random.Random) -> str:
    region = rng.choice(REGIONS)
    number = phonenumbers.example_number_for_type(
        region, rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    )
    if number is None:
        number = phonenumbers.example_number(region)
    fmt = rng.choice([PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL])
    if region in NATIONAL_REGIONS and rng.random() < 0.5:
        fmt = PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(number, fmt)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16)])
    digits = luhn_complete(prefix, length, rng)
    sep = rng.choice(["", " ", "-"])
    groups = [digits[:4], digits[4:10], digits[10:]] if length == 15 else [digits[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


def email(rng: random.Random) -> str:
    user = rng.choice(["jane.doe", "j_smith+billing", "ops", "müller.k", "a.b.c"]) + str(rng.randint(1, 999))
    return f"{user}@{rng.choice(['example.com', 'mail.example.co.uk', 'corp.example.de', 'example.io'])}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))


def secret(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits

    def r(n: int) -> str:
        return "".join(rng.choice(alnum) for _ in range(n))

    return rng.choice(
        [
            f"sk_live_{r(24)}",
            f"ghp_{r(36)}",
            f"xoxb-{r(12)}-{r(12)}",
            f"AKIA{''.join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
            f"AIza{r(35)}",
            f"sk-proj-{r(40)}",
            f"glpat-{r(20)}",
            f"npm_{r(36)}",
            f"api_key={r(32)}",
            f"Bearer {r(40)}",
        ]
    )


def address(rng: random.Random) -> str:
    number = rng.randint(1, 200)
    street = rng.choice(["Baker", "Maple", "Pennsylvania", "Oak Hill", "Market"])
    suffix = rng.choice(["Street", "St", "Avenue", "Ave", "Road", "Blvd", "Lane", "Drive"])
    german = rng.choice(["Haupt", "Bahnhof", "Linden", "Goethe"]) + rng.choice(["straße", "strasse", "weg", "allee"])
    french = f"{rng.choice(['rue', 'avenue', 'boulevard'])} de {rng.choice(['Rivoli', 'Lyon', 'Paris'])}"
    latin = f"{rng.choice(['calle', 'via'])} {rng.choice(['Mayor', 'Roma', 'Garibaldi'])}"
    return rng.choice(
        [
            f"{rng.randint(1, 9999)} {street} {suffix}",
            f"{german} {number}",
            f"{number} {french}",
            f"{number} {latin}",
            f"{rng.choice(['Kerk', 'Dorps'])}straat {number}",
        ]
    )


GENERATORS = {
    "email": email,
    "phone": phone,
    "card": card,
    "iban": None,
    "ip": ip,
    "secret": secret,
    "address": address,
}


def negative(rng: random.Random) -> str:
    d = rng.choice(string.digits)
    fill = {
        "n2": rng.randint(10, 99),
        "n3": rng.randint(100, 999),
        "n4": rng.randint(1000, 9999),
        "n6": rng.randint(100000, 999999),
        "n8": rng.randint(10**7, 10**8 - 1),
        "n12": rng.randint(10**11, 10**12 - 1),
        "v": f"{rng.randint(1, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}",
        "p": f"{rng.randint(5, 500)}.{d}9",
        "d": f"2024-0{rng.randint(1, 9)}-1{d}",
        "hex8": f"{rng.getrandbits(32):08x}",
        "badcard": (lambda c: c[:-1] + str((int(c[-1]) + 1) % 10))(luhn_complete("4", 16, rng)),
        "badiban": iban(rng.choice(list(IBAN_BBAN)), rng, valid=False),
    }
    return rng.choice(NEGATIVES).format(**fill)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("var/bench/redaction.json"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = list(GENERATORS)
    planted, found, false_pos = Counter(), Counter(), Counter()
    negatives = 0
    for i in range(args.n):
        slot = i % (len(kinds) + 2)
        kind = kinds[slot] if slot < len(kinds) else None
        if kind is None:
            text, value = negative(rng), ""
            negatives += 1
        else:
            value = iban(rng.choice(list(IBAN_BBAN)), rng) if kind == "iban" else GENERATORS[kind](rng)  # type: ignore[misc]
            text = rng.choice(TEMPLATES).format(value)
            planted[kind] += 1
        result = redact(text)
        for k, n in result.counts.items():
            if k != kind:
                false_pos[k] += n
        if kind and result.counts.get(kind) and value not in result.text:
            found[kind] += 1
    rows = {}
    for kind in [*kinds]:
        tp, fp = found[kind], false_pos[kind]
        rows[kind] = {
            "planted": planted[kind],
            "found": tp,
            "false_positives": fp,
            "recall": round(tp / planted[kind], 4) if planted[kind] else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        }
    print(f"redaction evaluation: {args.n} strings ({negatives} negatives), seed {args.seed}")
    print(f"{'kind':<9}{'planted':>9}{'found':>8}{'false+':>8}{'recall':>9}{'precision':>11}")
    for kind, r in rows.items():
        print(
            f"{kind:<9}{r['planted']:>9}{r['found']:>8}{r['false_positives']:>8}{r['recall']:>9.3f}{r['precision']:>11.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"n": args.n, "seed": args.seed, "negatives": negatives, "kinds": rows, "placeholders": PLACEHOLDERS},
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
