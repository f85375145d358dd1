"""Deleting a user's data from every copy: feedback store, every collection version of the index, curated datasets.

The use case behind ``DELETE /v1/users/{id}/data`` (and the CLI). Each room deletes its own copy:

1. the feedback store deletes the user's events, queries and correction rows (``SqlStore.delete_user_data``);
2. here, through the ``VectorStore`` port: the passages of the deleted applied corrections leave *every* collection
   version of the corpus, the live one included (a group still supported by other principals keeps its passage in
   the live collection only), and each touched collection is rewritten (:func:`compact_collection`) so the text is
   gone from the shard files and their write-ahead log, not merely marked deleted; recorded answers of other
   queries that cited a removed passage (and so may quote it) lose their answer text;
3. the curated dataset versions drop every row whose provenance is one of the deleted events or queries.

Trained models cannot forget: the result lists the model versions trained on datasets that held the user's data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.datasets import DatasetRepository
from core.ports import VectorStore
from core.types import DatasetKind, Point, parse_collection_name
from feedback.fastpath import live_correction_id
from feedback.store import CorrectionRecord, CorrectionState, DeletionReport, SqlStore
from indexing.chunking import chunk_id
from indexing.corrections import ALIAS_DOC_KEY, question_point_id

logger = logging.getLogger(__name__)

COPY_BATCH = 256
#: Chunks a correction passage may span (its text is at most feedback.max_text_chars): ids checked in query records.
_MAX_CORRECTION_CHUNKS = 8


@dataclass(slots=True)
class DeletionOutcome:
    """The store's report plus what left the index (per collection version) and the datasets (per version)."""

    report: DeletionReport
    passages_deleted: dict[str, int] = field(default_factory=dict)
    dataset_rows_deleted: dict[str, int] = field(default_factory=dict)
    answers_redacted: int = 0


def delete_user_data(
    *,
    store: SqlStore,
    vector_store: VectorStore,
    datasets: DatasetRepository,
    user_id: str,
) -> DeletionOutcome:
    """Delete ``user_id``'s data from every store (see module docstring). Raises the stores' errors unchanged."""
    report = store.delete_user_data(user_id)
    outcome = DeletionOutcome(report)
    applied = [c for c in report.corrections if c.state == CorrectionState.APPLIED]
    for corpus, passages, supported in _passages_by_corpus(store, applied):
        outcome.passages_deleted.update(
            purge_passages(vector_store, corpus=corpus, passage_ids=passages, keep_live=supported)
        )
        # other users' recorded answers may quote a removed passage: they lose their answer text (ids stay)
        gone = [p for p in passages if p not in supported]
        outcome.answers_redacted += store.redact_answers_citing(
            [chunk_id(f"correction:{p}", i) for p in gone for i in range(_MAX_CORRECTION_CHUNKS)]
        )
    provenance = set(report.deleted_event_ids) | {f"q:{q}" for q in report.deleted_query_ids}
    for kind in DatasetKind:
        for version in datasets.versions(kind):
            removed = datasets.redact(kind, version, provenance=provenance, user_ids={report.user_id, user_id})
            if removed:
                outcome.dataset_rows_deleted[f"{kind.value}/v{version}"] = removed
    store.purge_freed_space()
    logger.info(
        "user data deleted everywhere events=%d queries=%d passages=%d dataset_rows=%d models=%d",
        report.events_deleted,
        report.queries_deleted,
        sum(outcome.passages_deleted.values()),
        sum(outcome.dataset_rows_deleted.values()),
        len(report.models),
    )
    return outcome


