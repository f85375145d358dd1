"""OpenAICompatGenerator against a fake OpenAI-compatible server (httpx.MockTransport is the HTTP seam)."""

from __future__ import annotations

import json

import httpx
import pytest

from core.errors import InvalidInputError, UpstreamUnavailableError
from core.ports import Generator
from core.types import Citation
from retrieval.generators.openai_compat import OpenAICompatGenerator

pytestmark = pytest.mark.unit

PASSAGES = [
    Citation(chunk_id="c1", doc_id="d1", text="Roof replacement takes one to two weeks.", score=0.9),
    Citation(chunk_id="c2", doc_id="d2", text="Building permits are handled by the city.", score=0.5),
]


def _reply(content: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": content}}]})


def _generator(handler, *, retries: int = 2) -> tuple[OpenAICompatGenerator, list[float]]:
    sleeps: list[float] = []
    gen = OpenAICompatGenerator(
        "http://llm.local/v1",
        "tiny",
        api_key="secret",
        retries=retries,
        backoff_s=0.1,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )
    return gen, sleeps


def test_when_endpoint_answers_then_prompt_has_numbered_passages_and_answer_keeps_markers() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer secret"
        seen.append(json.loads(request.content))
        return _reply("It takes one to two weeks [1].")

    gen, _ = _generator(handler)
    assert isinstance(gen, Generator)
    answer = gen.generate("How long does a roof take?", PASSAGES)
    assert answer.text == "It takes one to two weeks [1]."
    assert answer.citations == tuple(PASSAGES)
    assert answer.generator_version == "openai:tiny"
    body = seen[0]
    assert body["model"] == "tiny" and body["temperature"] == 0
    assert "[1] Roof replacement" in body["messages"][1]["content"]
    assert "[2] Building permits" in body["messages"][1]["content"]


def test_when_answer_has_no_or_invalid_markers_then_best_passage_marker_is_added() -> None:
    gen, _ = _generator(lambda request: _reply("Permits are handled by the city [7]."))
    assert gen.generate("Who handles permits?", PASSAGES).text == "Permits are handled by the city. [2]"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_when_server_fails_transiently_then_it_retries_with_backoff(status: int) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(status) if calls["n"] < 3 else _reply("ok [1]")

    gen, sleeps = _generator(handler)
    assert gen.generate("q", PASSAGES).text == "ok [1]"
    assert calls["n"] == 3 and sleeps == [0.1, 0.2]


def test_when_retries_run_out_then_upstream_unavailable_with_retry_after() -> None:
    gen, sleeps = _generator(lambda request: httpx.Response(429, headers={"Retry-After": "7"}), retries=1)
    with pytest.raises(UpstreamUnavailableError) as info:
        gen.generate("q", PASSAGES)
    assert info.value.retry_after_s == 7.0
    assert len(sleeps) == 1


def test_when_connection_fails_then_upstream_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gen, _ = _generator(handler, retries=2)
    with pytest.raises(UpstreamUnavailableError) as info:
        gen.generate("q", PASSAGES)
    assert info.value.retry_after_s is not None and info.value.retry_after_s >= 1.0


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(400, json={"error": "bad"}), UpstreamUnavailableError),
        (httpx.Response(200, text="not json"), UpstreamUnavailableError),
        (httpx.Response(200, json={"choices": []}), UpstreamUnavailableError),
    ],
)
def test_when_server_misbehaves_then_clear_upstream_error(response: httpx.Response, kind: type) -> None:
    gen, sleeps = _generator(lambda request: response)
    with pytest.raises(kind):
        gen.generate("q", PASSAGES)
    assert sleeps == []


@pytest.mark.parametrize(("endpoint", "model"), [("", "m"), ("ftp://x", "m"), ("http://x/v1", "")])
def test_when_configuration_is_bad_then_invalid_input(endpoint: str, model: str) -> None:
    with pytest.raises(InvalidInputError):
        OpenAICompatGenerator(endpoint, model)
