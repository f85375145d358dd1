"""Fakes at the ports (and only there): small, deterministic, real implementations of ``core.ports`` protocols.

Use them where the real adapter would be slow or irrelevant to what a test checks; never fake project code.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence

import numpy as np

from core.errors import NotFoundError, UpstreamUnavailableError
from core.ports import PiiFinding, ScrubResult
from core.types import Answer, Citation, QueryRecord

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"\+?\d[\d -]{7,}\d")
_WORD = re.compile(r"[a-z0-9]+")


class FakeQueryLog:
    """In-memory ``QueryLog``: records by id, ``NotFoundError`` for unknown ids, thread-safe."""

    def __init__(self) -> None:
        self.records: dict[str, QueryRecord] = {}
        self._lock = threading.Lock()

    def record_query(self, record: QueryRecord) -> None:
        """Store ``record`` (replacing one with the same id)."""
        with self._lock:
            self.records[record.id] = record

    def record_queries(self, records: Sequence[QueryRecord]) -> None:
        """:meth:`record_query` of each record, all or none (on an error the earlier ones are taken back)."""
        before = dict(self.records)
        try:
            for record in records:
                self.record_query(record)
        except Exception:
            with self._lock:
                self.records = before
            raise

    def get_query(self, query_id: str) -> QueryRecord:
        """The record with ``query_id``; raises ``NotFoundError``."""
        with self._lock:
            if query_id not in self.records:
                raise NotFoundError(f"unknown query id {query_id!r}", query_id=query_id)
            return self.records[query_id]


class FakeScrubber:
    """Regex ``PiiScrubber`` for e-mail addresses and phone numbers (Presidio's entity names as placeholders)."""

    def scan(self, text: str) -> list[PiiFinding]:
        """Spans of e-mail addresses and phone numbers, in text order."""
        findings = [PiiFinding("EMAIL_ADDRESS", m.start(), m.end(), 1.0) for m in _EMAIL.finditer(text)]
        findings += [PiiFinding("PHONE_NUMBER", m.start(), m.end(), 0.9) for m in _PHONE.finditer(text)]
        return sorted(findings, key=lambda f: f.start)

    def scrub(self, text: str) -> ScrubResult:
        """Replace every finding with ``<ENTITY_TYPE>``."""
        findings = self.scan(text)
        out, last = [], 0
        for finding in findings:
            if finding.start < last:
                continue
            out.append(text[last : finding.start])
            out.append(f"<{finding.entity_type}>")
            last = finding.end
        out.append(text[last:])
        return ScrubResult(text="".join(out), findings=tuple(findings))

    def scrub_many(self, texts: Sequence[str]) -> list[ScrubResult]:
        """:meth:`scrub` of each text, order preserved."""
        return [self.scrub(text) for text in texts]


class HashingEmbedder:
    """Deterministic bag-of-words ``Embedder`` (hashed word counts, L2-normalised): fast, no model files."""

    def __init__(self, *, dim: int = 64, version: str = "hash-v1") -> None:
        self._dim = dim
        self._version = version

    @property
    def version(self) -> str:
        """The version string given at construction."""
        return self._version

    @property
    def dim(self) -> int:
        """Vector size."""
        return self._dim

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % self._dim
                vectors[row, bucket] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """``(n, dim)`` float32 unit vectors."""
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Same as documents (symmetric model)."""
        return self._embed(texts)


class EchoGenerator:
    """``Generator`` answering with the first cited passage (or a fixed text); ``fail=True`` simulates an outage."""

    def __init__(self, *, version: str = "echo-v1", fail: bool = False) -> None:
        self._version = version
        self.fail = fail
        self.calls = 0

    @property
    def version(self) -> str:
        """The version string given at construction."""
        return self._version

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """``"<first passage> [1]"``; raises ``UpstreamUnavailableError`` when ``fail``."""
        self.calls += 1
        if self.fail:
            raise UpstreamUnavailableError("echo generator is down", retry_after_s=2.5)
        text = f"{passages[0].text} [1]" if passages else "nothing found"
        return Answer(text=text, citations=tuple(passages), generator_version=self._version)


class ReversingReranker:
    """``Reranker`` that reverses the candidate order (so a test can see that reranking happened)."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @property
    def version(self) -> str:
        """Fixed version string."""
        return "reverse-v1"

    def rerank(self, question: str, passages: Sequence[Citation], *, top_k: int) -> list[Citation]:
        """The last ``top_k`` candidates, last first, scored by new rank."""
        self.seen.append(len(passages))
        reordered = list(reversed(passages))[:top_k]
        return [
            Citation(chunk_id=c.chunk_id, doc_id=c.doc_id, text=c.text, score=1.0 / (i + 1), metadata=c.metadata)
            for i, c in enumerate(reordered)
        ]
