"""PII recall per entity type, technical-text preservation and per-event scrubbing latency of ``PresidioScrubber``.

Three measurements in one run, on the seeded corpus of ``tests/feedback/pii_corpus.py`` (the tests use the same
generator and the same scoring rule):
  * recall per entity type (and per variant: locale / issuer / format) over ``--n`` support texts; a labelled span is
    caught when none of its letters or digits survives in the scrubbed text (``pii_corpus.caught``);
  * preservation: the share of technical tokens of ``tests/feedback/fixtures/technical_sentences.tsv`` kept verbatim;
  * latency of the intake's scrubbing step, one event at a time (``scrub`` = one batched spaCy pass of one text), for
    events of 0.2-2 KB built from the corpus: wall-clock and this process' CPU time, p50 / p99. The process is pinned
    to at most 2 cores. Wall-clock depends on how busy the machine is; CPU time is the contention-free cost.
Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/pii_recall.py [--n 360 --seed 14 --events 200]``.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "feedback"))

from core.runtime import ensure_offline  # noqa: E402

ensure_offline()

from pii_corpus import ENTITY_TYPES, build_corpus, preservation, score_corpus, technical_table  # noqa: E402

from core.settings import PiiSettings  # noqa: E402
from feedback.pii import PresidioScrubber  # noqa: E402


def pin_two_cores() -> int:
    """Restrict this process to at most two CPUs (the target machine); returns how many it may use."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, cpus)
    return len(cpus)


def recall(scrubber: PresidioScrubber, *, n: int, seed: int) -> dict[str, object]:
    """Per-type and per-variant recall on ``build_corpus(n, seed=seed)``; prints the tables."""
    corpus = build_corpus(n, seed=seed)
    findings = scrubber.scan_many([item.text for item in corpus])
    score = score_corpus(corpus, [[(f.start, f.end) for f in found] for found in findings])
    print(f"{'entity type':16s} {'n':>5s} {'caught':>7s} {'recall':>7s}")
    for entity in ENTITY_TYPES:
        print(f"{entity:16s} {score.total[entity]:5d} {score.hits.get(entity, 0):7d} {score.recall(entity):7.3f}")
    below = {k: v for k, v in score.variant_total.items() if score.variant_hits.get(k, 0) < v}
    for (entity, variant), total in sorted(below.items()):
        print(f"  below 1.0: {entity}/{variant} {score.variant_hits.get((entity, variant), 0)}/{total}")
    caught = sum(score.hits.values())
    spans = sum(score.total.values())
    print(f"{'all':16s} {spans:5d} {caught:7d} {caught / spans:7.3f}   ({len(corpus)} texts, seed {seed})")
    return {
        "texts": len(corpus),
        "spans": spans,
        "overall": round(caught / spans, 4),
        "per_type": {e: {"n": score.total[e], "recall": round(score.recall(e), 4)} for e in ENTITY_TYPES},
        "min_type_recall": round(min(score.recall(e) for e in ENTITY_TYPES), 4),
    }


def kept_share(scrubber: PresidioScrubber) -> dict[str, object]:
    """Technical tokens kept verbatim; prints the lost ones (synthetic sentences, no real PII)."""
    rows = technical_table()
    scrubbed = [r.text for r in scrubber.scrub_many([text for text, _ in rows])]
    kept, total, lost = preservation(rows, scrubbed)
    print(f"technical tokens kept: {kept}/{total} = {kept / total:.3f} over {len(rows)} sentences")
    for token in lost:
        print(f"  lost: {token!r}")
    return {"sentences": len(rows), "tokens": total, "kept": kept, "share": round(kept / total, 4)}


def latency(scrubber: PresidioScrubber, *, events: int, seed: int) -> dict[str, object]:
    """Per-event scrub latency (wall and CPU ms) for events of 0.2-2 KB."""
    rng = random.Random(seed)
    texts = [item.text for item in build_corpus(400, seed=seed + 1)]
    batch = []
    for _ in range(events):
        target, text = rng.choice((200, 500, 1000, 2048)), ""
        while len((text + texts[0]).encode()) < target:
            text += rng.choice(texts) + " "
        batch.append(text.encode()[:2048].decode(errors="ignore") or texts[0])
    for text in batch[:5]:
        scrubber.scrub(text)  # warm-up
    wall, cpu = [], []
    for text in batch:
        w, c = time.perf_counter(), time.process_time()
        scrubber.scrub(text)
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    out = {"events": events, "max_bytes": max(len(t.encode()) for t in batch)}
    for name, values in (("wall", wall), ("cpu", cpu)):
        values.sort()
        out[f"{name}_p50_ms"] = round(statistics.median(values), 1)
        out[f"{name}_p99_ms"] = round(values[min(len(values) - 1, int(0.99 * len(values)))], 1)
    print(
        f"scrub latency per event (<= 2 KB, {events} events): wall p50 {out['wall_p50_ms']} ms, p99 "
        f"{out['wall_p99_ms']} ms; CPU p50 {out['cpu_p50_ms']} ms, p99 {out['cpu_p99_ms']} ms"
    )
    return out


def main() -> None:
    """Run the three measurements and print the JSON summary last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=360, help="corpus texts")
    parser.add_argument("--seed", type=int, default=14, help="corpus seed")
    parser.add_argument("--events", type=int, default=200, help="events timed for latency")
    args = parser.parse_args()
    cores = pin_two_cores()
    started = time.perf_counter()
    scrubber = PresidioScrubber(PiiSettings())
    load_s = time.perf_counter() - started
    summary = {
        "cores": cores,
        "load_s": round(load_s, 1),
        "recall": recall(scrubber, n=args.n, seed=args.seed),
        "technical": kept_share(scrubber),
        "latency": latency(scrubber, events=args.events, seed=args.seed),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
