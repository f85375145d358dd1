"""The composition root: the ONE place where adapters are chosen from settings and wired together.

Both the CLI (:mod:`flywheel.cli`) and the API (:func:`api.app.create_app`) build one :class:`Container` per process
and read objects from it. Every object is a ``functools.cached_property``: built lazily on first use, once, and
shared afterwards. Nothing here is a module-level singleton and nothing touches llama-index's global ``Settings``.

Extension point (for every engineer): add a ``cached_property`` for the objects you own, importing your package
inside the property body (keeps ``flywheel --help`` fast and avoids loading models nobody uses). If the object holds
files or connections, also close it in :meth:`Container.close` (one line in ``_CLOSEABLE``).

Objects owned by other engineers and expected here (names other code relies on):
    ``scrubber`` (PiiScrubber, C), ``feedback_store`` (FeedbackStore + QueryLog, C), ``api_keys`` (ApiKeyService, C),
    ``registry`` (ModelRegistry, D), ``reranker`` (Reranker or None, D), ``dataset_repository`` ...
``query_log`` defaults to ``feedback_store``.

Tests (and callers that need to inject an adapter) pass ``overrides={"name": obj}``: the value is placed where the
cached property would have stored it, so the property is never built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.errors import FlywheelError
from core.settings import Settings

if TYPE_CHECKING:
    from core.ports import Embedder, Generator, PiiScrubber, QueryLog, Reranker, VectorStore
    from customization.registry import ModelRegistry
    from feedback.auth import ApiKeyService
    from feedback.intake import FeedbackIntake
    from feedback.store import SqlStore
    from flywheel.arms import ModelCache
    from flywheel.cycle import CycleRunner
    from flywheel.deploy import Deployer
    from flywheel.jobs import JobRunner
    from flywheel.lineage import Lineage
    from flywheel.schedule import Scheduler
    from flywheel.state import StateStore
    from flywheel.training import TrainingServices
    from retrieval.routing import DeploymentRouter
    from retrieval.service import QueryService

logger = logging.getLogger(__name__)

# Attributes closed by ``close()`` when they were built (in this order). Add yours if it holds resources.
_CLOSEABLE: tuple[str, ...] = (
    "scheduler", "job_runner", "query_recorder", "vector_store", "feedback_store", "query_log", "state_store",
)  # fmt: skip


class Container:
    """Lazily built object graph for one process.

    Args:
        settings: loaded settings (default: from the environment / ``.env``).
        overrides: ready-made objects by attribute name (e.g. ``{"query_log": fake}``); they replace the properties.
    """

    def __init__(self, settings: Settings | None = None, *, overrides: Mapping[str, Any] | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        for name, value in (overrides or {}).items():
            declared = getattr(type(self), name, None)
            if declared is not None and not isinstance(declared, cached_property):
                raise FlywheelError(f"container attribute {name!r} is not an overridable object")
            self.__dict__[name] = value

    # ------------------------------------------------------------------------------------------------ helpers
    def is_built(self, name: str) -> bool:
        """Whether the cached object ``name`` has been built (or overridden) already; builds nothing."""
        return name in self.__dict__

    def warm_up(self) -> None:
        """Build the whole query path once, at API start-up: models, store, then scrubber + query log via the router.

        Raises whatever the first failing object raises; what was built before it stays built.
        """
        _ = self.embedder, self.vector_store, self.generator
        _ = self.router  # builds query_service -> scrubber (spaCy model) and query_log (database migrations)
        logger.info("container warmed up embedder=%s generator=%s", self.embedder.version, self.generator.version)

    def close(self) -> None:
        """Close every built object that holds files or connections. Idempotent; errors are logged, not raised."""
        for name in _CLOSEABLE:
            obj = self.__dict__.pop(name, None)
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # shutting down: one failing close must not stop the others
                    logger.exception("close failed object=%s", name)

    # ------------------------------------------------------------------------------------------ indexing (A)
    @cached_property
    def embedder(self) -> Embedder:
        """The active query/document embedder: the deployed registry version, else the packaged MiniLM (``base``)."""
        from flywheel.arms import embedder_path
        from flywheel.loop import deployed_embedder_version
        from indexing.embedder import SentenceTransformerEmbedder

        cfg = self.settings.embedder
        version = deployed_embedder_version(self.registry)  # F: follows the active deployment (registry pointer)
        return SentenceTransformerEmbedder(
            embedder_path(self.settings.embedder, self.registry, version),
            version=version or "base",
            batch_size=cfg.batch_size,
            device=cfg.device,
            max_seq_length=cfg.max_seq_length,
        )

    @cached_property
    def vector_store(self) -> VectorStore:
        """The vector store: embedded qdrant-edge (default) or qdrant-client (``store.kind='qdrant'``)."""
        cfg = self.settings.store
        if cfg.kind == "qdrant":
            from indexing.stores.qdrant import QdrantVectorStore

            return QdrantVectorStore(
                url=cfg.url,
                path=None if cfg.url else self.settings.vectors_dir,
                api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                timeout_s=cfg.timeout_s,
                min_free_bytes=cfg.min_free_bytes,
                min_free_share=cfg.min_free_share,
            )
        from indexing.stores.edge import EdgeVectorStore

        return EdgeVectorStore(
            self.settings.vectors_dir, min_free_bytes=cfg.min_free_bytes, min_free_share=cfg.min_free_share
        )

    @cached_property
    def chunker(self) -> Any:
        """The llama-index based chunker (chunk size / overlap from ``settings.indexing``)."""
        from indexing.chunking import Chunker

        return Chunker.from_settings(self.settings.indexing)

    @cached_property
    def index_manager(self) -> Any:
        """Versioned collections + alias swaps + incremental reindex; also the ``PassageIndex`` port."""
        from indexing.manager import IndexManager

        return IndexManager(
            self.vector_store,
            chunker=self.chunker,
            keep_versions=self.settings.indexing.keep_versions,
            max_drop_share=self.settings.indexing.max_drop_share,
            sparse_encoder=self.sparse_encoder,
            hybrid=self.hybrid_defaults,
        )

    @cached_property
    def sparse_encoder(self) -> Any:
        """The keyword encoder of hybrid retrieval (``retrieval.mode='hybrid'``), else ``None`` (dense only)."""
        if self.settings.retrieval.mode != "hybrid":
            return None
        from indexing.sparse import Bm25SparseEncoder

        return Bm25SparseEncoder()

    @property
    def hybrid_defaults(self) -> Any:
        """Fusion of versions without a tuned weight, from ``retrieval.fusion_weight`` / ``rrf_k`` / candidates."""
        from core.types import HybridParams

        cfg = self.settings.retrieval
        return HybridParams(
            sparse_weight=cfg.fusion_weight, rrf_k=cfg.rrf_k, candidates=cfg.hybrid_candidates, method=cfg.fusion
        )

    @cached_property
    def passage_index(self) -> Any:
        """The ``PassageIndex`` port: the index manager with the active embedder set (corrections get embedded)."""
        manager = self.index_manager
        manager.set_embedder(self.embedder)
        return manager

    # ----------------------------------------------------------------------------------------- retrieval (B)
    @cached_property
    def generator(self) -> Generator:
        """The answer generator by ``generator.kind``: extractive (default), HF LM + active LoRA, or OpenAI API."""
        cfg = self.settings.generator
        if cfg.kind == "hf":
            return self._hf_generator()
        if cfg.kind == "openai":
            from retrieval.generators.openai_compat import OpenAICompatGenerator

            return OpenAICompatGenerator(
                cfg.endpoint or "",
                cfg.model or "default",
                cfg.api_key.get_secret_value() if cfg.api_key else None,
                timeout_s=cfg.timeout_s,
                retries=cfg.retries,
                max_tokens=cfg.max_new_tokens,
            )
        from retrieval.generators.extractive import ExtractiveGenerator

        return ExtractiveGenerator(max_sentences=self.settings.retrieval.answer_sentences)

    def _hf_generator(self) -> Generator:
        """HF causal LM with the active registered LoRA adapter (none: the plain model)."""
        from core.types import ModelKind

        active = self.registry.active(ModelKind.GENERATOR_ADAPTER)
        return self.hf_generator(active.version if active else None)

    def hf_generator(self, adapter_version: str | None) -> Generator:
        """HF causal LM (``generator.model_dir``, default converted SmolLM2) with a registered LoRA adapter version
        (``None``: no adapter). Builds a new generator each call (arms cache theirs)."""
        from core.types import ModelKind
        from customization.base_models import ensure_smollm2
        from retrieval.generators.hf import HFGenerator

        cfg = self.settings.generator
        adapter = self.registry.get(ModelKind.GENERATOR_ADAPTER, adapter_version) if adapter_version else None
        return HFGenerator(
            cfg.model_dir or ensure_smollm2(self.settings.base_models_path),
            adapter_dir=adapter.path if adapter else None,
            max_new_tokens=cfg.max_new_tokens,
            max_passages=cfg.max_passages,
            max_passage_chars=cfg.max_passage_chars,
            version=adapter.version if adapter else None,
            device=self.settings.embedder.device,
        )

    @cached_property
    def reranker(self) -> Reranker | None:
        """The active registered cross-encoder reranker (``flywheel train reranker``); ``None``: no rerank."""
        from core.types import ModelKind

        active = self.registry.active(ModelKind.RERANKER)
        if active is None:
            return None
        from retrieval.reranker import CrossEncoderReranker

        return CrossEncoderReranker(active.path, version=active.version, device=self.settings.embedder.device)

    @cached_property
    def query_log(self) -> QueryLog:
        """Where answered queries are recorded: the feedback store (C) by default."""
        return self.feedback_store

    @cached_property
    def query_service(self) -> QueryService:
        """The current arm's query path over the alias ``settings.indexing.corpus``."""
        return self.build_query_service(embedder=self.embedder, generator=self.generator)

    def build_query_service(
        self, *, embedder: Embedder, generator: Generator, reranker: Reranker | None = None, corpus: str | None = None
    ) -> QueryService:
        """A new ``QueryService`` sharing this container's store, log and scrubber (used for candidate arms)."""
        from retrieval.service import QueryService

        return QueryService(
            embedder=embedder,
            store=self.vector_store,
            generator=generator,
            query_log=self.query_log,
            scrubber=self.scrubber,
            reranker=reranker if reranker is not None else self.reranker,
            settings=self.settings.retrieval,
            corpus=corpus or self.settings.indexing.corpus,
            sparse_encoder=self.sparse_encoder,
            fusion=self.index_manager,
            recorder=self.query_recorder if self.background_recording else None,
        )

    #: Record answered queries on a background writer (set by the API app, whose feedback and query routes wait for
    #: pending records); in-process callers (CLI, simulation) record synchronously, so they read their own writes.
    background_recording: bool = False

    @cached_property
    def query_recorder(self) -> Any:
        """Scrubs and persists answered queries on a background writer (drained at :meth:`close`)."""
        from retrieval.recording import QueryRecorder

        return QueryRecorder(self.query_log, self.scrubber)

    @cached_property
    def router(self) -> DeploymentRouter:
        """Routes each query to the current or candidate arm (canary / shadow); F swaps arms at run time."""
        from retrieval.routing import DeploymentRouter

        return DeploymentRouter(current=self.query_service, canary_share=self.settings.deploy.canary_share)

    # ------------------------------------------------------------------------------ feedback (C), others below
    # C: ``scrubber`` (feedback.pii.PresidioScrubber), ``feedback_store`` (feedback.store.SqlStore), ``api_keys``.
    @cached_property
    def scrubber(self) -> PiiScrubber:
        """Presidio PII scrubber on the packaged small spaCy model (loaded once; thread-safe)."""
        from feedback.pii import PresidioScrubber

        return PresidioScrubber(self.settings.pii)

    @cached_property
    def feedback_store(self) -> SqlStore:
        """Feedback + query-log store (SQLite WAL file by default, PostgreSQL by ``db.url``); migrated on build."""
        from feedback.store import SqlStore
        from feedback.store.pseudonyms import load_or_create_key

        configured = self.settings.feedback.pseudonym_key
        key = (
            configured.get_secret_value().encode("utf-8")
            if configured is not None
            else load_or_create_key(self.settings.data_dir / "secrets" / "pseudonym.key")
        )
        return SqlStore(self.settings.database_url, echo=self.settings.db.echo, pseudonym_key=key)

    @cached_property
    def api_keys(self) -> ApiKeyService:
        """API key service over the feedback store; stores ``auth.bootstrap_admin_key`` (hashed) on first build."""
        from feedback.auth import ApiKeyService

        service = ApiKeyService(self.feedback_store, cache_ttl_s=self.settings.auth.key_cache_ttl_s)
        bootstrap = self.settings.auth.bootstrap_admin_key
        if bootstrap is not None:
            service.bootstrap_admin(bootstrap.get_secret_value())
        return service

    @cached_property
    def feedback_intake(self) -> FeedbackIntake:
        """Feedback intake (validation, scrubbing, storage, consent, deletion, RAG fast path into the live index)."""
        from feedback.intake import FeedbackIntake

        return FeedbackIntake(
            self.feedback_store, self.scrubber, self.settings.feedback, passage_index=self.passage_index
        )

    # ---------------------------------------------------------------------------------------------- loop (F)
    # The loop's objects; wiring details live in ``flywheel.loop`` to keep this file small.
    @cached_property
    def registry(self) -> ModelRegistry:
        """D's model registry under ``settings.models_dir`` (versions + active pointers)."""
        from customization.registry import ModelRegistry

        return ModelRegistry(self.settings.models_dir)

    @cached_property
    def model_cache(self) -> ModelCache:
        """Model versions loaded for query arms besides the container's own (a cycle's candidate, the base
        generator beside an adapter), a few per kind."""
        from flywheel.arms import ModelCache

        return ModelCache()

    def training_services(self) -> TrainingServices:
        """What training reads besides its rows (settings, registry, deployed models, live passages)."""
        from flywheel.corpus import live_passages
        from flywheel.training import TrainingServices

        corpus = self.settings.indexing.corpus
        return TrainingServices(
            settings=self.settings, registry=self.registry, deployed=lambda: dict(self.deployer.current().models),
            corpus_passages=lambda: live_passages(self.vector_store, self.index_manager.live_collection(corpus)),
        )  # fmt: skip

    @cached_property
    def state_store(self) -> StateStore:
        """Jobs, cycles, deployments and lineage tables (same database URL, own migrations)."""
        from flywheel.state import StateStore

        return StateStore(self.settings.database_url)

    @cached_property
    def lineage(self) -> Lineage:
        """Lineage recorder / walker over the state store."""
        from flywheel.lineage import Lineage

        return Lineage(self.state_store)

    @cached_property
    def deployer(self) -> Deployer:
        """Blue/green + canary deployment of the corpus (moves the alias, active models, router arms)."""
        from flywheel.loop import make_deployer

        return make_deployer(self)

    @cached_property
    def cycle_runner(self) -> CycleRunner:
        """Runs cycles (curate -> train -> build -> evaluate -> gate -> deploy)."""
        from flywheel.cycle import CycleRunner

        return CycleRunner(self)

    @cached_property
    def job_runner(self) -> JobRunner:
        """Background jobs (cycle, reindex, curate, eval)."""
        from flywheel.loop import make_job_runner

        return make_job_runner(self)

    @cached_property
    def scheduler(self) -> Scheduler:
        """The service's own scheduler (nightly reindex on ``deploy.reindex_cron``)."""
        from flywheel.loop import make_scheduler

        return make_scheduler(self)

    def adopt_arm(self, arm: QueryService) -> None:
        """After a deployment switch, this container's embedder / reranker / generator / query service are the new
        current arm's (corrections, new arms and the CLI then use them too)."""
        self.__dict__["embedder"] = arm.embedder
        self.__dict__["reranker"] = arm.reranker
        if self.settings.generator.kind != "extractive":  # the extractive one is per-arm (scores with its embedder)
            self.__dict__["generator"] = arm.generator
        self.__dict__["query_service"] = arm
        if self.is_built("index_manager") and hasattr(self.index_manager, "set_embedder"):
            self.index_manager.set_embedder(arm.embedder)

    def start_loop(self, *, scheduler: bool = True) -> dict[str, Any]:
        """Service start-up of the loop: recover jobs, abandon dead cycles, reconcile the deployment, canary, cron."""
        from flywheel.loop import start_loop

        return start_loop(self, scheduler=scheduler)
