"""CLI: index a tiny folder, query it, list versions; user errors exit non-zero with one clear line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeScrubber
from typer.testing import CliRunner

from core.errors import (
    ConflictError,
    ForbiddenError,
    GateFailedError,
    GuardrailViolationError,
    InvalidInputError,
    NotEnoughDataError,
    NotFoundError,
    StorageError,
    UnauthorizedError,
    UpstreamUnavailableError,
)
from core.settings import Settings
from flywheel.cli import app, exit_code_for, parse_filters
from flywheel.container import Container

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def container(settings: Settings, embedder: Any) -> Iterator[Container]:
    built = Container(settings, overrides={"embedder": embedder, "scrubber": FakeScrubber()})
    yield built
    built.close()


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "refunds.md").write_text("# Refunds\n\nRefunds are issued within 14 days of the return.\n")
    (folder / "shipping.txt").write_text("Standard shipping takes three to five working days.\n")
    return folder


def _run(container: Container, *args: str) -> Any:
    return runner.invoke(app, list(args), obj=container)


@pytest.mark.integration
def test_index_query_versions_round_trip(container: Container, kb: Path) -> None:
    indexed = _run(container, "index", str(kb), "--json")
    assert indexed.exit_code == 0, indexed.output
    report = json.loads(indexed.stdout)
    assert (report["collection"], report["documents"], report["swapped"]) == ("faq__v1", 2, True)

    answered = _run(container, "query", "How long do refunds take?", "--top-k", "2", "--json")
    assert answered.exit_code == 0, answered.output
    result = json.loads(answered.stdout)
    assert result["citations"][0]["doc_id"] == "refunds.md"
    assert "[1]" in result["answer"]
    assert container.query_log.get_query(result["query_id"]).index_version == "faq__v1"

    plain = _run(container, "query", "shipping time")
    assert plain.exit_code == 0, plain.output
    assert "[1] shipping.txt" in plain.stdout and "query_id=" in plain.stdout

    again = _run(container, "index", str(kb), "--json")
    assert json.loads(again.stdout)["embedded"] == 0

    listed = _run(container, "versions")
    assert listed.exit_code == 0, listed.output
    assert "faq__v1" in listed.stdout and "faq__v2" in listed.stdout and "<- live" in listed.stdout
    data = json.loads(_run(container, "versions", "--json").stdout)
    assert data["alias"] == "faq__v2"


@pytest.mark.integration
def test_index_of_a_deployed_corpus_switches_through_the_deployer(
    container: Container, kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flywheel.corpus
    from indexing.manager import correction_document

    assert _run(container, "index", str(kb)).exit_code == 0
    first = container.deployer.current()  # a deployment record now governs the corpus
    approved = correction_document(correction_id="c1", query_id="q1", text="Loyalty points expire after a year.")
    monkeypatch.setattr(flywheel.corpus, "approved_corrections", lambda c, corpus: [approved])
    (kb / "shipping.txt").write_text("Express shipping takes one working day.\n")
    again = _run(container, "index", str(kb), "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["collection"], report["swapped"], report["embedded"]) == ("faq__v2", True, 2)  # edit + correction
    assert container.deployer.current().live_collection == "faq__v2"
    texts = [p.payload["text"] for p in container.vector_store.scroll("faq__v2")]
    assert "Loyalty points expire after a year." in texts  # approved corrections survive, as in the reindex job
    assert container.deployer.reconcile() == []  # before, reconcile moved the alias back to faq__v1
    assert container.vector_store.get_alias("faq") == "faq__v2"
    container.deployer.rollback(reason="bad edit")
    assert container.vector_store.get_alias("faq") == first.live_collection == "faq__v1"


BAD_COMMANDS = [
    ("missing path", ["index", "/no/such/folder"], 2, "path does not exist: /no/such/folder"),
    ("no source", ["index"], 2, "give exactly one source"),
    ("two sources", ["index", ".", "--builtin", "faq"], 2, "give exactly one source"),
    ("unknown builtin", ["index", "--builtin", "wiki"], 2, "unknown built-in corpus 'wiki'"),
    ("bad corpus name", ["index", "--builtin", "faq", "--corpus", "Bad Name"], 2, "invalid corpus name"),
    ("malformed filter", ["query", "refund", "--filter", "category"], 2, "malformed --filter 'category'"),
    ("empty question", ["query", "   "], 2, "question must not be empty"),
    ("unindexed corpus", ["query", "refund"], 3, "unknown corpus 'faq'"),
    ("no versions", ["versions", "--corpus", "nothing"], 3, "no collection versions for corpus 'nothing'"),
    ("simulate noise", ["simulate", "--noise", "0.7"], 2, "noise must be in [0, 0.5)"),
    (
        "simulate unknown recipe key",
        ["simulate", "--training", '{"lr": 1}'],
        2,
        "unknown embedder training setting(s) lr; valid: batch_size",
    ),
    ("simulate bad recipe value", ["simulate", "--training", '{"epochs": 0}'], 2, "epochs must be >= 1"),
    ("simulate gate holdout", ["simulate", "--gate-holdout", "1.5"], 2, "gate_holdout_share must be in (0, 1)"),
    (
        "simulate bad teacher",
        ["simulate", "--training", '{"teacher": "/no/such/model"}'],
        2,
        "teacher must be 'mpnet' or a sentence-transformers model directory; got /no/such/model",
    ),
    ("simulate unknown lora key", ["simulate", "--sft", '{"lr": 1}'], 2, "unknown LoRA settings ['lr']"),
    ("simulate bad lora value", ["simulate", "--sft", '{"epochs": "two"}'], 2, "bad LoRA setting value"),
    ("simulate lora value too small", ["simulate", "--sft", '{"epochs": 0}'], 2, "LoRA epochs must be >= 1"),
    ("cycle mode", ["cycle", "--mode", "sideways"], 2, "mode must be one of promote, canary, shadow"),
    ("reindex source", ["reindex", "--source", "/no/such.jsonl"], 2, "outside the source roots"),
    ("eval candidate", ["eval", "--candidate", "nope"], 3, "no cycle or collection named 'nope'"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("case", "args", "code", "message"), BAD_COMMANDS, ids=[c[0] for c in BAD_COMMANDS])
def test_when_command_bad_then_exit_code_and_one_line(
    container: Container, case: str, args: list[str], code: int, message: str
) -> None:
    result = _run(container, *args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.integration
def test_reindex_command_runs_the_job_and_prints_its_result(container: Container, kb: Path) -> None:
    assert _run(container, "index", str(kb)).exit_code == 0
    (kb / "returns.md").write_text("# Returns\n\nReturns are free within 30 days.\n")
    result = _run(container, "reindex", "--source", str(kb), "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert (job["kind"], job["status"], job["step"]) == ("reindex", "succeeded", "switch")
    assert job["result"]["documents"] == 3 and job["result"]["embedded"] >= 1
    assert container.state_store.get_job(job["id"]).progress == 1.0


@pytest.mark.integration
def test_ctrl_c_during_a_cli_job_cancels_it_and_exits_130(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from flywheel.commands import loop as loop_commands
    from flywheel.jobs import JobContext, JobRunner

    started = threading.Event()

    def long_reindex(ctx: JobContext) -> dict[str, Any]:
        ctx.step("embed", progress=0.2)
        started.set()
        while True:
            ctx.reporter(0.2, 0.9, every_s=0)(1, 10)  # raises JobCancelled once cancelled
            threading.Event().wait(0.02)

    container.__dict__["job_runner"] = JobRunner(container.state_store, {"reindex": long_reindex})

    def interrupted(*_args: Any, **_kwargs: Any) -> None:
        assert started.wait(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_commands, "_follow", interrupted)
    result = _run(container, "reindex", "--json")
    assert result.exit_code == 130, result.output
    assert "cancelling reindex job" in result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "cancelled" and job["step"] == "embed"


@pytest.mark.integration
def test_when_jsonl_line_malformed_then_line_named(container: Container, tmp_path: Path) -> None:
    data = tmp_path / "kb.jsonl"
    data.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    result = _run(container, "index", str(data))
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "text" in result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("value", ["{not json", "[1, 2]"])
def test_when_simulate_training_is_not_a_json_object_then_usage_error(container: Container, value: str) -> None:
    result = _run(container, "simulate", "--training", value)
    assert result.exit_code == 2
    assert "--training" in result.output and "Traceback" not in result.output


@pytest.mark.integration
def test_when_top_k_out_of_range_then_usage_error(container: Container) -> None:
    result = _run(container, "query", "refund", "--top-k", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.unit
@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInputError("x"), 2),
        (NotEnoughDataError("x", have=1, need=2), 2),
        (NotFoundError("x"), 3),
        (ConflictError("x"), 4),
        (UnauthorizedError("x"), 5),
        (ForbiddenError("x"), 5),
        (UpstreamUnavailableError("x"), 6),
        (GateFailedError("x"), 7),
        (GuardrailViolationError("x"), 7),
        (StorageError("x"), 1),
        (RuntimeError("x"), 1),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


@pytest.mark.unit
def test_parse_filters() -> None:
    assert parse_filters([]) is None
    assert parse_filters(["category=billing", "lang=en", "lang=sv"]) == {"category": "billing", "lang": ["en", "sv"]}
    with pytest.raises(InvalidInputError):
        parse_filters(["=x"])


@pytest.mark.unit
def test_demo_threads_follow_the_cores_left_free(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import torch

    from flywheel.commands.demo import busy_cores, set_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    try:
        assert set_threads(None, busy=3.7) == 1  # other processes hold the cores: one thread, no spinning
        assert set_threads(None, busy=1.0) == 3
        assert set_threads(2, busy=3.9) == 2  # an explicit --threads wins
        assert 0.0 <= busy_cores(0.05) <= 4.0 + 1e-6
    finally:
        torch.set_num_threads(before)


@pytest.mark.integration
def test_when_the_bootstrap_admin_key_is_short_then_serve_refuses_to_start(tmp_path: Path) -> None:
    """A bootstrap key under 8 characters used to start a service that answered every request 422."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update(PYTHONPATH=str(REPO), FLYWHEEL_DATA_DIR=str(tmp_path / "data"))
    env["FLYWHEEL_AUTH__BOOTSTRAP_ADMIN_KEY"] = "short"
    cli = "import sys; from flywheel.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", cli, "serve", "--port", "8"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: invalid settings: auth.bootstrap_admin_key") and done.stderr.count("\n") == 1
    assert "at least 8 characters" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "service.json").exists()
