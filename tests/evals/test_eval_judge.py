"""Judge metrics through an explicitly configured OpenAI-compatible endpoint (a local fake server at the HTTP edge)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.settings import JudgeSettings
from evals.ragas_metrics import PortEmbeddings, RagasSample, compute_judge_metrics

pytestmark = pytest.mark.integration


class _JudgeHandler(BaseHTTPRequestHandler):
    """Answers /v1/models and /v1/chat/completions like an OpenAI-compatible server (JSON-mode structured output)."""

    requests: list[dict[str, Any]]
    fail_chat: bool = False

    def log_message(self, *args: Any) -> None:
        return

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": "judge", "object": "model", "created": 0, "owned_by": "t"}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(request)
        if self.fail_chat:
            self._send(500, {"error": {"message": "model crashed", "type": "server_error"}})
            return
        text = json.dumps(request)
        if "noncommittal" in text:  # answer relevancy: the question the answer implies
            content: dict[str, Any] = {"question": "How do I pay for a permit?", "noncommittal": 0}
        elif "verdict" in text:  # faithfulness step 2: one supported, one unsupported statement
            content = {"statements": [{"statement": "s1", "reason": "in context", "verdict": 1},
                                      {"statement": "s2", "reason": "not in context", "verdict": 0}]}  # fmt: skip
        else:  # faithfulness step 1: statements of the answer
            content = {"statements": ["s1", "s2"]}
        message = {"role": "assistant", "content": json.dumps(content)}
        self._send(200, {"id": "c", "object": "chat.completion", "created": 0, "model": request["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})  # fmt: skip


@pytest.fixture
def judge_server() -> Iterator[tuple[JudgeSettings, type[_JudgeHandler]]]:
    handler = type("Handler", (_JudgeHandler,), {"requests": [], "fail_chat": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield JudgeSettings(endpoint=f"http://127.0.0.1:{server.server_port}/v1", model="judge", timeout_s=10), handler
    server.shutdown()
    server.server_close()


SAMPLES = [
    RagasSample("a", "How do I pay for a permit?", ["d1"], ["d1"], ["Permits are paid by card."], [],
                "You pay by card. It is free.", None),
    RagasSample("b", "No answer here", ["d2"], ["d2"], [], [], None, None),  # no answer: not sent to the judge
]  # fmt: skip


def test_when_judge_configured_then_faithfulness_and_relevancy_via_that_endpoint(embedder, judge_server) -> None:  # type: ignore[no-untyped-def]
    settings, handler = judge_server
    results = compute_judge_metrics(SAMPLES, judge=settings, embeddings=PortEmbeddings(embedder))
    assert results["faithfulness"].per_case == {"a": pytest.approx(0.5)}
    assert results["answer_relevancy"].value is not None and results["answer_relevancy"].value > 0.7
    assert handler.requests and all(r["model"] == "judge" for r in handler.requests)


def test_when_judge_fails_mid_run_then_metrics_skipped_with_reason(embedder, judge_server) -> None:  # type: ignore[no-untyped-def]
    settings, handler = judge_server
    handler.fail_chat = True
    results = compute_judge_metrics(SAMPLES, judge=settings, embeddings=PortEmbeddings(embedder))
    for name in ("faithfulness", "answer_relevancy"):
        assert results[name].value is None
        assert (results[name].skipped or "").startswith("judge failed on case a")


def test_when_judge_model_missing_then_skipped(embedder) -> None:  # type: ignore[no-untyped-def]
    results = compute_judge_metrics(SAMPLES, judge=JudgeSettings(endpoint="http://127.0.0.1:9/v1"),
                                    embeddings=PortEmbeddings(embedder))  # fmt: skip
    assert results["faithfulness"].skipped == "judge endpoint configured but judge.model is not set"
