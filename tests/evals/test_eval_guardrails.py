"""Guardrails catch planted PII, blocklist terms, missing provenance and memorised canaries."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fakes import FakeScrubber

from core.errors import GuardrailViolationError, InvalidInputError
from core.types import Answer, Citation, ContrastivePair, SftExample
from evals.guardrails import (
    Canary,
    GuardrailResult,
    canary_sft_examples,
    check_blocklist,
    check_provenance,
    leaked,
    make_canaries,
    memorisation_probe,
    require_passed,
    scan_dataset_pii,
    scan_pii,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("texts", "passed", "counts", "offending"),
    [
        ({"a": "How do I apply for a permit?", "b": "Call the office."}, True, {}, []),
        ({"a": "mail me at ann@example.com", "b": "fine"}, False, {"EMAIL_ADDRESS": 1}, ["a"]),
        ({"a": ["ok", "ring +46 70 123 45 67"], "b": "x@y.se and z@w.se"}, False,
         {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}, ["a", "b"]),
    ],
)  # fmt: skip
def test_when_texts_scanned_then_pii_counted_by_type(texts, passed, counts, offending) -> None:  # type: ignore[no-untyped-def]
    result = scan_pii(texts, FakeScrubber(), name="answers_pii")
    assert result.passed is passed
    assert result.details["entity_counts"] == counts
    assert result.details["offending_rows"] == offending
    assert "@" not in result.reason and "@" not in str(result.details)  # never the raw PII


def test_when_training_set_has_planted_pii_then_row_reported() -> None:
    rows = [
        ContrastivePair(query="permit cost?", positive="It costs 500 SEK."),
        ContrastivePair(query="who?", positive="Ask jane.doe@corp.example", negatives=["no"]),
    ]
    result = scan_dataset_pii(rows, FakeScrubber())
    assert not result.passed and result.details["offending_rows"] == ["row-1"]


class Ledger:
    """``ProvenanceLedger`` fake: a set of usable (present, consented, not deleted) event ids."""

    def __init__(self, usable: set[str]) -> None:
        self.usable = usable

    def usable_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        return {e for e in event_ids if e in self.usable}


def test_when_all_rows_trace_to_consented_events_then_passes() -> None:
    rows = [SftExample("q", ["c"], "t", provenance=["e1", "e2"]), SftExample("q2", ["c"], "t", provenance=["e3"])]
    result = check_provenance(rows, Ledger({"e1", "e2", "e3"}))
    assert result.passed and result.details["events"] == 3


def test_when_event_deleted_or_provenance_missing_then_refused_with_rows() -> None:
    rows = [
        SftExample("q", ["c"], "t", provenance=["e1"]),
        SftExample("q", ["c"], "t", provenance=["e1", "e-deleted"]),
        SftExample("q", ["c"], "t", provenance=[]),
    ]
    result = check_provenance(rows, Ledger({"e1"}))
    assert not result.passed
    assert set(result.details["offending_rows"]) == {"row-1", "row-2"}
    assert result.details["offending_rows"]["row-2"] == "no provenance event ids"
    assert result.details["unusable_events"] == ["e-deleted"]
    with pytest.raises(GuardrailViolationError, match="provenance"):
        require_passed([result])


def test_when_ledger_is_a_callable_then_used() -> None:
    result = check_provenance({"r1": ["e1"]}, lambda ids: {"e1"})
    assert result.passed


@pytest.mark.parametrize(
    ("entries", "answers", "offending"),
    [
        (["guarantee"], {"a": "We GUARANTEE approval.", "b": "Approval is likely."}, ["a"]),
        (["guarantee"], {"a": "guaranteed"}, []),  # whole words only
        (["re:\\b\\d{6}-\\d{4}\\b"], {"a": "id 850101-1234 here", "b": "no id"}, ["a"]),
        (["ignore previous", "re:(?i)password"], {"a": "Your PASSWORD is", "b": "please Ignore Previous"}, ["a", "b"]),
    ],
)
def test_when_answers_hit_blocklist_then_blocked(entries, answers, offending) -> None:  # type: ignore[no-untyped-def]
    result = check_blocklist(answers, entries)
    assert result.passed is (not offending)
    assert result.details["offending_rows"] == offending


def test_when_blocklist_empty_then_passes_saying_so() -> None:
    result = check_blocklist({"a": "anything"}, [])
    assert result.passed and "no blocklist configured" in result.reason


@pytest.mark.parametrize("entries", [["re:("], [" "]])
def test_when_blocklist_entry_invalid_then_invalid_input(entries: list[str]) -> None:
    with pytest.raises(InvalidInputError):
        check_blocklist({"a": "x"}, entries)


class MemorisingGenerator:
    """A tuned generator that memorised its training rows: completes any planted prefix with the secret."""

    version = "lora-leaky"

    def __init__(self, rows: Sequence[SftExample]) -> None:
        self.memory = {r.query: r.target for r in rows}

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        return Answer(self.memory.get(question, "I cannot help with that."), ())


class CleanGenerator:
    """A generator that never reproduces secrets."""

    version = "lora-clean"

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        return Answer("I cannot share personal data from records.", ())


def test_canaries_are_deterministic_and_cover_kinds() -> None:
    canaries = make_canaries(9, seed=5)
    assert canaries == make_canaries(9, seed=5)
    assert {c.kind for c in canaries} == {"name", "email", "card"}
    assert len({c.secret for c in canaries}) == 9


def test_when_generator_memorised_canaries_then_probe_fails_with_rate() -> None:
    canaries = make_canaries(6)
    result = memorisation_probe(MemorisingGenerator(canary_sft_examples(canaries)), canaries)
    assert not result.passed
    assert result.details["leak_rate"] == 1.0 and result.details["leaks"] == 6


def test_when_generator_does_not_leak_then_probe_passes() -> None:
    result = memorisation_probe(CleanGenerator(), make_canaries(6))
    assert result.passed and result.details["leak_rate"] == 0.0


def test_when_partial_leak_under_threshold_then_passes() -> None:
    canaries = make_canaries(10)
    leaky = MemorisingGenerator(canary_sft_examples(canaries[:1]))
    assert memorisation_probe(leaky, canaries, max_leak_rate=0.1).passed
    assert not memorisation_probe(leaky, canaries, max_leak_rate=0.05).passed


@pytest.mark.parametrize(
    ("secret", "completion", "hit"),
    [("4111 1111 1111 1111", "card 4111-1111-1111-1111 ok", True), ("ann.b@x.example", "ANN.B@X.EXAMPLE", True),
     ("Quorvina Pexmoor", "Quorvina", False)],
)  # fmt: skip
def test_leak_detection_normalises_formatting(secret: str, completion: str, hit: bool) -> None:
    assert leaked(Canary("c", "card", "p", secret), completion) is hit


def test_require_passed_quiet_when_all_pass() -> None:
    require_passed([GuardrailResult("x", True, "ok")])
