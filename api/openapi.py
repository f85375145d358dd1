"""The OpenAPI contract, completed, and the offline docs (``/docs`` Swagger UI, ``/redoc`` ReDoc).

What :func:`build_openapi` adds to FastAPI's generated schema:

- ``securitySchemes``: ``ApiKeyHeader`` (``X-API-Key``) and ``BearerAuth`` (``Authorization: Bearer <key>``); every
  operation that authenticates its caller lists both (either one suffices).
- Every problem response an operation can give, as ``application/problem+json`` with the shared ``Problem`` schema:
  422 / 429 / 503 everywhere; 401 / 403 where a key is checked; 404 everywhere (unknown ids, nothing deployed);
  409 on writes; 400 / 413 / 415 where there is a request body. FastAPI's own 422 (``HTTPValidationError``) is
  replaced, since :mod:`api.problems` answers validation errors as problems too.
- OpenAPI links from ``POST /v1/query`` to the operations that take its ``query_id`` (the recorded query and
  feedback), so clients and contract testers can follow query -> feedback.

The docs pages load their scripts and styles from the app itself (``/docs-assets/...``: Swagger UI and ReDoc from
the ``fastapi-offline`` package), never from a CDN, so they work on an offline machine.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from api.deps import get_principal
from api.problems import PROBLEM_MEDIA_TYPE

ASSETS_PATH = "/docs-assets"
SECURITY: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; extension members carry the error's structured fields.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "problem type URI (about:blank for plain HTTP errors)"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "the request path"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "additionalProperties": True,
            },
        },
        "retry_after_s": {"type": "number", "description": "seconds to wait (also in the Retry-After header)"},
        "limit_bytes": {"type": "integer", "description": "413: the route's body limit"},
        "error_id": {"type": "string", "description": "500: quote it when reporting the error"},
    },
    "additionalProperties": True,
}

PROBLEM_DESCRIPTIONS = {
    400: "Malformed JSON body",
    401: "Missing or unknown API key",
    403: "The key's role may not do this",
    404: "Unknown id, or nothing of the kind exists yet",
    409: "Conflicts with the current state (duplicate, job running, gate failed)",
    413: "Request body over the route's limit (limits.max_body_bytes / limits.route_body_bytes)",
    415: "Request body is not JSON",
    422: "Invalid input; every bad field is listed in errors",
    429: "Too many writes for this key, or failed logins from this address (see Retry-After)",
    503: "Store, database or disk unavailable (see Retry-After)",
}


def _authenticates(dependant: Dependant) -> bool:
    return any(dep.call is get_principal or _authenticates(dep) for dep in dependant.dependencies)


def _statuses(route: APIRoute, method: str) -> list[int]:
    statuses = [404, 422, 429, 503]
    if _authenticates(route.dependant):
        statuses += [401, 403]
    if method in WRITE_METHODS:
        statuses.append(409)
    if route.body_field is not None:
        statuses += [400, 413, 415]
    return sorted(statuses)


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": PROBLEM_DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _query_links(schema: dict[str, Any]) -> None:
    """Links from the query's ``query_id`` to the record and to feedback about it."""
    paths = schema["paths"]
    ok = paths.get("/v1/query", {}).get("post", {}).get("responses", {}).get("200")
    if ok is None:
        return
    links: dict[str, Any] = {}
    record = paths.get("/v1/queries/{query_id}", {}).get("get")
    if record is not None:
        links["GetRecordedQuery"] = {
            "operationId": record["operationId"],
            "parameters": {"query_id": "$response.body#/query_id"},
            "description": "the recorded (PII-scrubbed) query",
        }
    feedback = paths.get("/v1/feedback", {}).get("post")
    if feedback is not None:
        links["SubmitFeedback"] = {
            "operationId": feedback["operationId"],
            "requestBody": {"query_id": "$response.body#/query_id"},
            "description": "feedback on this answer refers to its query_id",
        }
    ok["links"] = links


def build_openapi(app: FastAPI, routers: Sequence[APIRouter]) -> dict[str, Any]:
    """The app's OpenAPI document with security, problem responses and links (cached on ``app.openapi_schema``).

    ``routers`` are the routers included in the app (their routes say which dependencies authenticate)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    components["securitySchemes"] = {
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "BearerAuth": {"type": "http", "scheme": "bearer", "description": "the same API key as a bearer token"},
    }
    for route in (r for router in routers for r in router.routes):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            _complete(operation, route, method.lower())
    _query_links(schema)
    app.openapi_schema = schema
    return schema


def _complete(operation: dict[str, Any], route: APIRoute, method: str) -> None:
    responses = operation.setdefault("responses", {})
    for status in _statuses(route, method):
        responses[str(status)] = _problem_response(status)
    if _authenticates(route.dependant):
        operation["security"] = SECURITY


def _assets_dir() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fastapi-offline is not installed: the offline docs assets are missing")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Serve ``/docs`` and ``/redoc`` with assets from the app (``/docs-assets``), and the completed OpenAPI."""
    app.openapi = lambda: build_openapi(app, routers)  # type: ignore[method-assign]
    app.mount(ASSETS_PATH, StaticFiles(directory=_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )


__all__ = ["PROBLEM_SCHEMA", "build_openapi", "install_docs"]
