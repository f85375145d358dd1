"""Question points: how an approved correction comes back for the question it corrects.

A correction passage alone is embedded from its *answer* text, which a question often does not resemble (measured on
a real manual: 0.31 for the corrected question where the 20th hit scored 0.47). So each correction that knows its
(scrubbed) question gets a second point: the question's vector, the correction's text, and ``alias_of`` = the
correction passage's chunk id. A search for the question (or a close paraphrase) hits the question point; the query
path reports it as the correction passage itself (same chunk id, deduplicated). We chose this over embedding the
question and answer together because the pair's vector is a blend that a paraphrase matches less closely than the
question alone (see ``tests/indexing/test_correction_questions.py`` for both, measured), while the answer passage
keeps its own vector for questions the corrector did not ask.

Contract: the question point has the deterministic id ``chunk_id(f"{doc_id}#question", 0)`` and the payload
``doc_id = f"{doc_id}#question"`` (so incremental reuse never mixes it with the passage's chunks); revoking the
correction deletes both points at once.
"""

from __future__ import annotations

from core.ports import Embedder, SparseEncoder
from core.types import Document, Point
from indexing.chunking import chunk_id

QUESTION_SUFFIX = "#question"
ALIAS_KEY = "alias_of"
ALIAS_DOC_KEY = "alias_doc"


def question_point_id(doc_id: str) -> str:
    """Id of the question point of correction document ``doc_id``."""
    return chunk_id(f"{doc_id}{QUESTION_SUFFIX}", 0)


def question_points(
    documents: list[Document], *, embedder: Embedder, sparse_encoder: SparseEncoder | None
) -> list[Point]:
    """Question points of the correction documents among ``documents`` that carry a non-empty ``question``."""
    corrections = [
        d for d in documents if d.metadata.get("source") == "correction" and str(d.metadata.get("question", "")).strip()
    ]
    if not corrections:
        return []
    questions = [str(d.metadata["question"]).strip() for d in corrections]
    vectors = embedder.embed_queries(questions)
    points = []
    for document, question, vector in zip(corrections, questions, vectors, strict=True):
        payload = {
            **document.metadata,
            "text": document.text,
            "doc_id": f"{document.id}{QUESTION_SUFFIX}",
            "doc_hash": document.hash,
            ALIAS_KEY: chunk_id(document.id, 0),
            ALIAS_DOC_KEY: document.id,
        }
        sparse = sparse_encoder.encode_documents([f"{question}\n{document.text}"])[0] if sparse_encoder else None
        points.append(Point(id=question_point_id(document.id), vector=vector, payload=payload, sparse=sparse))
    return points


__all__ = ["ALIAS_DOC_KEY", "ALIAS_KEY", "QUESTION_SUFFIX", "question_point_id", "question_points"]
