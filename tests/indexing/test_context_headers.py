"""Context headers: a document's lead, definition-list entries kept whole, headers embedded but never cited."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.types import Document, SparseVector
from indexing.building import embed_into
from indexing.chunking import Chunker, context_header
from indexing.loaders import load_paths
from indexing.readers.blocks import TERMS_KEY, lead
from indexing.readers.html import html_layout
from indexing.readers.markdown import markdown_layout
from indexing.stores.edge import EdgeVectorStore

pytestmark = pytest.mark.unit

#: A man page as git-doc's AsciiDoc renders it: NAME line, then an OPTIONS definition list.
_OPTION_TEXT = " ".join(f"Sentence {i} of the lease option explains what the push checks." for i in range(10))
MAN_PAGE = f"""<html><head><title>git-push(1)</title></head><body>
<div id="header"><h1>git-push(1) Manual Page</h1>
<h2>NAME</h2><div class="sectionbody"><p>git-push - Update remote refs along with associated objects</p></div></div>
<div id="content"><div class="sect1"><h2 id="_options">OPTIONS</h2><div class="sectionbody"><div class="dlist"><dl>
<dt class="hdlist1">--all</dt><dd><p>Push all branches (i.e. refs under refs/heads/); cannot be used with
other refspec.</p></dd>
<dt class="hdlist1">--[no-]force-with-lease</dt>
<dt class="hdlist1">--force-with-lease=&lt;refname&gt;</dt>
<dd><p>{_OPTION_TEXT}</p><p>{_OPTION_TEXT}</p></dd>
<dt class="hdlist1">--dry-run</dt><dd><p>Do everything except actually send the updates.</p></dd>
</dl></div></div></div></div></body></html>"""


def test_when_page_has_name_line_then_it_is_the_description() -> None:
    layout = html_layout(MAN_PAGE)
    assert layout.title == "git-push(1)"
    assert layout.description == "git-push - Update remote refs along with associated objects"


def test_when_meta_description_then_it_wins_and_long_leads_are_cut() -> None:
    head = '<head><meta name="Description" content="Pack  files and\nindexes."></head>'
    page = f"<html>{head}<body><p>Intro words here.</p>"
    assert html_layout(page).description == "Pack files and indexes."
    assert markdown_layout("# T\n\nOne.\n\nThe first real paragraph is this.").description == (
        "The first real paragraph is this."
    )
    long = "First sentence of a long lead. " + "More words " * 40
    assert lead(long) == "First sentence of a long lead."
    cut = lead("word " * 80)
    assert cut is not None and cut.endswith(" …") and len(cut) <= 202
    assert lead("NAME") is None


def test_when_definition_list_then_entries_span_terms_and_descriptions() -> None:
    layout = html_layout(MAN_PAGE)
    terms = {str(t): (int(a), int(b), int(e)) for a, b, e, t in layout.terms}
    assert set(terms) == {"--all", "--[no-]force-with-lease, --force-with-lease=<refname>", "--dry-run"}
    start, body, end = terms["--[no-]force-with-lease, --force-with-lease=<refname>"]
    assert layout.text[start:body] == "--[no-]force-with-lease\n\n--force-with-lease=<refname>"
    assert layout.text[body:end].strip().startswith("Sentence 0") and layout.text[body:end].rstrip().endswith(".")


def _man_chunks(tmp_path: Path, **kwargs: object) -> list:
    page = tmp_path / "git-push.html"
    page.write_text(MAN_PAGE)
    (doc,) = load_paths([page]).documents
    assert doc.metadata["description"].startswith("git-push - ") and doc.metadata[TERMS_KEY]
    return Chunker(**kwargs).chunk([doc])  # type: ignore[arg-type]


def test_when_chunk_starts_inside_an_option_then_its_header_names_the_option(tmp_path: Path) -> None:
    chunks = _man_chunks(tmp_path, chunk_size=200, chunk_overlap=16)
    lease = [c for c in chunks if "lease option" in c.text]
    assert len(lease) >= 2  # the option's description is longer than one chunk
    first, *rest = lease
    assert "--[no-]force-with-lease\n\n--force-with-lease=<refname>\n\nSentence 0" in first.text  # terms stay with it
    for chunk in rest:
        assert not chunk.text.startswith("--")
        assert chunk.context == (
            "git-push(1): git-push - Update remote refs along with associated objects\n"
            "OPTIONS › --[no-]force-with-lease, --force-with-lease=<refname>"
        )
    assert "OPTIONS ›" not in first.context  # starts at its terms: nothing to add
    for chunk in chunks:  # the header is never part of the stored, cited text
        assert not chunk.text.startswith("git-push(1): ")
        assert chunk.embedding_text == f"{chunk.context}\n\n{chunk.text}"


def test_when_terms_would_end_a_chunk_then_they_move_to_the_next(tmp_path: Path) -> None:
    text = "\n\n".join(["Intro " * 30, "--verbose", "Be verbose about everything " * 6])
    verbose = text.index("--verbose")
    doc = Document(id="d", text=text, metadata={TERMS_KEY: [[verbose, verbose + 9, len(text), "--verbose"]]})
    first, second = Chunker(chunk_size=48, chunk_overlap=4).chunk([doc])
    assert first.text.startswith("Intro") and "--verbose" not in first.text
    assert second.text.startswith("--verbose\n\nBe verbose")


def test_when_headers_off_or_no_title_then_no_context(tmp_path: Path) -> None:
    assert all(c.context == "" for c in _man_chunks(tmp_path, headers=False))
    (faq,) = Chunker().chunk([Document(id="faq-1", text="Permits take two weeks.", metadata={"question": "Q?"})])
    assert faq.context == "" and faq.embedding_text == "Permits take two weeks."
    assert Chunker(headers=False).signature == "section:200:32" != Chunker().signature == "section-ctx:200:32"
    assert context_header({"title": "Guide", "section": "Guide"}) == "Guide"
    assert context_header({"description": "Lead.", "section": "Install"}, "--prefix") == "Lead.\nInstall › --prefix"


class RecordingEmbedder:
    """Fake embedder recording every text it embeds."""

    version, dim = "rec-v1", 4

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.texts.extend(texts)
        return np.tile(np.eye(self.dim, dtype=np.float32)[0], (len(texts), 1))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


class RecordingEncoder:
    """Fake keyword encoder recording what it encodes."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        self.texts.extend(texts)
        return [SparseVector(indices=(1,), values=(1.0,)) for _ in texts]


