"""Cross-encoder adapter of the ``Reranker`` port (a sentence-transformers ``CrossEncoder`` directory).

The model is one trained by ``customization.reranker_training`` (MiniLM + a one-logit head), loaded once by path.
``rerank`` scores each (question, passage) pair, sorts best first and returns the top ``top_k`` citations carrying
the reranker's score (a sigmoid probability in ``[0, 1]``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from core.errors import InvalidInputError
from core.types import Citation

logger = logging.getLogger(__name__)


class CrossEncoderReranker:
    """``Reranker`` over a trained cross-encoder directory.

    Args:
        path: directory saved by ``CrossEncoder.save_pretrained``.
        version: registered reranker version reported by :attr:`version`.
        device: ``cpu`` / ``cuda``; default the best available.
        batch_size: pairs scored per forward pass.
    Raises:
        InvalidInputError: the directory does not hold a loadable cross-encoder.
    """

    def __init__(self, path: Path | str, *, version: str, device: str | None = None, batch_size: int = 32) -> None:
        import torch
        from sentence_transformers import CrossEncoder

        model_dir = Path(path)
        if not (model_dir / "config.json").is_file():
            raise InvalidInputError(f"not a cross-encoder directory (no config.json): {model_dir}", field="path")
        try:
            self.model = CrossEncoder(
                str(model_dir), device=device or ("cuda" if torch.cuda.is_available() else "cpu"), local_files_only=True
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"cannot load a cross-encoder from {model_dir}: {exc}") from exc
        self._version = version
        self.batch_size = batch_size
        self._lock = threading.Lock()
        logger.info("reranker loaded version=%s", version)

    @property
    def version(self) -> str:
        """Registered reranker version."""
        return self._version

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        """Relevance probability of each passage for ``question`` (same order)."""
        if not passages:
            return []
        with self._lock:
            scores = self.model.predict(
                [(question, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
            )
        return [float(s) for s in scores]

    def rerank(self, question: str, passages: Sequence[Citation], *, top_k: int) -> list[Citation]:
        """Best ``top_k`` passages by cross-encoder score, best first, with that score (ties keep input order)."""
        if top_k < 1:
            raise InvalidInputError("top_k must be >= 1", field="top_k")
        scores = self.score(question, [p.text for p in passages])
        order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
        return [replace(passages[i], score=scores[i]) for i in order[:top_k]]


__all__ = ["CrossEncoderReranker"]
