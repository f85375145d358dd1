"""A seeded, labelled corpus of support-style texts with PII, and the technical-sentence table; one scoring rule.

Used by ``tests/feedback/test_pii_recall.py`` and ``benchmarks/pii_recall.py`` (one place, no copy). Everything is
generated offline from Faker's locale providers with one seed, so a given ``(n, seed)`` always yields the same texts.

Every text carries the exact character spans of its PII, labelled by entity type (``PERSON``, ``EMAIL_ADDRESS``,
``PHONE_NUMBER``, ``CREDIT_CARD``, ``IBAN_CODE``, ``US_SSN``, ``STREET_ADDRESS``, ``DATE_OF_BIRTH``, ``IP_ADDRESS``,
``URL``) and a variant (locale / issuer / format) for the per-variant breakdown.

Scoring rule (:func:`caught`): a labelled span is caught when every alphanumeric character inside it lies inside some
finding, i.e. no maximal run of the span's letters or digits survives (even partly) in the scrubbed text. Separators
(spaces, dashes, commas) may survive. A technical token is kept when it appears verbatim in the scrubbed text as
often as in the original (:func:`kept`).
"""

from __future__ import annotations

import ipaddress
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

TECHNICAL_TABLE = Path(__file__).parent / "fixtures" / "technical_sentences.tsv"
ENTITY_TYPES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "STREET_ADDRESS",
                "DATE_OF_BIRTH", "IP_ADDRESS", "URL")  # fmt: skip
LATIN = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "sv_SE", "pl_PL")
NON_LATIN = ("ru_RU", "zh_CN", "ja_JP", "ko_KR", "ar_SA", "hi_IN")
PHONE_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "sv_SE", "pl_PL", "ru_RU", "ja_JP",
                 "ko_KR", "zh_CN", "en_IN")  # fmt: skip
ADDRESS_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "sv_SE", "pl_PL", "ru_RU", "zh_CN",
                   "ja_JP", "ko_KR")  # fmt: skip
# issuer -> (prefixes, lengths)
ISSUERS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "visa": (("4",), (16, 13, 19)),
    "mastercard": (("51", "52", "53", "54", "55"), (16,)),
    "mastercard_2series": (("2221", "2300", "2500", "2699", "2720"), (16,)),
    "amex": (("34", "37"), (15,)),
    "discover": (("6011", "644", "65"), (16,)),
    "jcb": (("3528", "3566", "3589"), (16,)),
    "diners": (("300", "305", "36", "38"), (14,)),
    "unionpay": (("62",), (16, 19)),
    "maestro": (("5018", "5020", "6304", "6759"), (12, 16, 19)),
}
# country -> BBAN layout ("n" digit, "a" upper letter, "c" alphanumeric)
IBAN_LAYOUTS = {"DE": "n" * 18, "FR": "n" * 10 + "c" * 11 + "nn", "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12,
                "NL": "aaaa" + "n" * 10, "PL": "n" * 24, "GB": "aaaa" + "n" * 14, "SE": "n" * 20,
                "CH": "n" * 5 + "c" * 12, "BE": "n" * 12, "AT": "n" * 16}  # fmt: skip
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
          "December")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Span:
    """One labelled PII span: ``text[start:end]`` is the value."""

    entity: str
    variant: str
    start: int
    end: int


@dataclass(slots=True)
class LabelledText:
    """A support text and its PII spans."""

    text: str
    spans: list[Span] = field(default_factory=list)


