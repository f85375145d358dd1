"""The CLI beside a live ``flywheel serve``: every state command goes through the service's API.

One service subprocess (the worktree's code, via PYTHONPATH) on a 20-answer slice of the built-in FAQ serves the whole
module. The CLI runs in this process (``CliRunner``) with the same data dir, so it finds the service through the
address file ``{data_dir}/service.json`` — exactly what a cron line does. Before the service starts and after it stops
the same commands run in-process, and ``versions`` / ``models`` / ``jobs`` print the same thing both ways.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from flywheel.cli import app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "remote-cli-admin-key"
QUESTIONS = 20
SAME_OUTPUT = (("versions",), ("versions", "--json"), ("models",), ("models", "--json"), ("jobs",), ("jobs", "--json"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Live:
    """The module's data dir, its service subprocess and the CLI's environment."""

    def __init__(self, workdir: Path, faq: list[dict[str, Any]]) -> None:
        self.workdir, self.data_dir, self.port = workdir, workdir / "data", _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faq = faq[:QUESTIONS]
        self.gold = workdir / "gold.jsonl"
        self.env: dict[str, str | None] = {
            "FLYWHEEL_DATA_DIR": str(self.data_dir), "FLYWHEEL_AUTH__BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "FLYWHEEL_EVAL__GOLD_SET": str(self.gold), "FLYWHEEL_EVAL__MIN_SLICE_CASES": "2",
            "FLYWHEEL_DEPLOY__REINDEX_CRON": "", "FLYWHEEL_DEPLOY__CANARY_CHECK_CRON": "",
            "FLYWHEEL_INDEXING__SOURCE_ROOTS": json.dumps([str(workdir)]),  # reindex sources are confined
            "FLYWHEEL_URL": None, "FLYWHEEL_API_KEY": None, "FLYWHEEL_CONFIG": None,
        }  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, **env: str | None) -> Any:
        """Run the CLI in this process with the module's environment (plus ``env``)."""
        return CliRunner().invoke(app, list(args), env=self.env | env, catch_exceptions=False)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
        env |= {k: v for k, v in self.env.items() if v is not None}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 - the child process owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flywheel.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not (self.data_dir / "service.json").is_file():
            assert self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, f"no address file; log: {self.log()[-3000:]}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def log(self) -> str:
        return (self.workdir / "serve.log").read_text(encoding="utf-8", errors="replace")

    def jobs_seen_by_service(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/v1/jobs", headers={"X-API-Key": ADMIN_KEY}, timeout=10)
        assert response.status_code == 200, response.text
        return list(response.json())


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, faq: list[dict[str, Any]]) -> Iterator[Live]:
    """A data dir indexed in-process (faq__v1) with one registered model, then its service started."""
    from core.types import ModelKind
    from customization.registry import ModelRegistry

    svc = Live(tmp_path_factory.mktemp("remote-cli"), faq)
    docs = [{"id": e["id"], "text": e["a"]} for e in svc.faq]
    first = svc.cli("index", str(_write_jsonl(svc.workdir / "v1.jsonl", docs[:-1])), "--json")
    assert first.exit_code == 0, first.output
    _write_jsonl(svc.workdir / "v2.jsonl", docs)
    _write_jsonl(svc.gold, [{"id": f"g{n}", "question": e["q"], "relevant_doc_ids": [e["id"]]}
                            for n, e in enumerate(svc.faq)])  # fmt: skip
    artifacts = svc.workdir / "artifacts"
    artifacts.mkdir()
    (artifacts / "weights.txt").write_text("a stand-in artifact: only the registry entry is listed\n")
    ModelRegistry(svc.data_dir / "models").register(
        ModelKind.EMBEDDER, artifacts, config={"epochs": 1}, seed=42, metrics={"rows": 40, "train_seconds": 3.2}
    )
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def remote_outputs(live: Live) -> dict[str, str]:
    """What versions / models / jobs print through the service after a reindex (compared with in-process later)."""
    reindex = live.cli("reindex", "--source", str(live.workdir / "v2.jsonl"))
    assert reindex.exit_code == 0, reindex.output + reindex.stderr
    assert "reindex: succeeded" in reindex.stdout
    kinds = [j["kind"] for j in live.jobs_seen_by_service()]
    assert kinds == ["reindex"]  # the job ran in the service, not in the CLI's process
    outputs = {}
    for args in SAME_OUTPUT:
        result = live.cli(*args)
        assert result.exit_code == 0, result.output
        assert not result.stderr, result.stderr
        outputs[" ".join(args)] = result.stdout
    return outputs


def test_the_service_records_its_address_without_a_key(live: Live) -> None:
    record = json.loads((live.data_dir / "service.json").read_text())
    assert record["url"] == live.url and live.proc is not None and record["pid"] == live.proc.pid
    assert ADMIN_KEY not in json.dumps(record)


def test_read_commands_go_through_the_service(live: Live, remote_outputs: dict[str, str]) -> None:
    versions = json.loads(remote_outputs["versions --json"])
    assert versions["alias"] == "faq__v2" and [v["name"] for v in versions["versions"]] == ["faq__v1", "faq__v2"]
    assert "<- live" in remote_outputs["versions"]
    models = json.loads(remote_outputs["models --json"])
    assert [(m["kind"], m["version"], m["status"]) for m in models] == [("embedder", "v1", "candidate")]
    assert "embedder" in remote_outputs["models"] and "…" not in remote_outputs["models"]
    (job,) = json.loads(remote_outputs["jobs --json"])
    assert job["kind"] == "reindex" and job["status"] == "succeeded"
    one = live.cli("jobs", job["id"])
    assert one.exit_code == 0 and f"job {job['id']} reindex: succeeded" in one.stdout


