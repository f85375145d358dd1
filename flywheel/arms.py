"""Query-path arms for deployments: load a registered model version and build a query service pinned to a
collection (the canary / candidate arm) or following the corpus alias (the current arm).

The candidate's collection is not what the alias points to, so its arm must search that physical collection:
:class:`PinnedQueryService` is B's ``QueryService`` with the collection fixed; everything else (validation,
generation, scrubbing, recording with the arm) is the same code the API uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import NotFoundError
from core.ports import Embedder, Generator, PiiScrubber, QueryLog, Reranker, VectorStore
from core.settings import EmbedderSettings, Settings
from core.types import ModelKind
from retrieval.service import QueryService

if TYPE_CHECKING:
    from customization.registry import ModelRegistry

logger = logging.getLogger(__name__)

BASE = "base"
MAX_CACHED = 2  # models per kind kept loaded besides the container's own (e.g. a running cycle's candidate)


class ModelCache:
    """Loaded model versions by kind, at most ``MAX_CACHED`` per kind (oldest evicted first: candidates come and go,
    memory stays bounded)."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Any]] = {}

    def get(self, kind: str, key: str, build: Callable[[], Any]) -> Any:
        """The ``kind`` model ``key``, built with ``build()`` on first use."""
        cache = self._by_kind.setdefault(kind, {})
        if key not in cache:
            while len(cache) >= MAX_CACHED:
                cache.pop(next(iter(cache)))
            cache[key] = build()
        return cache[key]


class ArmServices(Protocol):
    """What building a query arm reads (the composition root, :class:`flywheel.container.Container`, is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def registry(self) -> ModelRegistry: ...
    @property
    def embedder(self) -> Embedder: ...
    @property
    def generator(self) -> Generator: ...
    @property
    def reranker(self) -> Reranker | None: ...
    @property
    def vector_store(self) -> VectorStore: ...
    @property
    def query_log(self) -> QueryLog: ...
    @property
    def scrubber(self) -> PiiScrubber: ...
    @property
    def sparse_encoder(self) -> Any: ...
    @property
    def index_manager(self) -> Any: ...
    @property
    def query_recorder(self) -> Any: ...
    @property
    def model_cache(self) -> ModelCache: ...

    background_recording: bool

    def is_built(self, name: str) -> bool:
        """Whether the shared object ``name`` exists already (builds nothing)."""

    def hf_generator(self, adapter_version: str | None) -> Generator:
        """A new HF generator with a registered adapter version (``None``: none)."""


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


def embedder_path(settings: EmbedderSettings, registry: ModelRegistry, version: str | None) -> Path:
    """Model directory of an embedder version (``None``/``base``: the configured base model)."""
    if version in (None, BASE):
        from indexing.embedder import default_model_path

        return Path(settings.model_path or default_model_path())
    return Path(registry.get(ModelKind.EMBEDDER, version).path)


def load_embedder(container: ArmServices, version: str | None) -> Embedder:
    """Load an embedder version (once: the build, evaluation and deploy steps of a cycle share it); reuses the
    container's embedder when it is that version already."""
    from indexing.embedder import SentenceTransformerEmbedder

    wanted = version or BASE
    if container.is_built("embedder") and container.embedder.version == wanted:
        return container.embedder
    cfg = container.settings.embedder
    return container.model_cache.get(
        ModelKind.EMBEDDER.value, wanted,
        lambda: SentenceTransformerEmbedder(embedder_path(cfg, container.registry, version), version=wanted,
                                            batch_size=cfg.batch_size, device=cfg.device,
                                            max_seq_length=cfg.max_seq_length),
    )  # fmt: skip


def build_arm(
    container: ArmServices, models: Mapping[str, str | None], collection: str | None, *,
    generator: Generator | None = None,
) -> QueryService:  # fmt: skip
    """A query service for ``models`` over ``collection`` (``None``: the corpus alias, i.e. the current arm);
    ``generator`` replaces the arm's own (the simulation's traffic answers extractively)."""
    embedder = load_embedder(container, models.get(ModelKind.EMBEDDER.value))
    generator = generator or _generator_for(container, embedder, models)
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


def load_reranker(container: ArmServices, models: Mapping[str, str | None]) -> Reranker | None:
    """The arm's reranker version (``None``/``base``: no reranking); cached like embedders."""
    version = models.get(ModelKind.RERANKER.value)
    if version in (None, BASE):
        return None
    from retrieval.reranker import CrossEncoderReranker

    def build() -> Reranker:
        entry = container.registry.get(ModelKind.RERANKER, str(version))
        return CrossEncoderReranker(entry.path, version=entry.version, device=container.settings.embedder.device)

    return container.model_cache.get(ModelKind.RERANKER.value, str(version), build)


def _generator_for(container: ArmServices, embedder: Embedder, models: Mapping[str, str | None]) -> Generator:
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
    return container.model_cache.get(  # type: ignore[no-any-return]
        ModelKind.GENERATOR_ADAPTER.value, wanted, lambda: container.hf_generator(None if wanted == BASE else wanted)
    )
