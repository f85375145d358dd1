"""ExtractiveGenerator: whole sentences from a real segmenter, commands / lists / tables intact, no fragments."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from core.types import Citation
from retrieval.generators.extractive import (
    MIN_SEGMENT_WORDS,
    NO_PASSAGE_ANSWER,
    ExtractiveGenerator,
    answer_segments,
)
from retrieval.generators.passages import passage_units

pytestmark = pytest.mark.unit

# A page as an HTML-to-text pass leaves it: hard-wrapped lines, a title line, a command after its introducer.
MANUAL = """Chapter 25. Backup and Restore
To dump a single table named mytab:

$ pg_dump -t mytab mydb > db.sql

The max_connections parameter determines the
maximum number of concurrent connections to the
database server. The default is typically 100
connections. This parameter can only be set at
server start.
"""


def _cite(n: int, text: str, score: float = 0.5) -> Citation:
    return Citation(chunk_id=f"c{n}", doc_id=f"d{n}", text=text, score=score)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One sentence here. Another one follows!", ["One sentence here.", "Another one follows!"]),
        ("Version 2.5 ships today. It costs 3.50 euros.", ["Version 2.5 ships today.", "It costs 3.50 euros."]),
        ("The line is hard\nwrapped in the middle. Next.", ["The line is hard wrapped in the middle.", "Next."]),
        ("# Heading line\nPlain line of text.", ["Plain line of text."]),
        ("   \n  ", []),
    ],
)
def test_when_prose_then_whole_sentences_of_reflowed_paragraphs(text: str, expected: list[str]) -> None:
    assert [u.text for u in passage_units(text)] == expected


def test_when_passage_has_blocks_then_code_list_and_table_units_are_intact() -> None:
    text = "Options:\n- first item that\n  wraps here\n- second item\n\n| a | b |\n| 1 | 2 |\n\n    make all\n"
    units = passage_units(text)
    assert [(u.kind, u.text) for u in units] == [
        ("sentence", "Options:"),
        ("list", "- first item that wraps here\n- second item"),
        ("table", "| a | b |\n| 1 | 2 |"),
        ("code", "make all"),
    ]


def test_when_sentence_introduces_a_command_then_the_command_comes_whole() -> None:
    answer = ExtractiveGenerator().generate("How do I dump a single table?", [_cite(1, MANUAL)])
    assert answer.text.startswith("To dump a single table named mytab:\n$ pg_dump -t mytab mydb > db.sql")
    assert "Chapter 25" not in answer.text  # the title line is not a sentence


def test_when_lines_are_hard_wrapped_then_answer_is_a_paragraph_of_whole_sentences() -> None:
    answer = ExtractiveGenerator().generate("How do I change max_connections?", [_cite(1, MANUAL)])
    assert answer.text == (
        "The max_connections parameter determines the maximum number of concurrent connections to the database "
        "server. The default is typically 100 connections. This parameter can only be set at server start. [1]"
    )


def test_when_best_passage_is_a_list_then_its_items_are_kept() -> None:
    steps = "Supported archive formats:\n- tar with gzip compression\n- zip archives of any size\n- plain directories"
    passages = [_cite(1, steps), _cite(2, "Archives are created nightly by the backup job of the server.")]
    answer = ExtractiveGenerator().generate("Which archive formats are supported?", passages)
    assert "- tar with gzip compression\n- zip archives of any size\n- plain directories" in answer.text


def test_when_answered_then_no_segment_between_markers_is_a_fragment() -> None:
    passages = [
        _cite(1, "Yes.\nNo.\nRefunds are issued within 14 days of the request. Send the receipt to billing."),
        _cite(2, "Ok.\nGift cards are never refunded by the shop."),
        _cite(3, "Refund."),
    ]
    for question in ("refund gift card", "When is a refund issued?", "yes", "unrelated words entirely"):
        segments = answer_segments(ExtractiveGenerator().generate(question, passages).text)
        assert segments and all(len(s.split()) >= MIN_SEGMENT_WORDS for s in segments)


def test_when_two_passages_answer_then_each_part_ends_with_its_marker() -> None:
    passages = [
        _cite(1, "Standard shipping takes three to five working days."),
        _cite(2, "Refunds are issued within 14 days. Send the receipt to the billing team."),
    ]
    answer = ExtractiveGenerator(max_sentences=3).generate("When will my refund be issued after shipping?", passages)
    assert answer.text.startswith("Refunds are issued within 14 days. Send the receipt to the billing team. [2]")
    assert answer.text.endswith("Standard shipping takes three to five working days. [1]")
    assert answer.citations == tuple(passages)
    assert answer.generator_version == "extractive"


def test_when_no_passages_then_clear_no_passage_answer() -> None:
    answer = ExtractiveGenerator().generate("anything?", [])
    assert answer.text == NO_PASSAGE_ANSWER
    assert answer.citations == ()


def test_when_duplicate_sentences_then_each_used_once() -> None:
    text = "Batteries are covered for one year."
    passages = [_cite(1, text), _cite(2, text), _cite(3, "Gift cards never expire and cannot be refunded.")]
    answer = ExtractiveGenerator(max_sentences=3).generate("battery warranty", passages)
    assert answer.text.count(text) == 1
    assert answer.text.startswith(f"{text} [1]")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_sentences": 0}, "max_sentences"), ({"passage_weight": 1.5}, "passage_weight"),
     ({"max_passages": 0}, "max_passages")],
)  # fmt: skip
def test_when_config_invalid_then_invalid_input(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ExtractiveGenerator(**kwargs)
    assert info.value.detail["field"] == field
