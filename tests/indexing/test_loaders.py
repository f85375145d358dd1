"""Loaders: folder (Markdown / text / HTML), JSONL, built-in FAQ; table-driven bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from indexing.loaders import html_to_text, load_builtin_faq, load_folder, load_jsonl

pytestmark = pytest.mark.unit


def _write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_load_folder_reads_markdown_text_and_html(tmp_path: Path) -> None:
    _write(tmp_path, "guide.md", "# Roof repairs\n\nWe fix roofs.\n")
    _write(tmp_path, "sub/notes.txt", "Plain notes.\n")
    _write(
        tmp_path,
        "page.html",
        "<html><head><title>Permit  page</title><style>p{color:red}</style></head>"
        "<body><h1>Permits</h1><p>Apply&nbsp;early &amp; often.</p><script>alert(1)</script></body></html>",
    )
    _write(tmp_path, "image.png", b"\x89PNG")
    _write(tmp_path, ".hidden/secret.md", "# no")
    docs = {d.id: d for d in load_folder(tmp_path)}
    assert sorted(docs) == ["guide.md", "page.html", "sub/notes.txt"]
    assert docs["guide.md"].metadata["title"] == "Roof repairs"
    assert docs["guide.md"].metadata["format"] == "markdown"
    assert docs["guide.md"].metadata["link"] == "guide.md"
    assert docs["sub/notes.txt"].metadata["title"] == "notes"
    page = docs["page.html"]
    assert page.metadata["title"] == "Permit page"
    assert page.metadata["format"] == "html"
    assert page.text == "Permits\n\nApply early & often."
    assert "alert" not in page.text and "color" not in page.text


def test_html_to_text_breaks_blocks_and_skips_scripts() -> None:
    text, title = html_to_text("<div>One<br>Two</div><ul><li>a</li><li>b</li></ul><noscript>x</noscript>")
    assert title is None
    assert text.split() == ["One", "Two", "a", "b"]
    assert "\n" in text


def test_when_folder_missing_or_holds_nothing_readable_then_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a directory"):
        load_folder(tmp_path / "missing")
    _write(tmp_path, "image.png", b"\x89PNG")
    _write(tmp_path, "empty.md", "")
    with pytest.raises(InvalidInputError, match="no readable"):
        load_folder(tmp_path)


def test_load_jsonl_reads_records(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": " Alpha. ", "metadata": {"category": "x"}}),
        "",
        json.dumps({"id": 7, "text": "Seven"}),
    ]
    docs = load_jsonl(_write(tmp_path, "kb.jsonl", "\n".join(lines)))
    assert [(d.id, d.text) for d in docs] == [("a", "Alpha."), ("7", "Seven")]
    assert docs[0].metadata == {"source": "document", "category": "x"}
    assert docs[1].metadata == {"source": "document"}


GOOD = json.dumps({"id": "ok", "text": "fine"})


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("{not json", "<line>"),
        ("[1, 2]", "<line>"),
        (json.dumps({"text": "no id"}), "id"),
        (json.dumps({"id": "", "text": "blank id"}), "id"),
        (json.dumps({"id": True, "text": "bool id"}), "id"),
        (json.dumps({"id": "x"}), "text"),
        (json.dumps({"id": "x", "text": 3}), "text"),
        (json.dumps({"id": "x", "text": "  "}), "text"),
        (json.dumps({"id": "x", "text": "t", "metadata": [1]}), "metadata"),
        (json.dumps({"id": "x", "text": "t", "metadata": {"doc_id": "y"}}), "metadata.doc_id"),
        (GOOD, "id"),  # duplicate of line 1
    ],
)
def test_when_jsonl_line_bad_then_error_names_line_and_field(tmp_path: Path, line: str, field: str) -> None:
    path = _write(tmp_path, "kb.jsonl", f"{GOOD}\n\n{line}\n")
    with pytest.raises(InvalidInputError) as info:
        load_jsonl(path)
    assert info.value.detail["line"] == 3
    assert info.value.detail["field"] == field
    assert "line 3" in info.value.message and repr(field) in info.value.message and "kb.jsonl" in info.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "no records"), ("\n\n", "no records"), (b"\xff\xfe{", "not UTF-8"), ("x" * 500, "over the limit")],
)
def test_when_jsonl_file_bad_then_invalid_input(tmp_path: Path, content: str | bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_jsonl(_write(tmp_path, "kb.jsonl", content), max_file_bytes=100)


def test_when_jsonl_path_missing_then_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a file"):
        load_jsonl(tmp_path / "nope.jsonl")


def test_builtin_faq_is_one_document_per_answer(faq: list[dict]) -> None:
    docs = load_builtin_faq("en")
    assert len(docs) == len(faq) == 503
    first, entry = docs[0], faq[0]
    assert first.id == entry["id"]
    assert first.text == entry["a"].strip()
    assert entry["q"] not in first.text
    assert first.metadata["question"] == entry["q"]
    assert first.metadata["category"] == entry["category"]
    assert first.metadata["sources"] == entry["sources"]
    assert first.metadata["source"] == "document"
    assert len({d.id for d in docs}) == len(docs)


def test_when_faq_language_unknown_then_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="unknown FAQ language"):
        load_builtin_faq("de")
