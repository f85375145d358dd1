"""OpenAI-compatible chat endpoint adapter of the ``Generator`` port (vLLM, llama.cpp server, Ollama, ...).

One POST to ``{endpoint}/chat/completions`` per answer, with the shared prompt of :mod:`core.prompts`, greedy
(``temperature=0``). Transport failures, timeouts, 5xx and 429 are retried with exponential backoff; when retries run
out the call raises ``UpstreamUnavailableError`` with ``retry_after_s`` (from ``Retry-After`` when the server sent
one). httpx errors are translated here and nowhere else. The httpx transport is injectable (tests use
``httpx.MockTransport``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from core.errors import InvalidInputError, UpstreamUnavailableError
from core.prompts import DEFAULT_MAX_PASSAGE_CHARS, build_messages, ensure_citations
from core.types import Answer, Citation

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = {429, 500, 502, 503, 504}


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


class OpenAICompatGenerator:
    """``Generator`` over an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        endpoint: base URL including the API prefix, e.g. ``http://vllm:8000/v1``.
        model: model name sent in the request.
        api_key: bearer token (``None``: no Authorization header).
        timeout_s: per-request timeout.
        retries: extra attempts after the first on retryable failures.
        backoff_s: first backoff delay; doubled on each retry.
        max_tokens: generation budget per answer.
        transport: optional httpx transport (tests).
        sleep: injectable sleep function (tests).
    Raises:
        InvalidInputError: an empty endpoint or model name.
    """

    def __init__(
        self,
        endpoint: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_tokens: int = 256,
        max_passages: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not endpoint or not endpoint.startswith(("http://", "https://")):
            raise InvalidInputError(f"generator endpoint must be an http(s) URL, got {endpoint!r}", field="endpoint")
        if not model:
            raise InvalidInputError("generator model name must not be empty", field="model")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=endpoint.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self.model = model
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.max_passages = max_passages
        self._sleep = sleep

    @property
    def version(self) -> str:
        """``openai:{model}``."""
        return f"openai:{self.model}"

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """Answer ``question`` from ``passages`` via the endpoint. Raises ``UpstreamUnavailableError``."""
        cited = tuple(passages[: self.max_passages])
        texts = [p.text for p in cited]
        body = {
            "model": self.model,
            "messages": build_messages(question, texts, max_passage_chars=DEFAULT_MAX_PASSAGE_CHARS),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        data = self._post_with_retries("/chat/completions", body)
        content = self._content(data)
        return Answer(text=ensure_citations(content, texts), citations=cited, generator_version=self.version)

    def _post_with_retries(self, path: str, body: dict[str, Any]) -> Any:
        delay = self.backoff_s
        last_response: httpx.Response | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(delay)
                delay *= 2
            try:
                response = self._client.post(path, json=body)
            except httpx.TransportError as exc:  # connect errors, timeouts, protocol errors
                logger.warning("llm endpoint transport error attempt=%d error=%s", attempt + 1, type(exc).__name__)
                last_response = None
                continue
            if response.status_code in _RETRYABLE_STATUS:
                logger.warning("llm endpoint retryable status=%d attempt=%d", response.status_code, attempt + 1)
                last_response = response
                continue
            if response.status_code >= 400:
                raise UpstreamUnavailableError(
                    f"LLM endpoint refused the request with HTTP {response.status_code}", status=response.status_code
                )
            try:
                return response.json()
            except ValueError as exc:
                raise UpstreamUnavailableError("LLM endpoint returned a non-JSON body") from exc
        status = last_response.status_code if last_response is not None else None
        raise UpstreamUnavailableError(
            f"LLM endpoint unavailable after {self.retries + 1} attempts (last status: {status or 'no response'})",
            retry_after_s=_retry_after(last_response) or max(delay, 1.0),
            status=status,
        )

    @staticmethod
    def _content(data: Any) -> str:
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise UpstreamUnavailableError("LLM endpoint returned an unexpected response shape") from exc
        if not isinstance(content, str):
            raise UpstreamUnavailableError("LLM endpoint returned a non-text message")
        return content.strip()

    def close(self) -> None:
        """Close the HTTP client. Idempotent."""
        self._client.close()


__all__ = ["OpenAICompatGenerator"]
