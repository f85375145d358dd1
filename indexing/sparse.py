"""Keyword (sparse) vectors for hybrid retrieval: code-aware tokens hashed to indices, BM25 term weights.

Contract: :func:`core.text.tokenize` is the one tokenizer of both index and query time (identifiers whole and in
parts, stop words dropped, plain words stemmed). Tokens are hashed to sparse indices with blake2b (4 bytes:
deterministic across processes and machines, collisions negligible).

:class:`Bm25SparseEncoder` weights a passage's tokens with BM25's term-frequency saturation
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; the store multiplies by IDF (Qdrant's ``Modifier.IDF``,
computed over the collection), and a query token weighs 1, so ``score = sum(idf * tf_saturated)`` is BM25.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from core.text import tokenize
from core.types import SparseVector


@lru_cache(maxsize=500_000)
def token_index(token: str) -> int:
    """Deterministic uint32 sparse index of a token (blake2b, 4 bytes)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def _vector(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(indices=tuple(i for i, _ in ordered), values=tuple(float(v) for _, v in ordered))


class Bm25SparseEncoder:
    """``SparseEncoder``: code-aware tokens, hashed, weighted by BM25 term-frequency saturation.

    Args:
        k1: term-frequency saturation (higher: repeated terms keep adding).
        b: length normalisation (0: none, 1: full).
        avg_len: assumed average passage length in tokens (the collection's mean is unknown while it is built).
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0) -> None:
        self.k1 = k1
        self.b = b
        self.avg_len = avg_len

    @property
    def signature(self) -> str:
        """Tokenizer + weighting identity (recorded with each collection version)."""
        return f"bm25-code-v1:k1={self.k1}:b={self.b}:avg={self.avg_len}"

    def encode_document(self, text: str) -> SparseVector:
        """BM25-weighted vector of one passage (empty for a passage without tokens)."""
        counts = Counter(token_index(t) for t in tokenize(text))
        length = sum(counts.values())
        norm = self.k1 * (1.0 - self.b + self.b * length / self.avg_len)
        return _vector({i: tf * (self.k1 + 1.0) / (tf + norm) for i, tf in counts.items()})

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """One vector per passage."""
        return [self.encode_document(text) for text in texts]

    def encode_query(self, text: str) -> SparseVector:
        """Unit weight per distinct query token (IDF comes from the store)."""
        return _vector(dict.fromkeys((token_index(t) for t in tokenize(text)), 1.0))


__all__ = ["Bm25SparseEncoder", "token_index", "tokenize"]