def _passages_by_corpus(
    store: SqlStore, applied: Sequence[CorrectionRecord]
) -> Iterable[tuple[str, list[str], set[str]]]:
    """Per corpus: the live-passage ids of the deleted applied corrections and those other principals still hold."""
    corpora: dict[str, tuple[set[str], set[str]]] = {}
    for record in applied:
        passages, supported = corpora.setdefault(record.corpus, (set(), set()))
        passage = live_correction_id(record)
        passages.add(passage)
        siblings = store.corrections_by_key(record.agreement_key)
        if any(c.state == CorrectionState.APPLIED for c in siblings):
            supported.add(passage)
    for corpus, (passages, supported) in sorted(corpora.items()):
        yield corpus, sorted(passages), supported


def purge_passages(
    vector_store: VectorStore, *, corpus: str, passage_ids: Sequence[str], keep_live: set[str]
) -> dict[str, int]:
    """Remove correction passages from every version of ``corpus`` and compact each touched collection.

    ``keep_live`` names passages other principals still support: they stay in the collection the alias serves.
    Returns passages removed per collection (each with its chunks and its question point).
    """
    live = vector_store.get_alias(corpus)
    removed: dict[str, int] = {}
    for name in vector_store.list_collections():
        parsed = parse_collection_name(name)
        if parsed is None or parsed[0] != corpus:
            continue
        wanted = [p for p in passage_ids if not (name == live and p in keep_live)]
        doomed = _passage_points(vector_store, name, wanted)
        if not doomed:
            continue
        vector_store.delete(name, [p.id for p in doomed])
        compact_collection(vector_store, name, dim=len(doomed[0].vector))
        removed[name] = len({p.payload.get(ALIAS_DOC_KEY) or p.payload.get("doc_id") for p in doomed})  # passages
    return removed


def _passage_points(vector_store: VectorStore, collection: str, passage_ids: Sequence[str]) -> list[Point]:
    """Every chunk (with vectors) of the ``correction:{id}`` documents in ``collection``."""
    points: list[Point] = []
    for passage in passage_ids:
        doc_id = f"correction:{passage}"
        first = vector_store.retrieve(collection, [chunk_id(doc_id, 0)], with_vectors=True)
        if not first:
            continue
        count = int(first[0].payload.get("chunk_count", 1))
        # the passage's chunks and its question point (hybrid's second point carries the correction text too)
        rest = [chunk_id(doc_id, i) for i in range(1, count)] + [question_point_id(doc_id)]
        points += first + vector_store.retrieve(collection, rest, with_vectors=True)
    return points


def compact_collection(vector_store: VectorStore, name: str, *, dim: int) -> None:
    """Rewrite ``name`` with only its current points, so deleted payloads leave the files (segments and WAL).

    Through the port only: copy to ``{name}_compact``, point every alias of ``name`` there (queries keep being
    answered), drop and re-create ``name`` from the copy, point the aliases back, drop the copy. Costs two copies of
    the collection; deletion is rare. A write to ``name`` while it runs may be lost (run deletions off-peak).
    """
    shadow = f"{name}_compact"
    if vector_store.collection_exists(shadow):
        vector_store.drop_collection(shadow)
    _copy(vector_store, name, shadow, dim=dim)
    aliases = [alias for alias, target in vector_store.list_aliases().items() if target == name]
    for alias in aliases:
        vector_store.set_alias(alias, shadow)
    vector_store.drop_collection(name)
    _copy(vector_store, shadow, name, dim=dim)
    for alias in aliases:
        vector_store.set_alias(alias, name)
    vector_store.drop_collection(shadow)
    logger.info("collection compacted name=%s aliases=%d", name, len(aliases))


def _copy(vector_store: VectorStore, source: str, target: str, *, dim: int) -> None:
    # the copy keeps the keyword index (hybrid search) when the source has one: points carry their sparse vectors
    vector_store.create_collection(target, dim=dim, sparse=vector_store.has_sparse(source))
    batch: list[Point] = []
    for point in vector_store.scroll(source, with_vectors=True, batch_size=COPY_BATCH):
        batch.append(point)
        if len(batch) >= COPY_BATCH:
            vector_store.upsert(target, batch)
            batch = []
    if batch:
        vector_store.upsert(target, batch)
