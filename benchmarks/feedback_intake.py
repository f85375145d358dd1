"""Feedback intake with PII scrubbing on: sustained events/s, acknowledgement latency, and raw-PII leakage.

Side by side in one run, on the same seeded support tickets (names, emails, phones, card numbers, IBANs):
  * raw Presidio, one ``AnalyzerEngine.analyze`` + ``AnonymizerEngine.anonymize`` per text (the naive loop);
  * our ``PresidioScrubber.scrub_many`` (Presidio's BatchAnalyzerEngine: one spaCy ``pipe`` per request);
  * the HTTP path: ``POST /v1/feedback`` (one event per request, sequential and from concurrent agents whose texts
    the scrubber coalesces: acknowledgement latency p50/p99) and
    ``POST /v1/feedback:batch`` (50 events per request: sustained events/s), every event carrying ticket text,
    through FastAPI's TestClient on the real app, SQLite (WAL) store, committed before the 2xx;
  * leakage: every raw PII value of the seeded tickets is searched in every stored row (must be 0).
Wall-clock figures depend on how busy the machine is; ``*_cpu_ms_per_event`` (this process' CPU time per event) is
the contention-free cost. Run: ``.venv/bin/python benchmarks/feedback_intake.py [--events 400]``.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from core.runtime import ensure_offline

ensure_offline()

import sqlalchemy as sa  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import Arm, QueryRecord  # noqa: E402
from feedback.intake import FeedbackIntake  # noqa: E402
from feedback.pii import PresidioScrubber  # noqa: E402
from feedback.store import SqlStore  # noqa: E402
from flywheel.container import Container  # noqa: E402

FIRST = ["Maria", "John", "Aisha", "Lars", "Chen", "Fatima", "Peter", "Sofia", "Ahmed", "Emma"]
LAST = ["Garcia", "Smith", "Khan", "Nilsson", "Wei", "Rossi", "Miller", "Dubois", "Haddad", "Jensen"]
TEMPLATES = [
    "Customer {name} ({email}) says the refund never arrived; call back on {phone}.",
    "{name} paid with card {card} and was charged twice, please reverse one charge.",
    "Ticket from {name}: wants the invoice re-sent to {email}, account IBAN {iban}.",
    "The answer was wrong for {name}; the correct hotline is {phone}, not the old one.",
    "Please update: {name} moved, new contact {email}, phone {phone}.",
]
CARDS = ["4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606"]


def tickets(n: int, *, seed: int) -> tuple[list[str], set[str]]:
    """``n`` ticket texts and the set of raw PII values they contain."""
    rng = random.Random(seed)
    texts, raw = [], set()
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        values = {
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{i}@example.com",
            "phone": f"415-555-{rng.randint(1000, 9999)}",
            "card": rng.choice(CARDS),
            "iban": rng.choice(IBANS),
        }
        template = TEMPLATES[i % len(TEMPLATES)]
        texts.append(template.format(**values))
        raw |= {v for k, v in values.items() if "{" + k + "}" in template}
    return texts, raw


def raw_presidio(scrubber: PresidioScrubber, texts: list[str], settings: Settings) -> float:
    """Texts/s of the naive per-text analyze + anonymize loop (same engines, no batching)."""
    from presidio_anonymizer.entities import OperatorConfig

    analyzer, anonymizer = scrubber._analyzer, scrubber._anonymizer  # the same loaded engines
    start = time.perf_counter()
    for text in texts:
        results = analyzer.analyze(text=text, language="en", entities=settings.pii.entities, score_threshold=0.5)
        ops = {r.entity_type: OperatorConfig("replace", {"new_value": f"<{r.entity_type}>"}) for r in results}
        anonymizer.anonymize(text=text, analyzer_results=results, operators=ops)
    return len(texts) / (time.perf_counter() - start)


def ours(scrubber: PresidioScrubber, texts: list[str], batch: int) -> float:
    """Texts/s of ``scrub_many`` over requests of ``batch`` texts."""
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        scrubber.scrub_many(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def _query(store: SqlStore) -> str:
    record = QueryRecord(uuid.uuid4().hex, "How do I get a refund?", "Refunds take 14 days [1].", ["c1"], ["d1"],
                         [0.9], "faq", "faq__v1", "base", "extractive", Arm.CURRENT)  # fmt: skip
    store.record_query(record)
    return record.id


def http_path(client: TestClient, qids: list[str], texts: list[str], *, batch: int) -> dict[str, float]:
    """Single-event acknowledgement latency and batched sustained throughput through the real app."""
    headers = {"X-API-Key": "bench-admin-key"}
    half = len(texts) // 2
    latencies = []
    cpu0 = time.process_time()
    for i, text in enumerate(texts[:half]):
        start = time.perf_counter()
        response = client.post("/v1/feedback", json={"query_id": qids[i % len(qids)], "kind": "comment", "text": text},
                               headers=headers)  # fmt: skip
        latencies.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201, response.text
    single_cpu = (time.process_time() - cpu0) * 1000 / half
    rest = texts[half:]
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in range(0, len(rest), batch):
        events = [{"query_id": qids[j % len(qids)], "kind": "correction", "text": t}
                  for j, t in enumerate(rest[i : i + batch])]  # fmt: skip
        response = client.post("/v1/feedback:batch", json={"events": events}, headers=headers)
        assert response.status_code == 201, response.text
    batch_rate = len(rest) / (time.perf_counter() - start)
    batch_cpu = (time.process_time() - cpu0) * 1000 / len(rest)
    latencies.sort()
    return {
        "single_events_per_s": round(1000 * len(latencies) / sum(latencies), 1),
        "ack_p50_ms": round(statistics.median(latencies), 1),
        "ack_p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "batch_events_per_s": round(batch_rate, 1),
        # CPU time of this process per event: the contention-free cost (the machine may be shared).
        "single_cpu_ms_per_event": round(single_cpu, 1),
        "batch_cpu_ms_per_event": round(batch_cpu, 1),
    }


def concurrent_path(client: TestClient, qids: list[str], texts: list[str], *, workers: int) -> dict[str, float]:
    """Single-event POSTs from ``workers`` concurrent agents (the scrubber coalesces their texts into batches)."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"X-API-Key": "bench-admin-key"}

    def post(i: int) -> float:
        start = time.perf_counter()
        body = {"query_id": qids[i % len(qids)], "kind": "comment", "text": texts[i]}
        response = client.post("/v1/feedback", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        latencies = sorted(pool.map(post, range(len(texts))))
    return {
        "concurrent_events_per_s": round(len(texts) / (time.perf_counter() - start), 1),
        "concurrent_ack_p50_ms": round(statistics.median(latencies), 1),
        "concurrent_ack_p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
    }


def leaks(store: SqlStore, raw: set[str]) -> int:
    """Stored rows (events, corrections) containing any raw PII value."""
    with store.engine.connect() as conn:
        rows = [str(r) for t in ("fb_events", "fb_corrections") for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]
    return sum(1 for row in rows if any(value in row for value in raw))


def main() -> None:
    """Run every side on the same tickets and print the figures (JSON last)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="ticket texts per side")
    parser.add_argument("--batch", type=int, default=50, help="events per batch request")
    parser.add_argument("--workers", type=int, default=8, help="concurrent agents posting single events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), auth={"bootstrap_admin_key": "bench-admin-key"},
                            feedback={"fast_path": "off"}, _env_file=None)  # fmt: skip
        scrubber = PresidioScrubber(settings.pii)
        texts, raw = tickets(args.events, seed=7)
        scrubber.scrub_many(texts[:8])  # warm the pipeline
        raw_rate = raw_presidio(scrubber, texts, settings)
        our_rate = ours(scrubber, texts, args.batch)
        store = SqlStore(settings.database_url)
        intake = FeedbackIntake(store, scrubber, settings.feedback, passage_index=None)
        container = Container(settings, overrides={"scrubber": scrubber, "feedback_store": store,
                                                   "feedback_intake": intake})  # fmt: skip
        qids = [_query(store) for _ in range(20)]
        with TestClient(create_app(container, warm_up=False)) as client:
            http = http_path(client, qids, texts, batch=args.batch)
            http.update(concurrent_path(client, qids, texts, workers=args.workers))
        leaked = leaks(store, raw)
    result = {
        "events": args.events,
        "raw_presidio_texts_per_s": round(raw_rate, 1),
        "scrub_many_texts_per_s": round(our_rate, 1),
        "scrub_speedup": round(our_rate / raw_rate, 2),
        **http,
        "stored_rows_with_raw_pii": leaked,
    }
    print(f"raw Presidio loop      : {result['raw_presidio_texts_per_s']:8.1f} texts/s")
    print(f"scrub_many (batch {args.batch:3d}) : {result['scrub_many_texts_per_s']:8.1f} texts/s "
          f"(x{result['scrub_speedup']})")  # fmt: skip
    print(f"POST /v1/feedback      : {http['single_events_per_s']:8.1f} events/s, ack p50 {http['ack_p50_ms']} ms, "
          f"p99 {http['ack_p99_ms']} ms")  # fmt: skip
    print(f"POST /v1/feedback:batch: {http['batch_events_per_s']:8.1f} events/s")
    print(
        f"CPU per event          : single {http['single_cpu_ms_per_event']} ms, "
        f"batch {http['batch_cpu_ms_per_event']} ms"
    )
    print(f"POST /v1/feedback x{args.workers}  : {http['concurrent_events_per_s']:8.1f} events/s, "
          f"ack p50 {http['concurrent_ack_p50_ms']} ms, p99 {http['concurrent_ack_p99_ms']} ms")  # fmt: skip
    print(f"stored rows with raw PII: {leaked}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
