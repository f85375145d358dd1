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

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from core.ports import VectorStore
from core.types import CollectionInfo, Point, parse_collection_name, utcnow

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

    @classmethod
    def new(
        cls, name: str, *, embedder_version: str, dim: int, chunker: str, documents: int, chunks: int
    ) -> CatalogEntry:
        """Entry for collection ``name`` (``{corpus}__v{n}``) created now."""
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
        return CatalogEntry(**points[0].payload) if points else None

    def remove(self, name: str) -> None:
        """Forget collection ``name`` (no-op if absent)."""
        if self.store.collection_exists(CATALOG_COLLECTION):
            self.store.delete(CATALOG_COLLECTION, [_point_id(name)])

    def entries(self, corpus: str) -> list[CatalogEntry]:
        """Entries of ``corpus``, by version."""
        if not self.store.collection_exists(CATALOG_COLLECTION):
            return []
        rows = [CatalogEntry(**p.payload) for p in self.store.scroll(CATALOG_COLLECTION)]
        return sorted((e for e in rows if e.corpus == corpus), key=lambda e: e.version)


__all__ = ["CATALOG_COLLECTION", "Catalog", "CatalogEntry"]
