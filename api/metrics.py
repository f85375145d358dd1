"""Prometheus metrics of the service, served at ``GET /metrics`` (reader role; Prometheus sends the key as a bearer
token: ``authorization: {credentials: <reader key>}`` in its scrape config).

Each app gets its own ``CollectorRegistry`` (no process-global state, so several apps in one process — tests — never
collide). What is exported:

- ``flywheel_http_requests_total{method, route, status}`` and ``flywheel_http_request_duration_seconds{method,
  route}``: every request, labelled by the route *template* (``/v1/jobs/{job_id}``, never the raw path, so ids do not
  blow up the label set; unmatched paths are ``route="unmatched"``).
- ``flywheel_queries_total{arm}``: answered queries by the arm that served them (current / candidate / shadow), the
  canary's traffic split as it happens.
- ``flywheel_feedback_events_total{kind}``: newly stored feedback events by kind (an idempotent replay, which
  stores nothing, is not counted).
- Read from the state at scrape time: ``flywheel_jobs_active{kind, status}`` (queued / running jobs),
  ``flywheel_deployment_info{corpus, collection, embedder, reranker, generator_adapter, canary}`` (always 1; the
  labels say what is live) and ``flywheel_canary_share`` (0 without a canary). A state read that fails is logged and
  left out of that scrape; it never fails the scrape.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterator

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flywheel.container import Container
from flywheel.deploy import MODEL_KINDS
from flywheel.state import ACTIVE_JOB_STATUSES

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MODEL_LABELS = tuple(kind.value for kind in MODEL_KINDS)


class ServiceMetrics:
    """The app's metrics: request counters (filled by :class:`MetricsMiddleware`), query / feedback counters and the
    state collector."""

    def __init__(self, container: Container) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "flywheel_http_requests", "HTTP requests by method, route template and status code",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "flywheel_http_request_duration_seconds", "HTTP request latency by method and route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.queries = Counter(
            "flywheel_queries", "Answered queries by the arm that served them", ["arm"], registry=self.registry
        )
        self.feedback = Counter(
            "flywheel_feedback_events", "Newly stored feedback events by kind (replays not counted)", ["kind"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(container))

    def render(self) -> Response:
        """The Prometheus text exposition of everything above."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template in ``metrics`` (a pure ASGI middleware: no extra
    task or stream per request, unlike ``@app.middleware("http")``). Add it with ``app.add_middleware``."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - started)


class _StateCollector(Collector):
    """Gauges read from the loop state at scrape time (nothing is built that the service has not built)."""

    def __init__(self, container: Container) -> None:
        self.c = container

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._safely("jobs", self._jobs)
        yield from self._safely("deployment", self._deployment)

    def _safely(self, what: str, read: Callable[[], list[GaugeMetricFamily]]) -> Iterator[GaugeMetricFamily]:
        try:
            yield from read()
        except Exception:  # a scrape must not fail because one state read did
            logger.warning("metrics: %s not readable", what, exc_info=True)

    def _jobs(self) -> list[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("flywheel_jobs_active", "Queued or running jobs", labels=["kind", "status"])
        jobs = self.c.state_store.list_jobs(statuses=tuple(ACTIVE_JOB_STATUSES), limit=1000)
        for (kind, status), n in sorted(collections.Counter((job.kind, job.status.value) for job in jobs).items()):
            gauge.add_metric([kind, status], n)
        return [gauge]

    def _deployment(self) -> list[GaugeMetricFamily]:
        corpus = self.c.settings.indexing.corpus
        record = self.c.state_store.current_deployment(corpus)
        if record is not None:
            live, models, canary = record.live_collection, dict(record.models or {}), dict(record.canary or {})
        elif self.c.is_built("deployer"):  # no deployment recorded yet: the alias and the registry's pointers
            live, models, canary = self.c.vector_store.get_alias(corpus), self.c.deployer.registry_models(), {}
        else:
            return []
        labels = ["corpus", "collection", *MODEL_LABELS, "canary"]
        info = GaugeMetricFamily("flywheel_deployment_info", "What is live (always 1; see the labels)", labels=labels)
        values = [str(models.get(k) or "base") for k in MODEL_LABELS]
        info.add_metric([corpus, live or "", *values, str(canary.get("collection") or "")], 1)
        share = GaugeMetricFamily("flywheel_canary_share", "Share of users routed to the candidate (0: no canary)")
        share.add_metric([], float(canary.get("share") or 0.0))
        return [info, share]


__all__ = ["MetricsMiddleware", "ServiceMetrics"]
