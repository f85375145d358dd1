"""``RemoteBackend``: the operations layer reached through a running service's HTTP API (httpx).

Every method calls one endpoint and returns what :class:`flywheel.operations.Operations` returns in-process
(timestamps parsed back into ``datetime``), so the CLI prints the same. Errors come back as the same
:mod:`core.errors` classes: an RFC 9457 problem+json body is translated by its ``type`` (else its status) at this one
boundary, a service that cannot be reached is an ``UpstreamUnavailableError`` (exit 6) naming the URL.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import httpx

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

# Problem type slug (core.errors, the one source the API writes them from) -> the error the CLI raises.
_AS_THEMSELVES: tuple[type[FlywheelError], ...] = (
    InvalidInputError, NotFoundError, GateFailedError, GuardrailViolationError, ConflictError, UnauthorizedError,
    ForbiddenError, UpstreamUnavailableError,
)  # fmt: skip
_PROBLEM_TYPES: dict[str, type[FlywheelError]] = {cls.slug: cls for cls in _AS_THEMSELVES} | {
    PayloadTooLargeError.slug: InvalidInputError,  # 413: the body is over the route's limit (exit 2)
    RateLimitedError.slug: UpstreamUnavailableError,  # 429: try again after Retry-After (exit 6, like an outage)
    MALFORMED_JSON_SLUG: InvalidInputError,
    UNSUPPORTED_MEDIA_TYPE_SLUG: InvalidInputError,
}
_BY_STATUS: dict[int, type[FlywheelError]] = {
    400: InvalidInputError, 401: UnauthorizedError, 403: ForbiddenError, 404: NotFoundError, 405: InvalidInputError,
    409: ConflictError, 413: InvalidInputError, 415: InvalidInputError, 422: InvalidInputError,
    429: UpstreamUnavailableError, 503: UpstreamUnavailableError,
}  # fmt: skip
_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})
CURATE_TIMEOUT_S = 900.0


def error_from_response(response: httpx.Response) -> FlywheelError:
    """The :mod:`core.errors` exception a problem+json (or any error) response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text.strip()[:300] or response.reason_phrase}
    slug = str(body.get("type") or "").rsplit("/", 1)[-1]
    cls = _PROBLEM_TYPES.get(slug) or _BY_STATUS.get(response.status_code, FlywheelError)
    message = str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")
    if response.status_code >= 500 and cls is FlywheelError:
        message = f"the service failed (HTTP {response.status_code}): {message}"
        if body.get("error_id"):
            message += f" (error_id {body['error_id']})"
    detail = {k: v for k, v in body.items() if k not in _MEMBERS}
    if response.status_code == 401:
        message += " (set FLYWHEEL_API_KEY to a key of the service)"
    return cls(message, **detail)


def _times(record: dict[str, Any]) -> dict[str, Any]:
    """``*_at`` ISO strings of one record back to ``datetime`` (as the in-process operations return them)."""
    out = dict(record)
    for key, value in record.items():
        if key.endswith("_at") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                out[key] = datetime.fromisoformat(value)
    return out


def _present(body: dict[str, Any]) -> dict[str, Any]:
    """The body without its unset (None) members: the service applies its own defaults."""
    return {k: v for k, v in body.items() if v is not None}


