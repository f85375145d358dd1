"""FastAPI application factory: ``create_app(container)``.

The app holds one :class:`flywheel.container.Container` (on ``app.state.container``). Models are loaded once in the
lifespan start-up (``container.warm_up()``), never per request; the container (vector store, databases) is closed at
shutdown. Errors become RFC 9457 problem+json in :mod:`api.problems` only. OpenAPI UI at ``/docs`` and ``/redoc``
(assets served by the app: :mod:`api.openapi`); request limits (body size, rate limits) in :mod:`api.limits`.
Handlers are sync functions: they run in the threadpool (``server.threadpool_size`` threads), never on the event
loop, so one slow request (a big batch being scrubbed, a model call) does not hold up the others.

Extension point (for every engineer): add your router module's dotted name to ``ROUTERS`` (one line); the module
must expose ``router: fastapi.APIRouter``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api import access_log, limits, problems
from api.metrics import MetricsMiddleware, ServiceMetrics
from api.openapi import install_docs
from core.errors import FlywheelError
from core.runtime import ensure_offline
from flywheel.container import Container

logger = logging.getLogger(__name__)

# One line per router module (each exposes ``router``); order only affects the OpenAPI listing.
ROUTERS: tuple[str, ...] = (
    "api.routers.health",
    "api.routers.query",
    "api.routers.feedback",
    "api.routers.users",
    "api.routers.keys",
    "api.routers.jobs",
    "api.routers.cycles",
    "api.routers.lineage",
    "api.routers.models",
    "api.routers.admin",
    "api.routers.metrics",
    "api.routers.versions",
)


def _start_step(name: str, step: Callable[[], object]) -> None:
    try:
        step()
    except FlywheelError as exc:
        logger.error("start-up step failed step=%s error=%s message=%s", name, type(exc).__name__, exc.message)


def _lifespan(container: Container, *, warm_up: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = container.settings.server.threadpool_size
        if warm_up:
            # Each step on its own: start anyway on failure, /healthz answers and /readyz reports what is missing.
            _start_step("warm-up", container.warm_up)  # models + store, once per process
            _start_step("loop start", container.start_loop)  # F: reap dead jobs, reconcile deployment, scheduler
        try:
            yield
        finally:
            container.close()

    return lifespan


def create_app(container: Container, *, warm_up: bool = True) -> FastAPI:
    """Build the API around ``container``.

    Args:
        container: the composition root whose objects serve requests (owned by the app: closed at shutdown).
        warm_up: load the embedder, vector store and generator at start-up (tests may turn it off).
    """
    ensure_offline()
    app = FastAPI(
        title="rag-flywheel",
        version="0.1.0",
        description="Answers with cited passages; feedback in, better retrieval out.",
        lifespan=_lifespan(container, warm_up=warm_up),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.container = container
    container.background_recording = True  # the feedback and query routes wait for pending records (read-your-writes)
    app.state.metrics = ServiceMetrics(container)
    limits.install(app, container.settings.limits)  # inside the metrics middleware: 413 / 429 are counted
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    problems.install(app)
    access_log.install(lambda user_id: container.feedback_store.pseudonyms.of("user", user_id) or "")
    routers = [importlib.import_module(name).router for name in ROUTERS]
    for router in routers:
        app.include_router(router)
    install_docs(app, routers)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn api.app:app_from_env --factory`` and ``flywheel serve``: settings from the env."""
    ensure_offline()
    from core.settings import Settings

    return create_app(Container(Settings()))
