"""The ``flywheel`` command line: root typer app, error -> exit-code mapping, and index / query / serve / versions.

Exit codes (one line on stderr, never a traceback for a project error):
    0 ok · 1 unexpected error · 2 invalid input (incl. not enough data, bad settings) · 3 not found · 4 conflict ·
    5 unauthorized / forbidden · 6 upstream unavailable · 7 gate failed / guardrail violation

Extension point (for every engineer): put your commands in ``flywheel/commands/<name>.py`` exposing
``register(app: typer.Typer) -> None`` (add commands with ``@app.command()`` or a sub-app with ``app.add_typer``),
then add the module's dotted name to ``COMMANDS`` below (one line). Inside a command that reads or changes state, call
the operations through ``backend_of(ctx)`` (``ctx: typer.Context`` as first parameter): it is the data dir's running
service over HTTP when there is one, else this process (``flywheel.client``). ``container_of(ctx)`` gives the
in-process composition root for work that has no API. Keep heavy imports inside the function body.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pydantic
import typer
from typer.core import TyperGroup

from core.errors import (
    ConflictError,
    FlywheelError,
    ForbiddenError,
    GateFailedError,
    GuardrailViolationError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
    UpstreamUnavailableError,
)
from core.runtime import ensure_offline
from flywheel.container import Container
from flywheel.operations import check_corpus

if TYPE_CHECKING:
    from core.settings import Settings
    from flywheel.client import Backend

logger = logging.getLogger(__name__)

# One line per command module (each exposes ``register(app)``).
COMMANDS: tuple[str, ...] = (
    "flywheel.commands.loop",
    "flywheel.commands.demo",
    "flywheel.commands.curate",
    "flywheel.commands.keys",
    "flywheel.commands.train",
)

_EXIT_CODES: tuple[tuple[type[FlywheelError], int], ...] = (
    (InvalidInputError, 2),
    (NotFoundError, 3),
    (GateFailedError, 7),
    (GuardrailViolationError, 7),
    (ConflictError, 4),
    (UnauthorizedError, 5),
    (ForbiddenError, 5),
    (UpstreamUnavailableError, 6),
)


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code of an error (1 for anything that is not a mapped project error)."""
    if isinstance(exc, pydantic.ValidationError):
        return 2
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid settings: {where}: {first.get('msg')} ({exc.error_count()} error(s))"
    message = exc.message if isinstance(exc, FlywheelError) else str(exc)
    return " ".join(message.split())


class FlywheelGroup(TyperGroup):
    """Root click group that turns project errors into a one-line message and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; map ``FlywheelError`` / invalid settings to stderr + exit code (no traceback)."""
        try:
            return super().invoke(ctx)
        except (FlywheelError, pydantic.ValidationError) as exc:
            code = exit_code_for(exc)
            typer.echo(f"error: {_one_line(exc)}", err=True)
            logger.debug("command failed code=%d error=%s", code, type(exc).__name__, exc_info=exc)
            ctx.exit(code)


app = typer.Typer(
    cls=FlywheelGroup,
    name="flywheel",
    help="rag-flywheel: cited answers for support agents, and a loop that learns from their feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log INFO messages to stderr"),
) -> None:
    """Configure logging; the container is built on first use (``container_of``)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s")


def settings_of(ctx: click.Context) -> Settings:
    """The settings of this run: the container's (tests pass one as ``obj``), else loaded once (env, .env, toml)."""
    root = ctx.find_root()
    if isinstance(root.obj, Container):
        return root.obj.settings
    if "flywheel.settings" not in root.meta:
        from core.settings import Settings

        root.meta["flywheel.settings"] = Settings()
    settings: Settings = root.meta["flywheel.settings"]
    return settings


def container_of(ctx: click.Context) -> Container:
    """The process' composition root: the one passed as ``obj`` (tests), else built from the settings once."""
    root = ctx.find_root()
    if not isinstance(root.obj, Container):
        root.obj = Container(settings_of(ctx))
        root.call_on_close(root.obj.close)
    return root.obj


def backend_of(ctx: click.Context) -> Backend:
    """Where the command's work runs: the data dir's running service (or ``FLYWHEEL_URL``) over HTTP, else this
    process (see :mod:`flywheel.client`). A container passed as ``obj`` (tests) always means in-process."""
    from flywheel.client import LocalBackend, select_backend

    root = ctx.find_root()
    if "flywheel.backend" not in root.meta:
        if isinstance(root.obj, Container):
            backend: Backend = LocalBackend(root.obj)
        else:
            backend = select_backend(settings_of(ctx), lambda: container_of(ctx))
            close = getattr(backend, "close", None)
            if close is not None:
                root.call_on_close(close)
        root.meta["flywheel.backend"] = backend
    chosen: Backend = root.meta["flywheel.backend"]
    return chosen