class _Builder:
    """Assembles a text from literal pieces and labelled values, tracking offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def lit(self, text: str) -> _Builder:
        self.parts.append(text)
        self.length += len(text)
        return self

    def pii(self, entity: str, variant: str, value: str) -> _Builder:
        self.spans.append(Span(entity, variant, self.length, self.length + len(value)))
        return self.lit(value)

    def build(self) -> LabelledText:
        return LabelledText("".join(self.parts), self.spans)


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    """A Luhn-valid number of ``length`` digits starting with ``prefix``."""
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _card(rng: random.Random, issuer: str) -> str:
    prefixes, lengths = ISSUERS[issuer]
    number = luhn_complete(rng.choice(prefixes), rng.choice(lengths), rng)
    style = rng.choice(("plain", "space", "dash"))
    if style == "plain":
        return number
    sep = " " if style == "space" else "-"
    if len(number) == 15:
        return sep.join((number[:4], number[4:10], number[10:]))
    if len(number) == 14:
        return sep.join((number[:4], number[4:10], number[10:]))
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def _iban(rng: random.Random, country: str) -> str:
    pools = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
    bban = "".join(rng.choice(pools[k]) for k in IBAN_LAYOUTS[country])
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban


def _name(fake: Faker, locale: str, rng: random.Random) -> str:
    first, last = fake.first_name(), fake.last_name()
    if locale in ("zh_CN", "ko_KR"):
        return last + first
    if locale == "ja_JP":
        return last + rng.choice(("", " ")) + first
    if locale == "ru_RU" and rng.random() < 0.3:
        return f"{last} {first}"
    return f"{first} {last}"


def _address(fake: Faker, locale: str) -> str:
    if locale == "en_US":
        return f"{fake.street_address()}, {fake.city()}, {fake.state_abbr()} {fake.postcode()}"
    return ", ".join(line.strip() for line in fake.address().splitlines() if line.strip())


def _dob(fake: Faker, rng: random.Random) -> tuple[str, str]:
    d = fake.date_of_birth(minimum_age=18, maximum_age=90)
    styles = {
        "iso": f"{d:%Y-%m-%d}",
        "dmy_slash": f"{d:%d/%m/%Y}",
        "mdy_slash": f"{d:%m/%d/%Y}",
        "dmy_dot": f"{d:%d.%m.%Y}",
        "d_month_y": f"{d.day} {MONTHS[d.month - 1]} {d.year}",
        "month_d_y": f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
        "d_mon_y": f"{d.day:02d} {MONTHS[d.month - 1][:3]} {d.year}",
    }
    return _pick(rng, styles)


def _pick(rng: random.Random, choices: dict[str, str]) -> tuple[str, str]:
    """One (variant, value) of ``choices``, chosen in a seed-stable order."""
    variant = rng.choice(sorted(choices))
    return variant, choices[variant]


def _global_ipv6(fake: Faker) -> str:
    """A global unicast IPv6 address (what a customer's connection has; Faker also yields multicast ones)."""
    while not (address := ipaddress.IPv6Address(fake.ipv6())).is_global or address.is_multicast:
        pass
    return str(address)


def _ascii_slug(fake: Faker) -> tuple[str, str]:
    return fake.first_name().lower(), fake.last_name().lower().replace(" ", "").replace("'", "")


def _url(fake: Faker, rng: random.Random) -> tuple[str, str]:
    first, last = _ascii_slug(fake)
    email = f"{first}.{last}@{fake.free_email_domain()}"
    choices = {
        "profile": f"https://www.linkedin.com/in/{first}-{last}-{rng.randint(10, 999)}",
        "crm": f"https://crm.{fake.domain_name()}/customers/{first}.{last}",
        "query_email": f"https://portal.{fake.domain_name()}/account?email={email}",
        "social": f"http://facebook.com/{first}{last}{rng.randint(1, 99)}",
        "www": f"www.{fake.domain_name()}/team/{first}_{last}",
    }
    return _pick(rng, choices)


_INTRO = ("Customer ", "Caller ", "Ticket from ", "Spoke with ", "Agent note: ", "Per ", "Escalated by ", "")
# entity -> (phrases before the value, phrases after it): how agents write such a value in a ticket comment.
PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PERSON": (("Please update the record for ", "The refund was approved for ", "Correction: the account holder is ",
                "Forwarded to billing on behalf of ", "I spoke to "),
               ("; the old entry is wrong.", ".", ", not the person listed.", " who confirmed the invoice.")),
    "EMAIL_ADDRESS": (("Send the invoice to ", "New contact email is ", "Reply went to ", "Please write to "),
                      (" instead.", ".", " asap")),
    "PHONE_NUMBER": (("Called from ", "Call back on ", "Their phone is ", "Reach them at ", "Mobile: ",
                      "Phone number "),
                     (" after 5pm.", ".", " today")),
    "CREDIT_CARD": (("Charged twice on card ", "Refund to card ", "Paid with ", "Card number "),
                    (", please reverse.", ".", " last week.")),
    "IBAN_CODE": (("Refund to IBAN ", "Bank account ", "Wire the money back to ", "Their IBAN is "),
                  (".", " please.", " (verified).")),
    "US_SSN": (("SSN ", "Social security number ", "Verified identity with SSN: ", "Their SSN is "),
               (".", " on file.", ", matched.")),
    "STREET_ADDRESS": (("Ship the replacement to ", "New address: ", "They moved to ", "Billing address is "),
                       (".", " please.")),
    "DATE_OF_BIRTH": (("DOB ", "Date of birth: ", "Born on ", "Verified with date of birth ", "Birthday "),
                      (".", " confirmed.", ", matches the file.")),
    "IP_ADDRESS": (("Login attempts came from ", "Their IP is ", "The customer connected from ", "Blocked IP "),
                   (".", " yesterday.", " per the logs.")),
    "URL": (("Profile link: ", "See ", "They sent ", "Linked account "), (" for details.", " .", " today.")),
}  # fmt: skip