def test_when_built_then_header_embedded_and_keyword_indexed_but_payload_text_clean(
    tmp_path: Path, edge_store: EdgeVectorStore
) -> None:
    page = tmp_path / "git-push.html"
    page.write_text(MAN_PAGE)
    docs = load_paths([page]).documents
    embedder, encoder = RecordingEmbedder(), RecordingEncoder()
    edge_store.create_collection("kb__v1", dim=embedder.dim, sparse=True)
    embed_into(edge_store, Chunker(), "kb__v1", docs, embedder=embedder, progress=False, sparse_encoder=encoder)
    assert embedder.texts == encoder.texts
    assert all(t.startswith("git-push(1): git-push - Update remote refs") for t in embedder.texts)
    stored = [str(p.payload["text"]) for p in edge_store.scroll("kb__v1", with_vectors=False)]
    assert len(stored) == len(embedder.texts)
    assert not any(t.startswith("git-push(1): ") for t in stored)


def test_when_a_description_is_longer_than_a_chunk_then_every_later_piece_names_its_term() -> None:
    body = " ".join(f"Sentence {i} says what the verbose flag prints." for i in range(40))
    text = f"Intro paragraph.\n\n--verbose\n\n{body}"
    verbose = text.index("--verbose")
    doc = Document(id="d", text=text, metadata={TERMS_KEY: [[verbose, verbose + 9, len(text), "--verbose"]]})
    chunks = Chunker(chunk_size=64, chunk_overlap=8).chunk([doc])
    described = [c for c in chunks if "verbose flag" in c.text]
    assert len(described) >= 3
    # the first piece holds the term lines (the short intro is carried into it): nothing to add to its header
    assert described[0].text.startswith("Intro paragraph.\n\n--verbose\n\nSentence 0") and described[0].context == ""
    assert all(c.context == "--verbose" for c in described[1:])
