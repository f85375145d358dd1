"""Query-path arms for deployments: load a registered model version and build a query service pinned to a
collection (the canary / candidate arm) or following the corpus alias (the current arm).

The candidate's collection is not what the alias points to, so its arm must search that physical collection:
:class:`PinnedQueryService` is B's ``QueryService`` with the collection fixed; everything else (validation,
generation, scrubbing, recording with the arm) is the same code the API uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import NotFoundError
from core.types import ModelKind
from retrieval.service import QueryService

if TYPE_CHECKING:
    from core.ports import Embedder, Reranker
    from flywheel.container import Container

logger = logging.getLogger(__name__)

BASE = "base"
MAX_CACHED = 2  # models per kind kept loaded besides the container's own (e.g. a running cycle's candidate)


class PinnedQueryService(QueryService):
    """A ``QueryService`` that searches one physical collection instead of resolving the corpus alias."""

    def __init__(self, *, collection: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collection = collection

    def live_collection(self) -> str:
        """The pinned collection. Raises ``NotFoundError`` when it was dropped."""
        if not self.store.collection_exists(self.collection):
            raise NotFoundError(f"collection {self.collection} does not exist", collection=self.collection)
        return self.collection


def embedder_path(container: Container, version: str | None) -> Path:
    """Model directory of an embedder version (``None``/``base``: the configured base model)."""
    if version in (None, BASE):
        from indexing.embedder import default_model_path

        return Path(container.settings.embedder.model_path or default_model_path())
    return Path(container.registry.get(ModelKind.EMBEDDER, version).path)


def load_embedder(container: Container, version: str | None) -> Embedder:
    """Load an embedder version (once: the build, evaluation and deploy steps of a cycle share it); reuses the
    container's embedder when it is that version already."""
    from indexing.embedder import SentenceTransformerEmbedder

    wanted = version or BASE
    if container.is_built("embedder") and container.embedder.version == wanted:
        return container.embedder
    cfg = container.settings.embedder
    return _cached(
        container, "_loaded_embedders", wanted,
        lambda: SentenceTransformerEmbedder(embedder_path(container, version), version=wanted,
                                            batch_size=cfg.batch_size, device=cfg.device,
                                            max_seq_length=cfg.max_seq_length),
    )  # fmt: skip


def _cached(container: Container, attr: str, key: str, build: Callable[[], Any]) -> Any:
    """``build()`` once per ``key`` in a per-container cache of at most ``MAX_CACHED`` entries (oldest evicted first:
    candidates come and go, memory stays bounded)."""
    cache: dict[str, Any] = container.__dict__.setdefault(attr, {})
    if key not in cache:
        while len(cache) >= MAX_CACHED:
            cache.pop(next(iter(cache)))
        cache[key] = build()
    return cache[key]


def build_arm(container: Container, models: dict[str, str | None], collection: str | None) -> QueryService:
    """A query service for ``models`` over ``collection`` (``None``: the corpus alias, i.e. the current arm)."""
    embedder = load_embedder(container, models.get(ModelKind.EMBEDDER.value))
    generator = _generator_for(container, embedder, models)
    kwargs: dict[str, Any] = {
        "embedder": embedder,
        "store": container.vector_store,
        "generator": generator,
        "query_log": container.query_log,
        "scrubber": container.scrubber,
        "reranker": load_reranker(container, models) if ModelKind.RERANKER.value in models else container.reranker,
        "settings": container.settings.retrieval,
        "corpus": container.settings.indexing.corpus,
        "sparse_encoder": container.sparse_encoder,
        "fusion": container.index_manager,
        "recorder": container.query_recorder if container.background_recording else None,
    }
    if collection is None:
        return QueryService(**kwargs)
    return PinnedQueryService(collection=collection, **kwargs)


def load_reranker(container: Container, models: dict[str, str | None]) -> Reranker | None:
    """The arm's reranker version (``None``/``base``: no reranking); cached like embedders."""
    version = models.get(ModelKind.RERANKER.value)
    if version in (None, BASE):
        return None
    from retrieval.reranker import CrossEncoderReranker

    def build() -> Reranker:
        entry = container.registry.get(ModelKind.RERANKER, str(version))
        return CrossEncoderReranker(entry.path, version=entry.version, device=container.settings.embedder.device)

    return _cached(container, "_loaded_rerankers", str(version), build)


def _generator_for(container: Container, embedder: Embedder, models: dict[str, str | None]) -> Any:
    """The extractive generator (model-free) is built per arm; an HF generator carries the arm's LoRA
    adapter version (the container's own when it is that version); other generators are shared."""
    kind = container.settings.generator.kind
    if kind == "extractive":
        from retrieval.generators.extractive import ExtractiveGenerator

        return ExtractiveGenerator(max_sentences=container.settings.retrieval.answer_sentences)
    if kind != "hf" or ModelKind.GENERATOR_ADAPTER.value not in models:
        return container.generator
    wanted = models[ModelKind.GENERATOR_ADAPTER.value] or BASE
    shared = str(getattr(container.generator, "version", ""))
    if shared == wanted or (wanted == BASE and shared.startswith("hf:")):  # "hf:{model}": no adapter loaded
        return container.generator
    return _cached(
        container, "_loaded_generators", wanted, lambda: container.hf_generator(None if wanted == BASE else wanted)
    )
