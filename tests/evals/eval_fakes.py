"""Port-level fakes of the evals tests: a numpy ``Retriever`` (real embeddings), simple ``Generator``s."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import UpstreamUnavailableError
from core.ports import Embedder
from core.types import Answer, Citation, SearchFilter


class NumpyRetriever:
    """``Retriever`` over an in-memory matrix of document vectors (exact cosine), with a batched path."""

    def __init__(self, embedder: Embedder, docs: dict[str, str]) -> None:
        self.embedder = embedder
        self.ids = list(docs)
        self.texts = [docs[i] for i in self.ids]
        self.matrix = embedder.embed_documents(self.texts)
        self.batch_calls = 0

    def retrieve(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> list[Citation]:
        """Best ``top_k`` documents for one question."""
        return self.retrieve_many([question], top_k=top_k, filter=filter)[0]

    def retrieve_many(
        self, questions: Sequence[str], *, top_k: int, filter: SearchFilter | None = None
    ) -> list[list[Citation]]:
        """Best ``top_k`` documents per question, queries embedded in one batch."""
        self.batch_calls += 1
        scores = self.embedder.embed_queries(list(questions)) @ self.matrix.T
        out = []
        for row in scores:
            top = np.argsort(-row)[:top_k]
            out.append([Citation(f"{self.ids[j]}#0", self.ids[j], self.texts[j], float(row[j])) for j in top])
        return out


class LeadGenerator:
    """``Generator`` answering with the first sentence of the best passage (deterministic, no model)."""

    version = "lead-v1"

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """First sentence of the first passage, with its citation marker."""
        if not passages:
            return Answer("No passage.", ())
        return Answer(passages[0].text.split(". ")[0] + " [1]", tuple(passages[:1]), self.version)


class ReversedRetriever:
    """A deliberately bad ``Retriever``: the wrapped retriever's top ``top_k`` in reverse order."""

    def __init__(self, inner: NumpyRetriever) -> None:
        self.inner = inner

    def retrieve(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> list[Citation]:
        """Worst-first ranking."""
        return self.inner.retrieve(question, top_k=top_k, filter=filter)[::-1]

    def retrieve_many(
        self, questions: Sequence[str], *, top_k: int, filter: SearchFilter | None = None
    ) -> list[list[Citation]]:
        """Worst-first rankings, queries embedded in one batch."""
        return [hits[::-1] for hits in self.inner.retrieve_many(questions, top_k=top_k, filter=filter)]


class DownGenerator:
    """A ``Generator`` whose backend is down."""

    version = "openai-down"

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """Always raises ``UpstreamUnavailableError``."""
        raise UpstreamUnavailableError("endpoint http://127.0.0.1:9/v1 refused the connection", retry_after_s=5)
