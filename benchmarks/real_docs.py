"""Real-docs benchmark: index the Debian ``git-doc`` HTML manual with the real pipeline, ask it the questions its users
ask (``benchmarks/data/git_doc_questions.jsonl``), and print retrieval and answer quality, dense-only vs hybrid.

Corpus (default): every top-level HTML page of /usr/share/doc/git-doc (206 pages: the manual pages, guides and the
user manual). The AsciiDoc ``.txt`` copies of the same pages are left out (they would make each answer exist twice),
and so are ``howto/`` and ``technical/`` (notes for Git's developers). ``--pages N`` keeps the questions' expected
pages plus the first other pages by name up to N, for a quicker run on a busy machine.

Path: :func:`indexing.loaders.load_paths` + ``IndexManager.reindex`` (what ``flywheel index PATH...`` runs) into the
embedded store of a fresh data dir, then ``container.router.answer`` (the real QueryService: PII scrub, embed, search,
extractive answer, query log) per question. Hybrid runs when ``retrieval.mode`` exists in the settings (the hybrid
retrieval change); otherwise it is reported as not available. The collection is built once, in the richest mode asked
for, and each mode queries it.

Questions: ``expected`` names the page(s) written for the question; ``also`` (optional) names another page that
answers it just as well, each checked by reading it (e.g. the user manual's section "Temporarily setting aside work
in progress" for "how do I put aside uncommitted changes", beside git-stash; gitignore(5)'s "To stop tracking a file
that is currently tracked, use git rm --cached" beside git-rm). A hit is an ``expected`` or ``also`` page;
``hits@5_strict`` counts ``expected`` pages only.

Metrics: hits@1 / hits@5 (an acceptable page among the first 1 / 5 citations), identifier hits@5 (questions naming an
option, config key, file or error message), answer fragments (share of answer segments between citation markers with
fewer than 5 words), index seconds per page, query p50 (ms, in-process), and navigation chunks (indexed chunks that
match page-navigation patterns; must be 0). The ceiling: ``page_recall@20`` / ``page_recall@50``, the share of questions
whose page is among the first 20 / 50 distinct pages retrieved (the same search, one citation per page, ``top_k`` 50),
i.e. the hits@5 an oracle reranker of that candidate list could reach; ``misses@5`` lists each miss with the rank of its
best acceptable page (``null``: not in the first 50) and the pages cited instead. ``hits@5_no_page_limit``: hits@5 of
the same search without ``retrieval.max_chunks_per_document`` (chunks of one page may fill the five citations), the
per-page limit's share of the figure. ``index.header_fit`` is the share of chunks whose embedded text (context header +
chunk) fits the embedder's window. Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/real_docs.py [--mode
dense|hybrid|both] [--pages N]``; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.runtime import ensure_offline

ensure_offline()

from core.settings import RetrievalSettings, Settings  # noqa: E402
from flywheel.container import Container  # noqa: E402
from indexing.loaders import load_paths  # noqa: E402
from retrieval.service import QueryService  # noqa: E402

GIT_DOC = Path("/usr/share/doc/git-doc")
QUESTIONS = Path(__file__).parent / "data" / "git_doc_questions.jsonl"
CORPUS = "gitdoc"
#: Page-navigation residue: DocBook "Prev Up Home Next" bars, AsciiDoc "Last updated" footers, lone nav words.
NAV_PATTERNS = [
    re.compile(r"\bPrev\b[\s|]*(?:\bUp\b[\s|]*)?(?:\bHome\b[\s|]*)?\bNext\b"),
    re.compile(r"^\s*(?:Prev|Next|Up|Home)\s*$", re.MULTILINE),
    re.compile(r"Last updated\s+\d{4}-\d{2}-\d{2}"),
    re.compile(r"^\s*Table of Contents\s*$", re.MULTILINE),
]
_MARKER = re.compile(r"\[\d+\]")


def ensure_package(package: str, path: Path) -> None:
    """Install the Debian package with apt-get when its documentation tree is missing."""
    if not path.exists():
        print(f"installing {package} (apt-get)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", package], check=True)


def hybrid_available() -> bool:
    """Whether this build has hybrid retrieval (the ``retrieval.mode`` setting)."""
    return "mode" in RetrievalSettings.model_fields


def corpus_files(questions: list[dict[str, Any]], pages: int) -> list[Path]:
    """The pages to index: all top-level HTML pages, or the expected pages plus others by name up to ``pages``."""
    files = sorted(GIT_DOC.glob("*.html"))
    if not pages or pages >= len(files):
        return files
    expected = {e for q in questions for e in q["expected"]}
    keep = [f for f in files if f.name in expected]
    keep += [f for f in files if f.name not in expected][: max(0, pages - len(keep))]
    return sorted(keep)


def fragments(answer: str) -> tuple[int, int]:
    """(segments, segments under 5 words) of an answer split at its citation markers."""
    segments = [s for s in (part.strip(" .,;:\n") for part in _MARKER.split(answer)) if s]
    return len(segments), sum(1 for s in segments if len(s.split()) < 5)


def nav_chunks(container: Container) -> int:
    """Chunks of the live collection whose text matches a navigation pattern."""
    live = container.index_manager.live_collection(CORPUS)
    texts = (str(p.payload.get("text", "")) for p in container.vector_store.scroll(live, with_vectors=False))
    return sum(1 for t in texts if any(p.search(t) for p in NAV_PATTERNS))


def header_fit(container: Container, documents: list[Any]) -> float:
    """Share of chunks whose embedded text (context header + text) fits the embedder's window (in its own tokens)."""
    model = container.embedder.model  # type: ignore[attr-defined]
    window = int(model.max_seq_length)
    texts = [c.embedding_text for c in container.chunker.chunk(documents)]
    lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
    return round(sum(n <= window for n in lengths) / max(1, len(lengths)), 3)