def timestamp(value: datetime | None) -> str:
    """A record's time as shown in line listings (seconds, ISO 8601) or ``-``."""
    return value.isoformat(timespec="seconds") if value else "-"


def short_time(value: datetime | None) -> str:
    """A record's time in a table column: ``2026-12-01 16:05`` (minutes tell versions apart) or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def echo_json(data: Any) -> None:
    """Write one JSON document to stdout (the ``--json`` output of commands)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# ------------------------------------------------------------------------------------------------------ commands
def _corpus(container: Container, corpus: str | None) -> str:
    """The corpus to use: ``--corpus`` (validated like the setting) or ``settings.indexing.corpus``."""
    if corpus is None:
        return container.settings.indexing.corpus
    return check_corpus(corpus)


def _load_documents(
    container: Container, *, paths: list[Path], builtin: str | None, jsonl: bool, strict: bool
) -> tuple[list[Any], dict[str, Any]]:
    """Documents from exactly one kind of source: folders / files, a JSONL file, or a built-in corpus; plus the load
    report (``skipped``, ``skipped_files``: files that could not be read)."""
    from indexing import loaders

    clean: dict[str, Any] = {"skipped": 0, "skipped_files": []}
    if bool(paths) == (builtin is not None):
        raise InvalidInputError("give exactly one source: PATH [PATH ...] or --builtin faq", field="path")
    if builtin is not None:
        if builtin != "faq":
            raise InvalidInputError(f"unknown built-in corpus {builtin!r}; available: faq", field="builtin")
        return loaders.load_builtin_faq("en"), clean
    for path in paths:
        if not path.exists():
            raise InvalidInputError(f"path does not exist: {path}", field="path")
    max_bytes = container.settings.indexing.max_file_bytes
    if jsonl or any(p.suffix.lower() == ".jsonl" for p in paths):
        if len(paths) != 1 or not paths[0].is_file():
            raise InvalidInputError("--jsonl needs exactly one JSONL file", field="path")
        return loaders.load_jsonl(paths[0], max_file_bytes=max_bytes), clean
    result = loaders.load_paths(
        paths, max_file_bytes=max_bytes, strict=strict, source_base_url=container.settings.indexing.source_base_url
    )
    return result.documents, {k: v for k, v in result.summary().items() if k.startswith("skipped")}


def refuse_beside_service(ctx: click.Context, *, instead: str) -> None:
    """``ConflictError`` (exit 4) when a service owns the data dir's store, for in-process-only commands; ``instead``
    names what to run through the service."""
    from flywheel.client import running_service

    if isinstance(ctx.find_root().obj, Container):
        return
    url = running_service(settings_of(ctx))
    if url is not None:
        raise ConflictError(f"the service at {url} owns this data dir's store: {instead}, or stop the service first")


