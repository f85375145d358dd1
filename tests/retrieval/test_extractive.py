"""ExtractiveGenerator: sentence splitting, citation markers, empty retrieval."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.errors import InvalidInputError
from core.types import Citation
from retrieval.generators.extractive import NO_PASSAGE_ANSWER, ExtractiveGenerator, split_sentences

pytestmark = pytest.mark.integration

_MARKED = re.compile(r"(.+?) \[(\d+)\](?: |$)")


def _cite(n: int, text: str, score: float = 0.5) -> Citation:
    return Citation(chunk_id=f"c{n}", doc_id=f"d{n}", text=text, score=score)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One sentence here. Another one follows!", ["One sentence here.", "Another one follows!"]),
        (
            "# Heading line\n- a bullet point item\nPlain line of text.",
            ["Heading line", "a bullet point item", "Plain line of text."],
        ),
        ("Version 2.5 ships today. It costs 3.50 euros.", ["Version 2.5 ships today.", "It costs 3.50 euros."]),
        ("Ok. Fine.", ["Ok.", "Fine."]),
        ("   \n  ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_when_passages_given_then_sentences_marked_with_their_citation(embedder: Any) -> None:
    passages = [
        _cite(1, "Standard shipping takes three to five working days. Express delivery arrives the next day."),
        _cite(2, "Refunds are issued within 14 days. Send the receipt to the billing team."),
    ]
    generator = ExtractiveGenerator(embedder, max_sentences=2, max_score_gap=2.0)
    answer = generator.generate("When will my refund be issued?", passages)
    pairs = _MARKED.findall(answer.text)
    assert len(pairs) == 2
    assert pairs[0] == ("Refunds are issued within 14 days.", "2")
    for sentence, marker in pairs:
        assert sentence in passages[int(marker) - 1].text
    assert answer.citations == tuple(passages)
    assert answer.generator_version == "extractive"


def test_when_no_passages_then_clear_no_passage_answer(embedder: Any) -> None:
    answer = ExtractiveGenerator(embedder).generate("anything?", [])
    assert answer.text == NO_PASSAGE_ANSWER
    assert answer.citations == ()


def test_when_duplicate_sentences_then_each_used_once(embedder: Any) -> None:
    text = "Batteries are covered for one year."
    passages = [_cite(1, text), _cite(2, text), _cite(3, "Gift cards never expire and cannot be refunded.")]
    answer = ExtractiveGenerator(embedder, max_sentences=3).generate("battery warranty", passages)
    assert answer.text.count(text) == 1
    assert answer.text.startswith(f"{text} [1]")


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"max_sentences": 0}, "max_sentences"), ({"passage_weight": 1.5}, "passage_weight")]
)
def test_when_config_invalid_then_invalid_input(embedder: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ExtractiveGenerator(embedder, **kwargs)
    assert info.value.detail["field"] == field


def test_when_sentence_far_below_best_then_left_out(embedder: Any) -> None:
    passages = [
        _cite(1, "Gift cards are never refunded. Refunds are issued within 14 days.", score=0.8),
        _cite(2, "Standard shipping takes three to five working days.", score=0.1),
    ]
    answer = ExtractiveGenerator(embedder, max_sentences=3).generate("Can I get a refund for a gift card?", passages)
    assert "[2]" not in answer.text
    assert answer.text.startswith("Gift cards are never refunded. [1]")
    assert ExtractiveGenerator(embedder, max_score_gap=10.0).generate("gift card refund", passages).text.count("[") == 3
