"""PresidioScrubber, table-driven like Presidio's own recognizer tests (text -> entity types / scrubbed text)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from core.errors import InvalidInputError
from core.ports import PiiScrubber
from core.settings import PiiSettings

pytestmark = pytest.mark.integration

CASES = [
    ("Write to jane.doe@example.com today", {"EMAIL_ADDRESS"}, "Write to <EMAIL_ADDRESS> today"),
    ("Call me on 415-555-2671 tomorrow", {"PHONE_NUMBER"}, "Call me on <PHONE_NUMBER> tomorrow"),
    ("Reach me at +44 20 7946 0958", {"PHONE_NUMBER"}, "Reach me at <PHONE_NUMBER>"),
    ("Ticket from John Smith: invoice missing", {"PERSON"}, "Ticket from <PERSON>: invoice missing"),
    ("My card 4111 1111 1111 1111 was charged twice", {"CREDIT_CARD"}, "My card <CREDIT_CARD> was charged twice"),
    ("Refund to IBAN DE89 3704 0044 0532 0130 00 please", {"IBAN_CODE"}, "Refund to IBAN <IBAN_CODE> please"),
    ("Login from 81.2.69.160 was not me", {"IP_ADDRESS"}, "Login from <IP_ADDRESS> was not me"),
    ("Server 192.168.10.4 is down", set(), "Server 192.168.10.4 is down"),  # private address: technical content
    ("How do I reset my password?", set(), "How do I reset my password?"),
    ("The invoice total is 42 euros for 3 items.", set(), "The invoice total is 42 euros for 3 items."),
]


@pytest.mark.parametrize(("text", "entities", "expected"), CASES, ids=[c[2][:28] for c in CASES])
def test_when_text_has_pii_then_it_is_replaced_by_its_type(
    scrubber: Any, text: str, entities: set[str], expected: str
) -> None:
    result = scrubber.scrub(text)
    assert {f.entity_type for f in result.findings} == entities
    assert result.text == expected
    assert result.changed is bool(entities)


@pytest.mark.parametrize(("text", "entities", "_"), CASES, ids=[c[2][:28] for c in CASES])
def test_when_scanned_then_findings_match_without_replacing(
    scrubber: Any, text: str, entities: set[str], _: str
) -> None:
    findings = scrubber.scan(text)
    assert {f.entity_type for f in findings} == entities
    for f in findings:
        assert 0 <= f.start < f.end <= len(text) and f.score >= 0.5


def test_when_several_entities_then_all_replaced(scrubber: Any) -> None:
    text = "Contact John Smith at john.smith@example.com or 212-555-0134."
    assert scrubber.scrub(text).text == "Contact <PERSON> at <EMAIL_ADDRESS> or <PHONE_NUMBER>."


def test_when_empty_text_then_unchanged(scrubber: Any) -> None:
    assert scrubber.scrub("").text == "" and scrubber.scan("   ") == []


def test_scrubber_implements_the_port(scrubber: Any) -> None:
    assert isinstance(scrubber, PiiScrubber)


def test_when_used_from_threads_then_results_are_identical(scrubber: Any) -> None:
    text = "Ticket from John Smith, jane@example.org, card 4111 1111 1111 1111"
    expected = scrubber.scrub(text).text
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(scrubber.scrub(text).text)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [expected] * 4


@pytest.mark.unit
def test_when_entity_list_empty_then_invalid() -> None:
    from feedback.pii import PresidioScrubber

    with pytest.raises(InvalidInputError, match="at least one"):
        PresidioScrubber(PiiSettings(entities=[]))


def test_when_scrubbed_in_batch_then_results_equal_one_by_one(scrubber: Any) -> None:
    texts = [c[0] for c in CASES] + ["", "   "]
    assert [r.text for r in scrubber.scrub_many(texts)] == [scrubber.scrub(t).text for t in texts]


NAMES = [
    ("Please update: Lars Dubois moved", "Please update: <PERSON> moved"),
    ("Customer Sofia Rossi called", "Customer <PERSON> called"),
    ("Ticket from Emma Dubois: invoice", "Ticket from <PERSON>: invoice"),
    ("Open Settings and choose Security.", "Open Settings and choose Security."),
    ("The Billing Page lists every invoice.", "The Billing Page lists every invoice."),
]


@pytest.mark.parametrize(("text", "expected"), NAMES, ids=[n[1][:24] for n in NAMES])
def test_when_name_missed_by_spacy_then_gazetteer_catches_it(scrubber: Any, text: str, expected: str) -> None:
    assert scrubber.scrub(text).text == expected


def test_when_scanned_in_batch_then_findings_equal_one_by_one(scrubber: Any) -> None:
    texts = [c[0] for c in CASES] + [""]
    assert scrubber.scan_many(texts) == [scrubber.scan(t) for t in texts]
