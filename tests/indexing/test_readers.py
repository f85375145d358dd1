"""Readers: main content only, paragraphs re-flowed, code verbatim, headings as sections; .gz and PDF."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from core.types import Document
from indexing.chunking import Chunker
from indexing.loaders import load_paths
from indexing.readers.html import html_layout
from indexing.readers.markdown import markdown_layout, text_layout

pytestmark = pytest.mark.unit

DOCBOOK = """<?xml version="1.0" encoding="UTF-8"?>
<html><head><title>Chapter 2. Package management</title></head><body>
<div class="navheader"><table summary="Navigation header"><tr><th colspan="3">Chapter 2. Package management</th></tr>
<tr><td><a accesskey="p" href="ch01.html"><img src="prev.png" alt="Prev"/></a></td><th></th>
<td><a href="ch03.html"><img src="next.png" alt="Next"/></a></td></tr></table><hr/></div>
<div class="chapter"><div class="titlepage"><h1 class="title">Chapter 2. Package management</h1></div>
<div class="toc"><p><b>Table of Contents</b></p><dl><dt><a href="#a">2.1. Basics</a></dt></dl></div>
<h2 class="title">2.1. Basics</h2>
<p>APT is the package
   manager of Debian and it
   resolves dependencies.</p>
<p>To update the package index and upgrade:</p>
<pre class="screen">$ sudo apt update
$ sudo apt   full-upgrade</pre>
</div>
<div class="navfooter"><hr/><table summary="Navigation footer"><tr><td>Chapter 1. Tutorials </td>
<td><a accesskey="h" href="index.html"><img src="home.png" alt="Home"/></a></td><td> Chapter 3. Init</td></tr>
<tr><td><a accesskey="u" href="index.html">Up</a></td></tr></table></div>
<div id="footer"><div id="footer-text">Last updated 2024-05-31</div></div>
</body></html>"""


def test_when_docbook_page_then_navigation_toc_and_footer_dropped() -> None:
    layout = html_layout(DOCBOOK)
    assert layout.title == "Chapter 2. Package management"
    for noise in ("Prev", "Next", "Home", "Up", "Chapter 1. Tutorials", "Chapter 3", "Table of Contents",
                  "Last updated"):  # fmt: skip
        assert noise not in layout.text, noise
    assert "APT is the package manager of Debian and it resolves dependencies." in layout.text
    assert "$ sudo apt update\n$ sudo apt   full-upgrade" in layout.text  # verbatim, spacing kept
    assert [t for _, t in layout.sections] == ["Chapter 2. Package management", "2.1. Basics"]


def test_when_html_has_main_then_only_main_is_read() -> None:
    html = "<body><header><a href='/'>Site</a></header><main><h1>Doc</h1><p>Body text.</p></main><p>Ad</p></body>"
    assert html_layout(html).text == "Doc\n\nBody text."


@pytest.mark.parametrize(
    ("source", "expected_text", "sections"),
    [
        ("# Title\n\nA hard\nwrapped line.\n", "Title\n\nA hard wrapped line.", ["Title"]),
        ("Intro\n=====\n\nText here\nand here.\n", "Intro\n\nText here and here.", ["Intro"]),
        ("Run:\n\n```sh\nmake  all\n\nmake install\n```\n", "Run:\n\nmake  all\n\nmake install", []),
        ("Run:\n\n    git push \\\n      --force-with-lease\n", "Run:\n\ngit push \\\n  --force-with-lease", []),
        ("- one\n  more\n- two\n", "- one more\n\n- two", []),
    ],
    ids=["atx-reflow", "setext", "fenced-code-verbatim", "indented-code", "list-items"],
)
def test_when_markdown_then_reflowed_code_kept_headings_sections(source, expected_text, sections) -> None:
    layout = markdown_layout(source)
    assert layout.text == expected_text
    assert [t for _, t in layout.sections] == sections


def test_when_text_then_hash_lines_are_not_headings() -> None:
    layout = text_layout("# not a heading\nin text\n")
    assert layout.text == "# not a heading in text" and layout.sections == []


def _pdf_bytes(text: str) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=300)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})  # fmt: skip
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 20 200 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_when_gz_and_pdf_then_read(tmp_path: Path) -> None:
    (tmp_path / "README.md.gz").write_bytes(gzip.compress(b"# Readme\n\nCompressed\ndocs are read.\n"))
    (tmp_path / "page.html.gz").write_bytes(gzip.compress(DOCBOOK.encode()))
    (tmp_path / "manual.pdf").write_bytes(_pdf_bytes("Set core.autocrlf to input on Linux."))
    result = load_paths([tmp_path], source_base_url="https://docs.example.com/kb/")
    docs = {d.id: d for d in result.documents}
    assert not result.skipped
    assert docs["README.md.gz"].text == "Readme\n\nCompressed docs are read."
    assert docs["README.md.gz"].metadata["link"] == "https://docs.example.com/kb/README.md.gz"
    assert docs["page.html.gz"].metadata["format"] == "html"
    assert "core.autocrlf" in docs["manual.pdf"].text and docs["manual.pdf"].metadata["format"] == "pdf"


def test_when_several_paths_then_ids_relative_to_common_parent(tmp_path: Path) -> None:
    for tree in ("git-doc", "handbook"):
        (tmp_path / tree).mkdir()
        (tmp_path / tree / "README.md").write_text(f"# {tree}\n\nAbout {tree}.\n")
    result = load_paths([tmp_path / "git-doc", tmp_path / "handbook"])
    assert sorted(d.id for d in result.documents) == ["git-doc/README.md", "handbook/README.md"]


def test_when_page_has_sections_then_chunks_carry_section_and_code_stays_whole(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text(DOCBOOK)
    (doc,) = load_paths([tmp_path]).documents
    chunks = Chunker(64, 8).chunk([doc])
    assert {c.metadata["section"] for c in chunks} <= {"Chapter 2. Package management", "2.1. Basics"}
    assert any("$ sudo apt update\n$ sudo apt   full-upgrade" in c.text for c in chunks)
    assert all("_sections" not in c.metadata and "_code" not in c.metadata for c in chunks)
    assert chunks[0].metadata["title"] == "Chapter 2. Package management"


def test_when_two_long_sections_then_no_chunk_straddles_them() -> None:
    one, two = "Alpha words here. " * 30, "Beta words there. " * 30
    text = f"One\n\n{one.strip()}\n\nTwo\n\n{two.strip()}"
    doc = Document(id="d", text=text, metadata={"_sections": [[0, "One"], [text.index("Two"), "Two"]]})
    chunks = Chunker(512, 32).chunk([doc])
    assert [c.metadata["section"] for c in chunks] == ["One", "Two"]
    assert "Beta" not in chunks[0].text and "Alpha" not in chunks[1].text