def _value(entity: str, fake_for: Callable[[str], Faker], rng: random.Random) -> tuple[str, str]:
    """(variant, value) of one ``entity`` value."""
    en = fake_for("en_US")
    if entity == "PERSON":
        locale = rng.choice(LATIN + NON_LATIN)
        return locale, _name(fake_for(locale), locale, rng)
    if entity == "EMAIL_ADDRESS":
        first, last = _ascii_slug(en)
        options = (f"{first}.{last}@{en.free_email_domain()}",
                   f"{first[0]}{last}{rng.randint(1, 99)}@{en.domain_name()}",
                   fake_for(rng.choice(LATIN)).email())  # fmt: skip
        return "email", rng.choice(options)
    if entity == "PHONE_NUMBER":
        locale = rng.choice(PHONE_LOCALES)
        return locale, fake_for(locale).phone_number()
    if entity == "CREDIT_CARD":
        issuer = rng.choice(sorted(ISSUERS))
        return issuer, _card(rng, issuer)
    if entity == "IBAN_CODE":
        country = rng.choice(sorted(IBAN_LAYOUTS))
        return country, _iban(rng, country)
    if entity == "US_SSN":
        variant = rng.choice(("dashed", "plain"))
        return variant, en.ssn() if variant == "dashed" else en.ssn().replace("-", "")
    if entity == "STREET_ADDRESS":
        locale = rng.choice(ADDRESS_LOCALES)
        return locale, _address(fake_for(locale), locale)
    if entity == "DATE_OF_BIRTH":
        return _dob(en, rng)
    if entity == "IP_ADDRESS":
        variant = rng.choice(("v4", "v6"))
        return variant, en.ipv4_public() if variant == "v4" else _global_ipv6(en)
    return _url(en, rng)


def _sentence(entity: str, b: _Builder, fake_for: Callable[[str], Faker], rng: random.Random) -> None:
    """Append one clause carrying a value of ``entity`` in the phrasing agents use (:data:`PHRASES`)."""
    before, after = PHRASES[entity]
    variant, value = _value(entity, fake_for, rng)
    b.lit(rng.choice(before)).pii(entity, variant, value).lit(rng.choice(after))


