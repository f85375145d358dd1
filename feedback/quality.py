"""Quality control helpers of curation: noise filters, stable hold-out split, near-duplicate grouping."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from core.ports import Embedder
from feedback.text import normalize_text

T = TypeVar("T")

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_REPEAT = re.compile(r"(.)\1{5,}")
_VOWELS = set("aeiouyáéíóúàèìòùäëïöüåæø")


def noise_reason(text: str, *, min_chars: int) -> str | None:
    """Why ``text`` is noise (``"empty"``, ``"too_short"``, ``"gibberish"``) or ``None`` when it is usable."""
    stripped = text.strip() if text else ""
    if not stripped:
        return "empty"
    if len(stripped) < min_chars:
        return "too_short"
    words = _WORD.findall(stripped.casefold())
    letters = sum(len(w) for w in words)
    if not words or letters < 0.5 * len(stripped.replace(" ", "")) or _REPEAT.search(stripped):
        return "gibberish"
    vowel_less = sum(1 for w in words if len(w) > 3 and not (set(w) & _VOWELS))
    if vowel_less / len(words) > 0.5:
        return "gibberish"
    return None


def holdout_bucket(question: str, *, seed: int) -> float:
    """Stable position in [0, 1) of a normalised question: same question, same seed -> same bucket, any machine."""
    digest = hashlib.sha256(f"{seed}\x1f{normalize_text(question)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_held_out(question: str, *, share: float, seed: int) -> bool:
    """Whether the question belongs to the evaluation hold-out (never to a training set)."""
    return holdout_bucket(question, seed=seed) < share


def dedup(
    rows: Sequence[T],
    *,
    text: Callable[[T], str],
    group: Callable[[T], str],
    embedder: Embedder,
    threshold: float,
    merge: Callable[[T, T], None],
) -> tuple[list[T], int, int]:
    """Drop exact then near duplicates (cosine >= ``threshold`` of ``text`` embeddings within the same ``group``).

    The first row of a duplicate set is kept and ``merge(kept, dropped)`` folds the dropped row's provenance into it.
    Returns ``(kept rows, exact duplicates, near duplicates)``.
    """
    exact: dict[tuple[str, str], T] = {}
    unique: list[T] = []
    for row in rows:
        key = (group(row), normalize_text(text(row)))
        if key in exact:
            merge(exact[key], row)
        else:
            exact[key] = row
            unique.append(row)
    n_exact = len(rows) - len(unique)
    if len(unique) < 2:
        return unique, n_exact, 0
    vectors = embedder.embed_queries([text(r) for r in unique])
    kept: list[int] = []
    kept_by_group: dict[str, list[int]] = {}
    for i, row in enumerate(unique):
        peers = kept_by_group.setdefault(group(row), [])
        sims = vectors[peers] @ vectors[i] if peers else np.empty(0)
        best = int(np.argmax(sims)) if len(sims) else -1
        if best >= 0 and float(sims[best]) >= threshold:
            merge(unique[peers[best]], row)
        else:
            peers.append(i)
            kept.append(i)
    return [unique[k] for k in kept], n_exact, len(unique) - len(kept)


def cluster(texts: Sequence[str], *, embedder: Embedder, threshold: float) -> list[list[int]]:
    """Greedy single-pass clustering by cosine similarity to each cluster's first member; indexes per cluster."""
    if not texts:
        return []
    vectors = embedder.embed_queries(list(texts))
    heads: list[int] = []
    clusters: list[list[int]] = []
    for i in range(len(texts)):
        sims = [float(np.dot(vectors[i], vectors[h])) for h in heads]
        best = int(np.argmax(sims)) if sims else -1
        if best >= 0 and sims[best] >= threshold:
            clusters[best].append(i)
        else:
            heads.append(i)
            clusters.append([i])
    return clusters
