"""Request limits that keep one client from stalling or flooding the service (settings: ``limits.*``).

- **Body size per route** (:class:`BodyLimitMiddleware`): a body over ``limits.route_body_bytes[path]`` (else
  ``limits.max_body_bytes``) is refused with 413 before the route parses it — by ``Content-Length`` at once, and for
  chunked bodies as soon as the bytes read pass the limit.
- **Filter size** (:func:`check_filters`): at most ``limits.max_filter_keys`` keys and ``limits.max_filter_values``
  values per key in a query's filters (422 naming the limit).
- **Writes per API key** and **failed authentications per client address** (:class:`RateLimitMiddleware`): token
  buckets in memory (one process; a restart refills them). A write (POST / PUT / PATCH / DELETE) takes a token from
  its key's bucket (``POST /v1/query`` is a read); a 401 answer takes one from the address' bucket, and an address
  whose bucket is empty gets 429 for every request until it refills. Both answer 429 problem+json with
  ``Retry-After``.

Both are pure ASGI middlewares: they answer with the same problem+json as :mod:`api.problems` does.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from core.errors import FlywheelError, InvalidInputError, PayloadTooLargeError, RateLimitedError
from core.settings import LimitsSettings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POSTs that are reads: a query only appends to the query log (its cost is bounded by the body and filter limits).
READ_POSTS = frozenset({"/v1/query"})
MAX_TRACKED = 10_000  # buckets kept per limiter; the least recently used one is forgotten beyond this
_UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})


class TokenBucket:
    """Token buckets by key: ``rate_per_s`` tokens refill per second up to ``burst``. Thread-safe, bounded memory."""

    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int = MAX_TRACKED) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - updated) * self.rate_per_s)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def take(self, key: str) -> float:
        """Take one token; returns 0.0 on success, else the seconds until one is available (nothing taken)."""
        with self._lock:
            now = time.monotonic()
            tokens = self._level(key, now)
            if tokens < 1.0:
                return (1.0 - tokens) / self.rate_per_s
            self._store(key, tokens - 1.0, now)
            return 0.0

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` has a token (0.0: it has one now); takes nothing."""
        with self._lock:
            tokens = self._level(key, time.monotonic())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s

    def spend(self, key: str) -> None:
        """Take a token if there is one (never waits; used to count failures after the fact)."""
        self.take(key)


async def _answer(scope: Scope, receive: Receive, send: Send, exc: FlywheelError) -> None:
    response = await problems.flywheel_error_handler(Request(scope), exc)
    await response(scope, receive, send)


class BodyLimitMiddleware:
    """413 for a request body over its route's limit (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, limits: LimitsSettings) -> None:
        self.app = app
        self.limits = limits

    def limit_for(self, path: str) -> int:
        """The body limit of ``path`` in bytes."""
        return self.limits.route_body_bytes.get(path, self.limits.max_body_bytes)

    def _too_large(self, limit: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body is larger than this route's limit of {limit} bytes", limit_bytes=limit, field="body"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _answer(scope, receive, send, self._too_large(limit))
            return
        messages: list[Message] = []
        size = 0
        while True:  # buffer the body (bounded by the limit), then replay it to the app
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _answer(scope, receive, send, self._too_large(limit))
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(messages, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _raw_key(scope: Scope) -> str | None:
    headers = dict(scope["headers"])
    key = headers.get(b"x-api-key")
    if key:
        return key.decode("latin-1").strip()
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """429 for writes over a key's rate and for addresses that failed authentication too often."""

    def __init__(self, app: ASGIApp, *, limits: LimitsSettings) -> None:
        self.app = app
        self.writes = TokenBucket(rate_per_s=limits.write_rate_per_s, burst=limits.write_burst)
        self.auth_failures = TokenBucket(rate_per_s=limits.auth_fail_rate_per_s, burst=limits.auth_fail_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        address = _client_address(scope)
        refused = self._refusal(scope, address)
        if refused is not None:
            await _answer(scope, receive, send, refused)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.auth_failures.spend(address)
            await send(message)

        await self.app(scope, receive, counting_send)

    def _refusal(self, scope: Scope, address: str) -> RateLimitedError | None:
        wait = self.auth_failures.wait_s(address)
        if wait > 0:
            return RateLimitedError(
                "too many failed authentications from this address; retry later", retry_after_s=round(wait, 3)
            )
        if scope["method"] not in WRITE_METHODS or scope["path"] in READ_POSTS:
            return None
        key = _raw_key(scope)
        bucket = "key:" + hashlib.sha256(key.encode()).hexdigest()[:32] if key else "addr:" + address
        wait = self.writes.take(bucket)
        if wait > 0:
            return RateLimitedError("too many writes for this API key; retry later", retry_after_s=round(wait, 3))
        return None


def check_filters(filters: Mapping[str, Any] | None, limits: LimitsSettings) -> None:
    """422 (``InvalidInputError``) for a query filter with more keys, or a key with more values, than allowed.

    A filter's cost in the store grows with its values (each is a ``should`` condition checked per candidate), so a
    10,000-value list would hold a worker for seconds."""
    if not filters:
        return
    if len(filters) > limits.max_filter_keys:
        raise InvalidInputError(
            f"filters has {len(filters)} keys; at most {limits.max_filter_keys} (limits.max_filter_keys)",
            field="body.filters", limit=limits.max_filter_keys,
        )  # fmt: skip
    for key, value in filters.items():
        if isinstance(value, list) and len(value) > limits.max_filter_values:
            raise InvalidInputError(
                f"filters.{key} lists {len(value)} values; at most {limits.max_filter_values} "
                "(limits.max_filter_values)",
                field=f"body.filters.{key}", limit=limits.max_filter_values,
            )  # fmt: skip


def install(app: Any, limits: LimitsSettings) -> None:
    """Add both middlewares to ``app`` (call before the metrics middleware, so metrics see their 413 / 429)."""
    app.add_middleware(BodyLimitMiddleware, limits=limits)
    app.add_middleware(RateLimitMiddleware, limits=limits)


__all__ = ["BodyLimitMiddleware", "RateLimitMiddleware", "TokenBucket", "check_filters", "install"]