def build_corpus(n: int = 360, *, seed: int = 14) -> list[LabelledText]:
    """``n`` labelled support texts; each has one value of ``ENTITY_TYPES[i % 10]`` and usually one more."""
    rng = random.Random(seed)
    fakes: dict[str, Faker] = {}

    def fake_for(locale: str) -> Faker:
        if locale not in fakes:
            fakes[locale] = Faker(locale)
            fakes[locale].seed_instance(seed)
        return fakes[locale]

    texts = []
    for i in range(n):
        b = _Builder()
        if rng.random() < 0.6:
            locale = rng.choice(LATIN + NON_LATIN)
            b.lit(rng.choice(_INTRO)).pii("PERSON", locale, _name(fake_for(locale), locale, rng))
            b.lit(
                rng.choice((" called about order #{}. ", " wrote in about ticket {}. ", ": ")).format(
                    rng.randint(1, 99999)
                )
            )
        _sentence(ENTITY_TYPES[i % len(ENTITY_TYPES)], b, fake_for, rng)
        if rng.random() < 0.4:
            b.lit(" ")
            _sentence(rng.choice(ENTITY_TYPES), b, fake_for, rng)
        texts.append(b.build())
    return texts


def technical_table(path: Path = TECHNICAL_TABLE) -> list[tuple[str, list[str]]]:
    """(sentence, tokens that must survive verbatim) rows of the TSV (sentence TAB token TAB token ...)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            sentence, *tokens = line.split("\t")
            rows.append((sentence, [t for t in tokens if t]))
    return rows


def caught(text: str, span: Span, covered: Sequence[tuple[int, int]]) -> bool:
    """True when every alphanumeric character of ``span`` lies inside one of the ``covered`` (start, end) ranges."""
    return all(any(s <= i < e for s, e in covered) for i in range(span.start, span.end) if text[i].isalnum())


def kept(original: str, scrubbed: str, token: str) -> bool:
    """True when ``token`` survives verbatim in ``scrubbed`` as often as it occurs in ``original``."""
    return scrubbed.count(token) >= original.count(token)


@dataclass(slots=True)
class Score:
    """Recall per entity type and per (type, variant), and the missed spans (for diagnostics, never logged)."""

    total: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    variant_total: dict[tuple[str, str], int] = field(default_factory=dict)
    variant_hits: dict[tuple[str, str], int] = field(default_factory=dict)
    missed: list[tuple[str, str, str]] = field(default_factory=list)

    def recall(self, entity: str) -> float:
        """Share of ``entity`` spans caught."""
        return self.hits.get(entity, 0) / self.total[entity]


def score_corpus(corpus: Sequence[LabelledText], findings: Sequence[Sequence[tuple[int, int]]]) -> Score:
    """Score ``findings`` (per text, covered (start, end) ranges) against the labelled spans by :func:`caught`."""
    score = Score()
    for item, covered in zip(corpus, findings, strict=True):
        for span in item.spans:
            ok = caught(item.text, span, covered)
            key = (span.entity, span.variant)
            score.total[span.entity] = score.total.get(span.entity, 0) + 1
            score.variant_total[key] = score.variant_total.get(key, 0) + 1
            if ok:
                score.hits[span.entity] = score.hits.get(span.entity, 0) + 1
                score.variant_hits[key] = score.variant_hits.get(key, 0) + 1
            else:
                score.missed.append((span.entity, span.variant, item.text[span.start : span.end]))
    return score


def preservation(rows: Sequence[tuple[str, list[str]]], scrubbed: Sequence[str]) -> tuple[int, int, list[str]]:
    """(tokens kept, tokens total, lost tokens) of the technical table against its scrubbed sentences."""
    lost = [t for (text, tokens), out in zip(rows, scrubbed, strict=True) for t in tokens if not kept(text, out, t)]
    total = sum(len(tokens) for _, tokens in rows)
    return total - len(lost), total, lost
