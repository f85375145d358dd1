"""RFC 9457 problem details: the ONE place where errors become HTTP statuses.

Every error response of the API is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and
``instance`` (the request path), plus extension members: ``errors`` (a list of ``{field, message}``), ``retry_after_s``
(with a ``Retry-After`` header), and the structured ``detail`` fields of :class:`core.errors.FlywheelError`.

Mapping (routes never choose statuses themselves; they raise ``core.errors`` exceptions):

    InvalidInputError (incl. NotEnoughDataError)  422      NotFoundError            404
    PayloadTooLargeError                          413      RateLimitedError         429 (+ Retry-After)
    ConflictError, GateFailedError,               409      UnauthorizedError        401 (+ WWW-Authenticate)
    GuardrailViolationError                                ForbiddenError           403
    UpstreamUnavailableError (incl. StorageUnavailableError: disk full / read-only)   503 (+ Retry-After)
    RequestValidationError                        422, every bad field listed (malformed JSON body: 400)
    unsupported request Content-Type              415      unknown route / method   404 / 405
    anything else (incl. StorageError)            500, generic text + ``error_id`` (the full error is logged)
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    MALFORMED_JSON_SLUG,
    UNSUPPORTED_MEDIA_TYPE_SLUG,
    ConflictError,
    FlywheelError,
    ForbiddenError,
    GateFailedError,
    GuardrailViolationError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
    UpstreamUnavailableError,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://rag-flywheel.dev/problems/"

# Most specific first: the first matching class decides the status; its ``slug`` (core.errors) names the type.
_STATUS_BY_ERROR: tuple[tuple[type[FlywheelError], int], ...] = (
    (PayloadTooLargeError, 413),
    (InvalidInputError, 422),
    (RateLimitedError, 429),
    (NotFoundError, 404),
    (GateFailedError, 409),
    (GuardrailViolationError, 409),
    (ConflictError, 409),
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (UpstreamUnavailableError, 503),
)
_HTTP_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 415: "Unsupported media type"}
# Detail keys never copied into the body as extension members (reserved members, or internals).
_RESERVED_KEYS = frozenset({"type", "title", "status", "detail", "instance", "errors", "headers", "exc", "traceback"})


class UnsupportedMediaTypeError(Exception):
    """Raised by the content-type guard (:func:`api.deps.require_json`) for a non-JSON request body."""

    def __init__(self, content_type: str) -> None:
        super().__init__(content_type)
        self.content_type = content_type


def problem_response(
    *,
    status: int,
    title: str,
    detail: str,
    instance: str | None = None,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build one ``application/problem+json`` response (extension members are added at the top level)."""
    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update({key: value for key, value in extensions.items() if value is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def status_for(exc: FlywheelError) -> tuple[int, str]:
    """HTTP status and problem type slug for a project error (500 / ``internal`` for anything unmapped)."""
    for cls, status in _STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status, cls.slug
    return 500, FlywheelError.slug


def _errors_from_detail(exc: FlywheelError) -> list[dict[str, Any]] | None:
    """``errors`` member: the error's own list, else one entry built from its ``field``."""
    errors = exc.detail.get("errors")
    if isinstance(errors, list):
        return errors
    field = exc.detail.get("field")
    if field:
        return [{"field": str(field), "message": exc.message}]
    return None


async def flywheel_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Map a :class:`FlywheelError` to problem+json by the table above."""
    assert isinstance(exc, FlywheelError)
    status, slug = status_for(exc)
    if status == 500:
        return _internal_error(request, exc)
    headers: dict[str, str] = {}
    extensions = jsonable_encoder({k: v for k, v in exc.detail.items() if k not in _RESERVED_KEYS})
    retry_after_s = getattr(exc, "retry_after_s", None)
    if isinstance(exc, UpstreamUnavailableError | RateLimitedError) and retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
        extensions["retry_after_s"] = retry_after_s
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="flywheel", charset="UTF-8"'
    logger.info("request failed status=%d type=%s path=%s", status, slug, request.url.path)
    return problem_response(
        status=status,
        title=exc.title,
        detail=exc.message,
        instance=request.url.path,
        type_=TYPE_BASE + slug,
        headers=headers or None,
        errors=jsonable_encoder(_errors_from_detail(exc)),
        **extensions,
    )


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 listing every invalid field (``body.top_k`` ...); a body that is not valid JSON is a 400."""
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in raw):
        return problem_response(
            status=400,
            title="Malformed JSON",
            detail="the request body is not valid JSON",
            instance=request.url.path,
            type_=TYPE_BASE + MALFORMED_JSON_SLUG,
        )
    errors = [{"field": _location(err.get("loc", ())), "message": err.get("msg", "invalid")} for err in raw]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        status=422,
        title="Invalid input",
        detail=summary or "the request is invalid",
        instance=request.url.path,
        type_=TYPE_BASE + InvalidInputError.slug,
        errors=errors,
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own HTTP errors (unknown route 404, wrong method 405 ...) as problem+json."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    title = _HTTP_TITLES.get(status, "HTTP error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    if status == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}"
    elif status == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return problem_response(
        status=status,
        title=title,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def unsupported_media_type_handler(request: Request, exc: Exception) -> JSONResponse:
    """415 for a request body that is not JSON."""
    assert isinstance(exc, UnsupportedMediaTypeError)
    return problem_response(
        status=415,
        title="Unsupported media type",
        detail=f"the request body must be application/json, got {exc.content_type or 'no content type'!r}",
        instance=request.url.path,
        type_=TYPE_BASE + UNSUPPORTED_MEDIA_TYPE_SLUG,
    )


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex
    logger.error(
        "unhandled error error_id=%s path=%s error=%s", error_id, request.url.path, type(exc).__name__, exc_info=exc
    )
    return problem_response(
        status=500,
        title="Internal server error",
        detail="an unexpected error occurred; quote error_id when reporting it",
        instance=request.url.path,
        type_=TYPE_BASE + FlywheelError.slug,
        error_id=error_id,
    )


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: 500 with a generic message and a logged ``error_id`` (never the exception text)."""
    return _internal_error(request, exc)


def install(app: FastAPI) -> None:
    """Register every problem+json handler on ``app`` (called once by :func:`api.app.create_app`)."""
    app.add_exception_handler(FlywheelError, flywheel_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(UnsupportedMediaTypeError, unsupported_media_type_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
