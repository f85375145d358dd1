"""Catalog of collection versions: which embedder built each ``{corpus}__v{n}``, when, with which chunking.

Design choice: the catalog is a tiny reserved collection (``_flywheel_catalog``, 1-d vectors, one point per collection
version, point id ``uuid5(name)``) inside the same ``VectorStore`` — rather than a file next to the store or a
metadata point inside each collection:

- it works unchanged for every adapter, through the port only (edge shard, Qdrant server, qdrant-client local);
- with a Qdrant server it lives with the data, so every service replica and the CLI see the same catalog (a local
  file would not follow the collections);
- it never pollutes searches (a metadata point inside a corpus collection would show up in every query);
- the entry is written *last* when a version is built, so "has a catalog entry" means "complete": a collection
  without one is a half-built version (crash or failure before the swap) and is pruned.

The name starts with ``_``, which no corpus name can (``^[a-z0-9]...``), so it never parses as a corpus version.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from core.errors import InvalidInputError, NotFoundError
from core.ports import VectorStore
from core.types import CollectionInfo, HybridParams, Point, parse_collection_name, utcnow

logger = logging.getLogger(__name__)

CATALOG_COLLECTION = "_flywheel_catalog"
_NAMESPACE = uuid.UUID("0b6f7f5e-8c1f-5a43-9a7e-6f2d0c9b1a77")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One complete collection version as recorded when it was built."""

    name: str
    corpus: str
    version: int
    embedder_version: str
    dim: int
    chunker: str
    documents: int
    chunks: int
    created_at: str
    sparse: str = ""  # the SparseEncoder signature of its keyword index; "" = dense only
    fusion_weight: float | None = None  # tuned keyword RRF weight of this version; None = the settings' default

    @classmethod
    def new(
        cls, name: str, *, embedder_version: str, dim: int, chunker: str, documents: int, chunks: int, sparse: str = ""
    ) -> CatalogEntry:
        """Entry for collection ``name`` (``{corpus}__v{n}``) created now (``sparse``: keyword encoder signature)."""
        corpus, version = parse_collection_name(name) or (name, 0)
        return cls(
            name=name,
            corpus=corpus,
            version=version,
            embedder_version=embedder_version,
            dim=dim,
            chunker=chunker,
            documents=documents,
            chunks=chunks,
            created_at=utcnow().isoformat(),
            sparse=sparse,
        )

    def info(self, *, points: int | None = None) -> CollectionInfo:
        """As a :class:`CollectionInfo` (``points`` defaults to the chunk count at build time)."""
        return CollectionInfo(
            name=self.name,
            corpus=self.corpus,
            version=self.version,
            points=self.chunks if points is None else points,
            dim=self.dim,
            created_at=datetime.fromisoformat(self.created_at),
            embedder_version=self.embedder_version,
        )


def _point_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


class Catalog:
    """Reads and writes :class:`CatalogEntry` rows in the reserved catalog collection of ``store``."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def _ensure(self) -> None:
        if not self.store.collection_exists(CATALOG_COLLECTION):
            self.store.create_collection(CATALOG_COLLECTION, dim=1)

    def put(self, entry: CatalogEntry) -> None:
        """Record ``entry`` (replaces an older entry of the same collection)."""
        self._ensure()
        self.store.upsert(CATALOG_COLLECTION, [Point(id=_point_id(entry.name), vector=[1.0], payload=asdict(entry))])

    def get(self, name: str) -> CatalogEntry | None:
        """The entry of collection ``name``, or ``None`` (unknown or half-built collection)."""
        if not self.store.collection_exists(CATALOG_COLLECTION):
            return None
        points = self.store.retrieve(CATALOG_COLLECTION, [_point_id(name)])
        return _entry(points[0].payload) if points else None

    def remove(self, name: str) -> None:
        """Forget collection ``name`` (no-op if absent)."""
        if self.store.collection_exists(CATALOG_COLLECTION):
            self.store.delete(CATALOG_COLLECTION, [_point_id(name)])

    def entries(self, corpus: str) -> list[CatalogEntry]:
        """Entries of ``corpus``, by version."""
        if not self.store.collection_exists(CATALOG_COLLECTION):
            return []
        rows = [_entry(p.payload) for p in self.store.scroll(CATALOG_COLLECTION)]
        return sorted((e for e in rows if e.corpus == corpus), key=lambda e: e.version)


class FusionProfiles:
    """Per-version hybrid fusion: the ``FusionProfile`` port over the catalog (cached; weights change only here).

    Args:
        catalog: where versions record their keyword index and tuned ``fusion_weight``.
        defaults: fusion of versions without a tuned weight (``retrieval.fusion_weight`` / ``rrf_k`` / candidates).
    """

    def __init__(self, catalog: Catalog, *, defaults: HybridParams) -> None:
        self.catalog = catalog
        self.defaults = defaults
        self._cache: dict[str, HybridParams | None] = {}
        self._lock = threading.Lock()

    def hybrid_params(self, collection: str) -> HybridParams | None:
        """Fusion of ``collection`` (its tuned weight, else the defaults); ``None`` without a keyword index."""
        with self._lock:
            if collection in self._cache:
                return self._cache[collection]
        params: HybridParams | None = None
        if self.catalog.store.has_sparse(collection):
            entry = self.catalog.get(collection)
            weight = entry.fusion_weight if entry is not None else None
            params = self.defaults if weight is None else replace(self.defaults, sparse_weight=weight)
        with self._lock:
            self._cache[collection] = params
        return params

    def set_fusion_weight(self, collection: str, weight: float | None) -> None:
        """Record a tuned keyword RRF weight on a complete version (``None``: back to the default).

        A cycle sets it on its candidate version, so the gate judges the weight with the candidate. Raises
        ``NotFoundError`` for an unknown or incomplete version, ``InvalidInputError`` for a weight outside [0, 10].
        """
        if weight is not None and not 0.0 <= weight <= 10.0:
            raise InvalidInputError(f"fusion weight must be in [0, 10], got {weight}", field="fusion_weight")
        entry = self.catalog.get(collection)
        if entry is None:
            raise NotFoundError(f"unknown collection version {collection!r}", collection=collection)
        self.catalog.put(replace(entry, fusion_weight=weight))
        with self._lock:
            self._cache.pop(collection, None)
        logger.info("fusion weight set collection=%s weight=%s", collection, weight)


def _entry(payload: dict) -> CatalogEntry:
    """An entry from its stored payload (fields added later take their defaults in older entries)."""
    known = CatalogEntry.__dataclass_fields__
    return CatalogEntry(**{k: v for k, v in payload.items() if k in known})


__all__ = ["CATALOG_COLLECTION", "Catalog", "CatalogEntry", "FusionProfiles"]