def test_rollback_and_promote_go_through_the_service(live: Live, remote_outputs: dict[str, str]) -> None:
    back = live.cli("rollback", "--reason", "remote test")
    assert back.exit_code == 0, back.output
    assert back.stdout.startswith("live: faq__v1 ")
    forward = live.cli("promote", "faq__v2")
    assert forward.exit_code == 0, forward.output
    assert forward.stdout.startswith("promoted: faq__v2 ")
    no_canary = live.cli("promote")
    assert no_canary.exit_code == 2 and no_canary.stderr.startswith("error: no canary is running")


def test_query_lineage_and_curate_go_through_the_service(live: Live, remote_outputs: dict[str, str]) -> None:
    answered = live.cli("query", live.faq[0]["q"], "--top-k", "3", "--json")
    assert answered.exit_code == 0, answered.output
    result = json.loads(answered.stdout)
    assert result["index_version"] == "faq__v2" and result["citations"]
    recorded = httpx.get(f"{live.url}/v1/queries/{result['query_id']}", headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    assert recorded.status_code == 200  # recorded by the service, in its database
    lineage = live.cli("lineage", "collection", "faq__v2")
    assert lineage.exit_code == 0, lineage.output
    assert json.loads(lineage.stdout)["id"] == "faq__v2"
    curated = live.cli("curate", "--json")
    assert curated.exit_code in (0, 2), curated.output + curated.stderr
    if curated.exit_code == 0:
        assert json.loads(curated.stdout)["corpus"] == "faq"
    else:
        assert curated.stderr.startswith("error: ") and len(curated.stderr.splitlines()) == 1


def test_keys_go_through_the_service(live: Live) -> None:
    created = live.cli("keys", "create", "--role", "agent", "--name", "remote-test", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    asked = httpx.post(f"{live.url}/v1/query", json={"question": live.faq[1]["q"]}, headers={"X-API-Key": key["key"]},
                       timeout=30)  # fmt: skip
    assert asked.status_code == 200  # the service knows the key the CLI created
    listed = live.cli("keys", "list")
    assert key["id"] in listed.stdout
    as_agent = live.cli("versions", FLYWHEEL_API_KEY=key["key"])  # the service checks the role: reader needed
    assert as_agent.exit_code == 5 and as_agent.stderr.startswith("error: role agent may not do this")
    assert live.cli("keys", "revoke", key["id"]).exit_code == 0
    again = live.cli("keys", "revoke", key["id"])
    assert again.exit_code == 4 and again.stderr.startswith("error: ")


def test_eval_and_cycle_run_as_service_jobs(live: Live, remote_outputs: dict[str, str]) -> None:
    evaluated = live.cli("eval", "--candidate", "faq__v1", "--json")
    assert evaluated.exit_code == 0, evaluated.output + evaluated.stderr
    assert json.loads(evaluated.stdout)["status"] == "succeeded"
    cycle = live.cli("cycle", "--json")
    assert cycle.exit_code in (0, 1), cycle.output
    job = json.loads(cycle.stdout)
    assert "another process" not in (job["error"] or "") and job["status"] in ("succeeded", "skipped", "failed")
    kinds = [j["kind"] for j in live.jobs_seen_by_service()]
    assert kinds[:2] == ["cycle", "eval"]


@pytest.mark.parametrize(
    ("args", "hint"),
    [(("index", "."), "flywheel reindex --source PATH"), (("train", "embedder"), "flywheel cycle")],
)
def test_in_process_only_commands_refuse_beside_the_service(live: Live, args: tuple[str, ...], hint: str) -> None:
    result = live.cli(*args)
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith(f"error: the service at {live.url} owns this data dir's store")
    assert hint in result.stderr


@pytest.mark.parametrize(
    ("env", "code", "message"),
    [
        ({"FLYWHEEL_URL": "http://127.0.0.1:9"}, 6, "error: cannot reach the flywheel service at http://127.0.0.1:9"),
        ({"FLYWHEEL_API_KEY": "not-a-key"}, 5, "error: "),
    ],
)
def test_when_the_service_is_down_or_the_key_wrong_then_one_error_line(
    live: Live, env: dict[str, str], code: int, message: str
) -> None:
    result = live.cli("versions", **env)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output + result.stderr


def test_after_a_clean_stop_the_same_commands_print_the_same_in_process(live: Live) -> None:
    remote = {args: live.cli(*args) for args in SAME_OUTPUT}
    live.stop()
    assert not (live.data_dir / "service.json").exists()  # removed at the clean shutdown
    for args in SAME_OUTPUT:
        local = live.cli(*args)
        assert local.exit_code == remote[args].exit_code == 0, local.output + remote[args].output
        assert local.stdout == remote[args].stdout, args


def test_a_stale_address_file_falls_back_to_in_process_with_a_warning(live: Live) -> None:
    live.stop()
    (live.data_dir / "service.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 7}))
    result = live.cli("versions", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: stale service address file") and len(result.stderr.splitlines()) == 1
    assert json.loads(result.stdout)["alias"] == "faq__v2"
    assert not (live.data_dir / "service.json").exists()
