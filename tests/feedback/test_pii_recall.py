"""PII recall per entity type on the seeded Faker corpus, technical-text preservation, and the mangling regressions.

The corpus and the scoring rule live in ``tests/feedback/pii_corpus.py`` (shared with ``benchmarks/pii_recall.py``):
a labelled span is caught when none of its letters or digits survives in the scrubbed text.
"""

from __future__ import annotations

from typing import Any

import pytest
from pii_corpus import ENTITY_TYPES, Score, build_corpus, preservation, score_corpus, technical_table

pytestmark = pytest.mark.integration

MIN_RECALL = 0.98
MIN_KEPT = 0.98


@pytest.fixture(scope="module")
def corpus_score(scrubber: Any) -> Score:
    """The full seeded corpus (360 texts, ~700 spans) scanned once in one batched pass."""
    corpus = build_corpus(360, seed=14)
    findings = scrubber.scan_many([item.text for item in corpus])
    return score_corpus(corpus, [[(f.start, f.end) for f in found] for found in findings])


@pytest.mark.parametrize("entity", ENTITY_TYPES)
def test_when_corpus_is_scrubbed_then_recall_per_entity_type_reaches_the_bar(corpus_score: Score, entity: str) -> None:
    assert corpus_score.total[entity] >= 40, "the corpus must hold enough spans of every type"
    missed = [variant for kind, variant, _ in corpus_score.missed if kind == entity]
    assert corpus_score.recall(entity) >= MIN_RECALL, f"{entity} missed in variants {missed}"


def test_when_technical_sentences_are_scrubbed_then_their_tokens_survive(scrubber: Any) -> None:
    rows = technical_table()
    assert len(rows) >= 200
    kept, total, lost = preservation(rows, [r.text for r in scrubber.scrub_many([text for text, _ in rows])])
    assert kept / total >= MIN_KEPT, lost


# The mangling examples (text, exact scrubbed output), plus the IP rule both ways.
REGRESSIONS = [
    ("Edit pg_hba.conf and reload.", "Edit pg_hba.conf and reload."),  # was pg_<URL>nf
    ("The value is set in postgresql.conf.", "The value is set in postgresql.conf."),  # was <LOCATION>
    ("Put the bundle in /etc/ssl/certs/ca.pem today.", "Put the bundle in /etc/ssl/certs/ca.pem today."),  # <URL>m
    ("Refunds take five business days.", "Refunds take five business days."),  # was <LOCATION>
    ("Customer Jane Doe called about the invoice.", "Customer <PERSON> called about the invoice."),
    ("Add host all all 10.0.0.0/8 md5 to the file.", "Add host all all 10.0.0.0/8 md5 to the file."),
    ("Login attempts came from 81.2.69.160 last night.", "Login attempts came from <IP_ADDRESS> last night."),
    ("Set max_connections = 200 on db01.prod.internal.", "Set max_connections = 200 on db01.prod.internal."),
]


@pytest.mark.parametrize(("text", "expected"), REGRESSIONS, ids=[r[0][:30] for r in REGRESSIONS])
def test_when_support_text_is_scrubbed_then_technical_words_are_not_mangled(
    scrubber: Any, text: str, expected: str
) -> None:
    assert scrubber.scrub(text).text == expected


# Values the old scrubber let through, one per recognizer this change adds.
HARD_CASES = [
    ("Card 2221 0000 0000 0009 was charged twice.", "Card <CREDIT_CARD> was charged twice."),  # Mastercard 2-series
    ("Paid with 6200000000000005 yesterday.", "Paid with <CREDIT_CARD> yesterday."),  # UnionPay
    ("Refund to ES91 2100 0418 4502 0005 1332 please.", "Refund to <IBAN_CODE> please."),
    ("Verified with SSN 219099999 on the call.", "Verified with SSN <US_SSN> on the call."),
    ("DOB 14/02/1987 matches the file.", "DOB <DATE_OF_BIRTH> matches the file."),
    ("Born on March 3, 1961 per the ID.", "Born on <DATE_OF_BIRTH> per the ID."),
    ("The invoice dated 14/02/2024 is wrong.", "The invoice dated 14/02/2024 is wrong."),  # a date, not a birth date
    ("Call back on 06 12 34 56 78 today.", "Call back on <PHONE_NUMBER> today."),
    ("Ticket from 王秀英 about a refund.", "Ticket from <PERSON> about a refund."),
    ("Spoke with 佐藤 花子 today.", "Spoke with <PERSON> today."),
    ("Customer 김민준 called.", "Customer <PERSON> called."),
    ("Caller Иван Петров wants a refund.", "Caller <PERSON> wants a refund."),
    ("Agent note: محمد العتيبي confirmed.", "Agent note: <PERSON> confirmed."),
    ("Escalated by अमित शर्मा today.", "Escalated by <PERSON> today."),
    ("Ship it to Hauptstraße 12, 10115 Berlin please.", "Ship it to <STREET_ADDRESS> please."),
    ("New address: 12, rue de la Paix, 75002 Paris.", "New address: <STREET_ADDRESS>."),
    ("Billing address is 221B Baker Street, London NW1 6XE.", "Billing address is <STREET_ADDRESS>."),
    ("They moved to 東京都新宿区西新宿2丁目8番1号.", "They moved to <STREET_ADDRESS>."),
    ("See https://www.linkedin.com/in/jane-doe-42 for details.", "See <URL> for details."),
]


@pytest.mark.parametrize(("text", "expected"), HARD_CASES, ids=[c[0][:30] for c in HARD_CASES])
def test_when_pii_is_in_a_format_presidio_misses_then_it_is_scrubbed(scrubber: Any, text: str, expected: str) -> None:
    assert scrubber.scrub(text).text == expected