class RemoteBackend:
    """The CLI's backend when a service runs for the data dir (or ``FLYWHEEL_URL`` names one)."""

    remote = True

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        headers = {"X-API-Key": api_key} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Any:  # fmt: skip
        """One request; the decoded JSON body, or the translated error."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        try:
            response = self._http.request(method, path, json=json, params=query, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailableError(f"the flywheel service at {self.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UpstreamUnavailableError(f"cannot reach the flywheel service at {self.url}: {reason}") from exc
        if response.is_error:
            raise error_from_response(response)
        return response.json()

    # ------------------------------------------------------------------------------------------------ read
    def versions(self, corpus: str | None = None) -> dict[str, Any]:
        """``GET /v1/versions``."""
        data: dict[str, Any] = self._call("GET", "/v1/versions", params={"corpus": corpus})
        return data | {"versions": [_times(v) for v in data["versions"]]}

    def models(self, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """``GET /v1/models``."""
        return [_times(m) for m in self._call("GET", "/v1/models", params={"kind": kind, "status": status})]

    def jobs(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """``GET /v1/jobs``."""
        return [_times(j) for j in self._call("GET", "/v1/jobs", params={"kind": kind, "limit": limit})]

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/jobs/{id}``."""
        return _times(self._call("GET", f"/v1/jobs/{job_id}"))

    def lineage(self, kind: str, node_id: str, *, depth: int = 8) -> dict[str, Any]:
        """``GET /v1/lineage/{kind}/{id}``."""
        data: dict[str, Any] = self._call("GET", f"/v1/lineage/{kind}/{node_id}", params={"depth": depth})
        return data

    # ------------------------------------------------------------------------------------------------ jobs
    def prepare_jobs(self) -> None:
        """Nothing to do: the service recovers its own jobs."""

    def submit_job(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /v1/jobs``: the job runs in the service."""
        return _times(self._call("POST", "/v1/jobs", json={"kind": kind, "params": params or {}}))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """``POST /v1/jobs/{id}/cancel``."""
        return _times(self._call("POST", f"/v1/jobs/{job_id}/cancel"))

    def finish_job(self, job_id: str) -> dict[str, Any]:
        """The job's final state (the caller has polled it to its end)."""
        return self.job(job_id)

    # ------------------------------------------------------------------------------------------------ deploy
    def promote(
        self, candidate: str | None = None, *, force: bool = False, reason: str | None = None, actor: str
    ) -> dict[str, Any]:
        """``POST /v1/admin/promote`` (the service records the caller's key id as the actor)."""
        body = {"candidate": candidate, "force": force, "reason": reason}
        return _times(self._call("POST", "/v1/admin/promote", json=body))

    def rollback(self, *, reason: str = "manual rollback") -> dict[str, Any]:
        """``POST /v1/admin/rollback``."""
        return _times(self._call("POST", "/v1/admin/rollback", json={"reason": reason}))

    # ------------------------------------------------------------------------------------------------ keys
    def create_key(self, role: str, *, name: str) -> dict[str, Any]:
        """``POST /v1/keys`` (the raw key is in the answer, once)."""
        return _times(self._call("POST", "/v1/keys", json={"role": role, "name": name}))

    def list_keys(self) -> list[dict[str, Any]]:
        """``GET /v1/keys``."""
        return [_times(k) for k in self._call("GET", "/v1/keys")]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """``DELETE /v1/keys/{id}``."""
        return _times(self._call("DELETE", f"/v1/keys/{key_id}"))

    # ------------------------------------------------------------------------------------------------ query / data
    def query(
        self, question: str, *, top_k: int, filters: dict[str, Any] | None = None, corpus: str | None = None,
        user_id: str | None = None, tenant: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """``POST /v1/query`` (the service answers from its own corpus: ``--corpus`` is refused if it differs)."""
        if corpus is not None:
            served = self.versions(None)["corpus"]
            if corpus != served:
                raise InvalidInputError(
                    f"the service answers corpus {served!r} only; stop it to query {corpus!r} in-process",
                    field="corpus",
                )
        body = {"question": question, "top_k": top_k, "filters": filters, "user_id": user_id, "tenant": tenant}
        data: dict[str, Any] = self._call("POST", "/v1/query", json=_present(body))
        return data

    def curate(
        self, *, corpus: str | None = None, holdout_share: float | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """``POST /v1/admin/curate``."""
        body = {"corpus": corpus, "holdout_share": holdout_share, "seed": seed}
        # curation runs inside the request (scrubbing and embedding every event): allow it minutes, not seconds
        data: dict[str, Any] = self._call("POST", "/v1/admin/curate", json=_present(body), timeout_s=CURATE_TIMEOUT_S)
        return data


__all__ = ["RemoteBackend", "error_from_response"]
