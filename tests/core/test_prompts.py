"""core.prompts: the shared generator prompt format and citation-marker post-processing."""

from __future__ import annotations

import pytest

from core.prompts import SYSTEM_PROMPT, build_messages, ensure_citations, format_passages

pytestmark = pytest.mark.unit

PASSAGES = ["Roof replacement takes one to two weeks.", "Building permits are handled by the city."]


def test_messages_number_the_passages_in_order() -> None:
    messages = build_messages("  How long\n does a roof take? ", PASSAGES)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = messages[1]["content"]
    assert user.index("[1] Roof replacement") < user.index("[2] Building permits")
    assert "Question: How long does a roof take?" in user


def test_long_passages_are_cut_at_a_word_boundary() -> None:
    text = format_passages(["word " * 100], max_passage_chars=40)
    assert text.startswith("[1] word") and text.endswith(" ...") and len(text) < 60


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It takes two weeks [1].", "It takes two weeks [1]."),
        ("Permits come from the city [9].", "Permits come from the city. [2]"),
        ("Permits are handled by the city.", "Permits are handled by the city. [2]"),
        ("See [1] and [2].", "See [1] and [2]."),
    ],
)
def test_when_markers_are_missing_or_invalid_then_they_are_fixed(answer: str, expected: str) -> None:
    assert ensure_citations(answer, PASSAGES) == expected


def test_when_there_are_no_passages_then_no_marker_is_added() -> None:
    assert ensure_citations("I do not know [1].", []) == "I do not know."
