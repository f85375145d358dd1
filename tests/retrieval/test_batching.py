"""QueryEncoder: concurrent questions share embedder passes; each caller gets its own question's vector."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
from fakes import HashingEmbedder

from retrieval.batching import QueryEncoder

pytestmark = pytest.mark.unit


class SlowEmbedder(HashingEmbedder):
    """A hashing embedder whose passes take a while (a real model's forward) and are counted by size."""

    def __init__(self) -> None:
        super().__init__()
        self.passes: list[int] = []

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.passes.append(len(texts))
        time.sleep(0.05)
        return super().embed_queries(texts)


def test_when_questions_arrive_together_then_they_share_passes_and_keep_their_own_vectors() -> None:
    embedder = SlowEmbedder()
    encoder = QueryEncoder(embedder)
    questions = [f"how do I reset password number {i}" for i in range(8)]
    out: dict[int, list[float]] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, encoder.encode(questions[i]))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(embedder.passes) == 8 and len(embedder.passes) < 8  # batched, each question once
    expected = HashingEmbedder().embed_queries(questions)
    for i in range(8):
        assert np.allclose(out[i], expected[i])


def test_a_lone_question_is_encoded_at_once() -> None:
    embedder = SlowEmbedder()
    started = time.perf_counter()
    vector = QueryEncoder(embedder).encode("where is my order")
    assert time.perf_counter() - started < 1.0 and embedder.passes == [1] and len(vector) == embedder.dim
