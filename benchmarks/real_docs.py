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

Metrics: hits@1 / hits@5 (an expected page among the first 1 / 5 citations), identifier hits@5 (questions naming an
option, config key, file or error message), answer fragments (share of answer segments between citation markers with
fewer than 5 words), index seconds per page, query p50 (ms, in-process), and navigation chunks (indexed chunks that
match page-navigation patterns; must be 0). Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/real_docs.py
[--mode dense|hybrid|both] [--pages N]``; the last stdout line is one JSON object.
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
                "nav_chunks": nav_chunks(container)}  # fmt: skip
    finally:
        container.close()


def evaluate(data_dir: Path, questions: list[dict[str, Any]], mode: str, top_k: int) -> dict[str, Any]:
    """Ask every question through the real query path; hits, fragments and latency."""
    container = Container(_settings(data_dir, mode))
    try:
        container.router.answer("warm up", top_k=top_k, filters=None, user_id=None, tenant=None)
        hits1 = hits5 = id_hits5 = id_total = segs = frags = 0
        latencies, misses = [], []
        for q in questions:
            started = time.perf_counter()
            result = container.router.answer(q["question"], top_k=top_k, filters=None, user_id=None, tenant=None)
            latencies.append((time.perf_counter() - started) * 1000)
            docs = [c.doc_id for c in result.citations]
            hit1, hit5 = docs[:1] and docs[0] in q["expected"], any(d in q["expected"] for d in docs[:5])
            hits1, hits5 = hits1 + bool(hit1), hits5 + bool(hit5)
            if q["kind"] == "identifier":
                id_total, id_hits5 = id_total + 1, id_hits5 + bool(hit5)
            if not hit5:
                misses.append(q["id"])
            n, short = fragments(result.answer)
            segs, frags = segs + n, frags + short
        n_q = len(questions)
        return {"hits@1": round(hits1 / n_q, 3), "hits@5": round(hits5 / n_q, 3),
                "identifier_hits@5": round(id_hits5 / max(1, id_total), 3),
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
