"""FastAPI dependencies: the container, settings, the caller's principal and role checks, the JSON body guard.

Use the ``Annotated`` aliases in route signatures::

    @router.post("/v1/things", dependencies=[Depends(require_json)])
    def create(body: ThingCreate, container: ContainerDep, principal: Annotated[Principal, require_role("agent")]):
        ...

Authentication: the raw key comes from ``X-API-Key`` or ``Authorization: Bearer <key>`` and is verified by
``container.api_keys.verify(raw_key)`` (engineer C's ``feedback.auth.ApiKeyService``), which returns an object with
``.key_id`` and ``.role`` (``admin`` | ``agent`` | ``reader``). ``admin`` passes every role check. With
``settings.auth.enabled = False`` (local development only) every request is an admin.

Every dependency here is ``async`` and does no I/O on the event loop: FastAPI runs a sync dependency in the thread
pool, one hand-off per dependency per request, which cost more than the work they do. A key verified within
``auth.key_cache_ttl_s`` is answered from memory; any other goes to the key store in the thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from starlette.concurrency import run_in_threadpool

from api.metrics import ServiceMetrics
from api.problems import UnsupportedMediaTypeError
from core.errors import ForbiddenError, UnauthorizedError
from core.settings import Settings
from flywheel.container import Container

ROLES = ("admin", "agent", "reader")
_JSON_SUBTYPES = ("json",)


class Principal(Protocol):
    """Who is calling: the verified key's id and role (C's ``feedback.auth.Principal`` satisfies this)."""

    @property
    def key_id(self) -> str:
        """Id of the API key (never the raw key)."""
        ...

    @property
    def role(self) -> str:
        """``admin`` | ``agent`` | ``reader``."""
        ...


@dataclass(frozen=True, slots=True)
class LocalPrincipal:
    """The principal of every request when ``auth.enabled`` is False (local development)."""

    key_id: str
    role: str = "admin"


async def get_container(request: Request) -> Container:
    """The process' container, stored on ``app.state`` by :func:`api.app.create_app`."""
    container: Container = request.app.state.container
    return container


async def get_settings(container: Annotated[Container, Depends(get_container)]) -> Settings:
    """The loaded settings."""
    return container.settings


async def get_metrics(request: Request) -> ServiceMetrics:
    """The app's metrics (:class:`api.metrics.ServiceMetrics`), stored on ``app.state`` by ``create_app``."""
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


ContainerDep = Annotated[Container, Depends(get_container)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _raw_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _verify(container: Container, raw_key: str) -> Principal:
    """Verify with the key service (C's ``ApiKeyService``: hashed keys in the store, bootstrap admin key seeded)."""
    principal: Principal = container.api_keys.verify(raw_key)
    return principal


async def get_principal(request: Request, container: ContainerDep) -> Principal:
    """Authenticate the caller. Raises ``UnauthorizedError`` (401) for a missing or unknown key."""
    if not container.settings.auth.enabled:
        return LocalPrincipal(key_id="local")
    raw_key = _raw_key(request)
    if raw_key is None:
        raise UnauthorizedError("missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>")
    cached = container.api_keys.cached(raw_key) if container.is_built("api_keys") else None
    return cached if cached is not None else await run_in_threadpool(_verify, container, raw_key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def principal_id(principal: Principal) -> str:
    """The stable identity votes, quorums, rater weights and idempotency keys are counted by: ``key:{key_id}``.

    Always derived from the verified key, never from anything in the request body (a ``rater_id`` is a label).
    """
    return f"key:{principal.key_id}"


def require_role(*roles: str) -> DependsParam:
    """Dependency allowing callers whose role is one of ``roles`` (``admin`` always passes).

    Raises ``ForbiddenError`` (403) for a valid key with another role; ``UnauthorizedError`` (401) without a key.
    Use as ``principal: Annotated[Principal, require_role("agent", "reader")]`` or in ``dependencies=[...]``.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; expected some of {ROLES}")
    allowed = frozenset(roles) | {"admin"}

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(
                f"role {principal.role} may not do this; needs one of {sorted(allowed)}", key_id=principal.key_id
            )
        return principal

    return Depends(check)


# The role aliases routes declare their caller with (``principal: Reader``).
Admin = Annotated[Principal, require_role("admin")]
Agent = Annotated[Principal, require_role("agent")]
Reader = Annotated[Principal, require_role("reader")]
AgentOrReader = Annotated[Principal, require_role("agent", "reader")]


async def require_json(request: Request) -> None:
    """Reject a request body that is not JSON with 415 (FastAPI would otherwise try to validate the raw bytes)."""
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    content_type = request.headers.get("content-type")
    if not has_body or content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media_type.partition("/")
    if main == "application" and (sub in _JSON_SUBTYPES or sub.endswith("+json")):
        return
    raise UnsupportedMediaTypeError(content_type)