def _settings(data_dir: Path, mode: str) -> Settings:
    retrieval = {"mode": mode} if hybrid_available() else {}
    return Settings(data_dir=data_dir, indexing={"corpus": CORPUS}, retrieval=retrieval, _env_file=None)


def build(data_dir: Path, files: list[Path], mode: str) -> dict[str, Any]:
    """Load and index ``files`` as ``flywheel index`` does; returns timing and load figures."""
    container = Container(_settings(data_dir, mode))
    try:
        started = time.perf_counter()
        loaded = load_paths(files, max_file_bytes=container.settings.indexing.max_file_bytes)
        report = container.index_manager.reindex(CORPUS, loaded.documents, embedder=container.embedder)
        seconds = time.perf_counter() - started
        return {"pages": len(loaded.documents), "skipped": len(loaded.skipped), "chunks": report.chunks,
                "index_s": round(seconds, 1), "index_s_per_page": round(seconds / max(1, len(loaded.documents)), 3),
                "nav_chunks": nav_chunks(container), "header_fit": header_fit(container, loaded.documents),
                "chunk_size": container.settings.indexing.chunk_size,
                "chunk_headers": container.settings.indexing.chunk_headers}  # fmt: skip
    finally:
        container.close()


#: Depth of the ceiling's candidate list (distinct pages).
CEILING_DEPTH = 50


def page_searcher(container: Container, per_document: int = 1) -> QueryService:
    """The container's query service with ``per_document`` citations per page (1: the ceiling's candidate list)."""
    service = container.query_service
    keys = ("embedder", "store", "generator", "query_log", "scrubber", "reranker", "corpus", "sparse_encoder",
            "fusion", "recorder")  # fmt: skip
    settings = service.settings.model_copy(update={"max_chunks_per_document": per_document})
    return QueryService(**{k: getattr(service, k) for k in keys}, settings=settings)


