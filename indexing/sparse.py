"""Keyword (sparse) vectors for hybrid retrieval: a code-aware tokenizer and BM25 term weights.

Contract: :func:`tokenize` is the one tokenizer of both index and query time. It lowercases, keeps identifiers whole
(``core.autocrlf``, ``--force-with-lease`` -> ``force-with-lease``, ``pg_hba.conf``, ``23505``, ``v2.1.0``) AND
emits their parts (``core``, ``autocrlf``; ``pg``, ``hba``, ``conf``), drops English stop words among plain words and
Porter-stems plain alphabetic words (``permits`` -> ``permit``); identifiers are never stemmed. Tokens are hashed to
sparse indices with blake2b (4 bytes: deterministic across processes and machines, collisions negligible).

:class:`Bm25SparseEncoder` weights a passage's tokens with BM25's term-frequency saturation
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; the store multiplies by IDF (Qdrant's ``Modifier.IDF``,
computed over the collection), and a query token weighs 1, so ``score = sum(idf * tf_saturated)`` is BM25.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from nltk.stem.porter import PorterStemmer

from core.types import SparseVector

# An identifier-ish run: word characters joined by . _ - / : (a leading -- of an option is dropped).
_TOKEN = re.compile(r"[0-9a-z_]+(?:[.\-/:+#][0-9a-z_]+)*")
_PART_SPLIT = re.compile(r"[.\-/:+#_]+")
_STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves""".split()  # noqa: SIM905
)


@lru_cache(maxsize=1)
def _porter() -> PorterStemmer:
    return PorterStemmer()


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_porter().stem(word))


def _plain(word: str) -> list[str]:
    """A plain word: dropped when a stop word, stemmed when alphabetic, kept as is otherwise (numbers)."""
    if word in _STOP or not word:
        return []
    return [_stem(word) if word.isalpha() else word]


@lru_cache(maxsize=200_000)
def _expand(raw: str) -> tuple[str, ...]:
    """Tokens of one raw run: the whole identifier plus its parts, or the plain word."""
    parts = [p for p in _PART_SPLIT.split(raw) if p]
    if len(parts) <= 1:
        return tuple(_plain(parts[0] if parts else raw))
    tokens = [raw]
    if "_" in raw and any(c in raw for c in ".-/:+#"):  # pg_hba.conf -> also pg_hba
        tokens += [p for p in re.split(r"[.\-/:+#]+", raw) if "_" in p]
    for part in parts:
        tokens += [part] if part not in _STOP else []
    return tuple(tokens)


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` in order (with repeats): identifiers whole and in parts, plain words stemmed."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        tokens.extend(_expand(match.group(0)))
    return tokens


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