@app.command()
def index(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        None, help="folders or files (.md/.txt/.html/.pdf, also .gz), or one JSONL file", show_default=False
    ),
    builtin: str = typer.Option(None, "--builtin", help="index a built-in corpus instead: faq", show_default=False),
    corpus: str = typer.Option(None, "--corpus", help="corpus (alias) name; default settings.indexing.corpus"),
    jsonl: bool = typer.Option(False, "--jsonl", help="PATH is a JSONL file (id, text, metadata per line)"),
    strict: bool = typer.Option(False, "--strict", help="abort on the first file that cannot be read"),
    allow_shrink: bool = typer.Option(
        False, "--allow-shrink", help="accept a version that drops more than indexing.max_drop_share of the live docs"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Index documents into a new collection version and switch the corpus alias to it (incremental).

    Files that cannot be read (binary, undecodable, empty, broken PDF or gzip, symlink loop, over
    indexing.max_file_bytes) are skipped and listed; --strict aborts instead.
    """
    from rich.console import Console

    refuse_beside_service(ctx, instead="run `flywheel reindex --source PATH` (it indexes through the service)")
    container = container_of(ctx)
    name = _corpus(container, corpus)
    console = Console(stderr=True)
    with console.status("loading documents"):
        documents, loaded = _load_documents(
            container, paths=list(paths or []), builtin=builtin, jsonl=jsonl, strict=strict
        )
    for bad in loaded["skipped_files"]:
        console.print(f"skipped {bad['path']}: {bad['reason']}", markup=False)
    if not documents:
        raise InvalidInputError(f"no indexable documents found in {', '.join(map(str, paths or []))}", field="path")
    console.print(f"loaded {len(documents)} documents, skipped {loaded['skipped']}; writing corpus {name!r}")
    if name == container.settings.indexing.corpus and container.state_store.current_deployment(name) is not None:
        # the corpus is under deployment records: switch through the deployer, or the next reconcile undoes it;
        # approved corrections are passed back, as the reindex job does, so they survive
        from flywheel.corpus import approved_corrections
        from flywheel.loop import switch_to_new_version

        documents = documents + approved_corrections(container.feedback_store, name)
        result, _record = switch_to_new_version(
            container, documents, note="flywheel index", show_progress=True, allow_shrink=allow_shrink
        )
    else:
        result = container.index_manager.reindex(
            name, documents, embedder=container.embedder, show_progress=True, allow_shrink=allow_shrink
        )
    summary = {**_as_dict(result), **loaded}
    if as_json:
        echo_json(summary)
        return
    typer.echo(" ".join(f"{k}={v}" for k, v in summary.items() if k != "skipped_files"))


@app.command()
def query(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="the question"),
    top_k: int = typer.Option(5, "--top-k", min=1, max=50, help="passages to retrieve and cite"),
    filters: list[str] = typer.Option([], "--filter", help="metadata filter key=value (repeat; same key: any of)"),
    corpus: str = typer.Option(None, "--corpus", help="corpus (alias) name; default settings.indexing.corpus"),
    as_json: bool = typer.Option(False, "--json", help="print the full result as JSON"),
) -> None:
    """Answer a question from the live index, with cited passages (the query is recorded)."""
    parsed = parse_filters(filters)
    result = backend_of(ctx).query(question, top_k=top_k, filters=parsed, corpus=corpus)
    if as_json:
        echo_json(result)
        return
    typer.echo(result["answer"])
    typer.echo("")
    for n, citation in enumerate(result["citations"], start=1):
        snippet = " ".join(citation["text"].split())[:160]
        typer.echo(f"[{n}] {citation['doc_id']} score={citation['score']:.3f}  {snippet}")
    typer.echo(f"query_id={result['query_id']} index={result['index_version']} embedder={result['embedder_version']}")


def parse_filters(items: list[str]) -> dict[str, Any] | None:
    """``["category=billing", "lang=en", "lang=sv"]`` -> ``{"category": "billing", "lang": ["en", "sv"]}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInputError(f"malformed --filter {item!r}: expected key=value", field="filter")
        key, value = key.strip(), value.strip()
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out or None


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", help="bind address; default settings.server.host"),
    port: int = typer.Option(None, "--port", min=1, max=65535, help="port; default settings.server.port"),
) -> None:
    """Run the HTTP API (uvicorn); models load once at start-up. OpenAPI UI at /docs.

    While it listens, ``{data_dir}/service.json`` records its address (no key) so that the CLI and cron lines for the
    same data dir become its clients instead of opening the store a second time; removed at a clean shutdown."""
    import uvicorn

    from flywheel.client import serve_announced

    settings = settings_of(ctx)
    # The API package is the top layer above ``flywheel``: uvicorn imports its factory by name.
    config = uvicorn.Config(
        "api.app:app_from_env",
        factory=True,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
    )
    serve_announced(config, data_dir=settings.data_dir)


@app.command()
def versions(
    ctx: typer.Context,
    corpus: str = typer.Option(None, "--corpus", help="corpus (alias) name; default settings.indexing.corpus"),
    as_json: bool = typer.Option(False, "--json", help="print the versions as JSON"),
) -> None:
    """List a corpus' collection versions and which one its alias points to."""
    from rich.console import Console
    from rich.table import Table

    data = backend_of(ctx).versions(corpus)
    if as_json:
        echo_json(data)
        return
    table = Table(title=f"corpus {data['corpus']!r}", box=None, padding=(0, 1), collapse_padding=True)
    for column in ("collection", "version", "points", "dim", "embedder", "created (UTC)", "alias"):
        table.add_column(column, no_wrap=True)
    for info in data["versions"]:
        table.add_row(
            info["name"], str(info["version"]), str(info["points"]), str(info["dim"]),
            info["embedder_version"] or "-", short_time(info["created_at"]),
            "<- live" if info["name"] == data["alias"] else "",
        )  # fmt: skip
    Console().print(table)


def _as_dict(obj: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return obj
    return {"result": obj}


def _register_commands() -> None:
    import importlib

    for name in COMMANDS:
        importlib.import_module(name).register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: offline guard first, then the typer app (exit codes as documented above)."""
    ensure_offline()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="flywheel")


__all__ = ["COMMANDS", "app", "backend_of", "container_of", "echo_json", "exit_code_for", "main",
           "refuse_beside_service", "settings_of", "short_time", "timestamp"]  # fmt: skip


if __name__ == "__main__":  # ``python -m flywheel.cli`` (tests run the worktree's code this way)
    main()