def page_rank(searcher: QueryService, question: str, pages: set[str]) -> int | None:
    """Rank of the best of ``pages`` among the first :data:`CEILING_DEPTH` distinct pages retrieved, or None."""
    citations, _ = searcher.search(question, top_k=CEILING_DEPTH)
    return next((n for n, c in enumerate(citations, start=1) if c.doc_id in pages), None)


def evaluate(data_dir: Path, questions: list[dict[str, Any]], mode: str, top_k: int) -> dict[str, Any]:
    """Ask every question through the real query path; hits, fragments, latency and the page-recall ceiling."""
    container = Container(_settings(data_dir, mode))
    try:
        container.router.answer("warm up", top_k=top_k, filters=None, user_id=None, tenant=None)
        searcher, unlimited = page_searcher(container), page_searcher(container, 0)
        hits1 = hits5 = strict5 = unlimited5 = id_hits5 = id_total = segs = frags = 0
        latencies, misses, ranks = [], [], []
        for q in questions:
            pages = set(q["expected"]) | set(q.get("also", ()))
            started = time.perf_counter()
            result = container.router.answer(q["question"], top_k=top_k, filters=None, user_id=None, tenant=None)
            latencies.append((time.perf_counter() - started) * 1000)
            docs = [c.doc_id for c in result.citations]
            hit1, hit5 = docs[:1] and docs[0] in pages, any(d in pages for d in docs[:5])
            hits1, hits5 = hits1 + bool(hit1), hits5 + bool(hit5)
            strict5 += any(d in q["expected"] for d in docs[:5])
            if q["kind"] == "identifier":
                id_total, id_hits5 = id_total + 1, id_hits5 + bool(hit5)
            rank = page_rank(searcher, q["question"], pages)
            ranks.append(rank)
            plain, _ = unlimited.search(q["question"], top_k=5)
            unlimited5 += any(c.doc_id in pages for c in plain)
            if not hit5:
                misses.append([q["id"], rank, docs[:5]])
            n, short = fragments(result.answer)
            segs, frags = segs + n, frags + short
        n_q = len(questions)
        return {"hits@1": round(hits1 / n_q, 3), "hits@5": round(hits5 / n_q, 3),
                "hits@5_strict": round(strict5 / n_q, 3), "hits@5_no_page_limit": round(unlimited5 / n_q, 3),
                "identifier_hits@5": round(id_hits5 / max(1, id_total), 3),
                "page_recall@20": round(sum(r is not None and r <= 20 for r in ranks) / n_q, 3),
                "page_recall@50": round(sum(r is not None for r in ranks) / n_q, 3),
                "answer_fragment_share": round(frags / max(1, segs), 3), "answer_segments": segs,
                "query_p50_ms": round(statistics.median(latencies), 1), "misses@5": misses}  # fmt: skip
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["dense", "hybrid", "both"], default="both")
    parser.add_argument("--pages", type=int, default=0, help="index a subset of N pages (0: all 206)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    ensure_package("git-doc", GIT_DOC)
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    files = corpus_files(questions, args.pages)
    modes = ["dense", "hybrid"] if args.mode == "both" else [args.mode]
    runnable = [m for m in modes if m == "dense" or hybrid_available()]
    result: dict[str, Any] = {"benchmark": "real_docs", "corpus": "git-doc html", "questions": len(questions),
                              "identifier_questions": sum(q["kind"] == "identifier" for q in questions)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        build_mode = "hybrid" if "hybrid" in runnable else "dense"
        result["index"] = {"built_in_mode": build_mode, **build(data_dir, files, build_mode)}
        print(f"indexed {result['index']}", file=sys.stderr)
        for mode in modes:
            if mode not in runnable:
                result[mode] = "not available (no retrieval.mode setting in this build)"
                continue
            result[mode] = evaluate(data_dir, questions, mode, args.top_k)
            print(f"{mode}: {result[mode]}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
