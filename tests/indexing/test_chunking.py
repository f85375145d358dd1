"""Chunker: deterministic ids, metadata, no metadata in text, chunk size respected."""

from __future__ import annotations

import itertools
import uuid

import pytest

from core.errors import InvalidInputError
from core.types import Document
from indexing.chunking import Chunker, chunk_id

pytestmark = pytest.mark.unit

LONG = " ".join(f"Sentence number {i} talks about roof tiles and permits." for i in range(40))


def test_chunks_are_deterministic_and_carry_metadata(chunker: Chunker) -> None:
    doc = Document(id="guide.md", text=LONG, metadata={"category": "roofing", "source": "document"})
    first, again = chunker.chunk([doc]), Chunker(48, 8).chunk([doc])
    assert len(first) > 3
    assert [c.id for c in first] == [c.id for c in again] == [chunk_id("guide.md", i) for i in range(len(first))]
    assert all(uuid.UUID(c.id) for c in first)
    for index, chunk in enumerate(first):
        assert chunk.doc_id == "guide.md"
        assert chunk.metadata["doc_id"] == "guide.md"
        assert chunk.metadata["doc_hash"] == doc.hash
        assert chunk.metadata["chunk_index"] == index
        assert chunk.metadata["chunk_count"] == len(first)
        assert chunk.metadata["category"] == "roofing"
        assert chunk.metadata["source"] == "document"


def test_metadata_is_not_embedded_in_text(chunker: Chunker) -> None:
    doc = Document(id="d", text="Short answer about billing.", metadata={"question": "What about MARKER?"})
    (chunk,) = chunker.chunk([doc])
    assert chunk.text == "Short answer about billing."
    assert "MARKER" not in chunk.text


def test_chunk_size_bounds_tokens_and_overlap_repeats_text(chunker: Chunker) -> None:
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")
    chunks = chunker.chunk([Document(id="d", text=LONG)])
    assert max(len(enc.encode(c.text)) for c in chunks) <= 48
    assert all(set(a.text.split()[-3:]) & set(b.text.split()[:12]) for a, b in itertools.pairwise(chunks))


def test_order_blank_docs_and_source_default(chunker: Chunker) -> None:
    docs = [Document(id="b", text="Bee."), Document(id="empty", text="  "), Document(id="a", text="Ay.")]
    chunks = chunker.chunk(docs)
    assert [c.doc_id for c in chunks] == ["b", "a"]
    assert chunks[0].metadata["source"] == "document"


def test_changed_text_changes_hash_not_ids(chunker: Chunker) -> None:
    (old,) = chunker.chunk([Document(id="d", text="Version one.")])
    (new,) = chunker.chunk([Document(id="d", text="Version two.")])
    assert old.id == new.id
    assert old.metadata["doc_hash"] != new.metadata["doc_hash"]


def test_when_duplicate_ids_or_bad_config_then_invalid_input(chunker: Chunker) -> None:
    with pytest.raises(InvalidInputError, match="duplicate document id"):
        chunker.chunk([Document(id="x", text="a"), Document(id="x", text="b")])
    with pytest.raises(InvalidInputError, match="chunk_overlap"):
        Chunker(32, 32)


def test_from_settings_uses_indexing_section(settings) -> None:
    made = Chunker.from_settings(settings.indexing)
    assert made.config.chunk_size == settings.indexing.chunk_size
    assert made.signature == f"section-ctx:{settings.indexing.chunk_size}:{settings.indexing.chunk_overlap}"
