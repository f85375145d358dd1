"""The ``flywheel`` command line: root typer app, error -> exit-code mapping, and index / query / serve / versions.

Exit codes (one line on stderr, never a traceback for a project error):
    0 ok · 1 unexpected error · 2 invalid input (incl. not enough data, bad settings) · 3 not found · 4 conflict ·
    5 unauthorized / forbidden · 6 upstream unavailable · 7 gate failed / guardrail violation

Extension point (for every engineer): put your commands in ``flywheel/commands/<name>.py`` exposing
``register(app: typer.Typer) -> None`` (add commands with ``@app.command()`` or a sub-app with ``app.add_typer``),
then add the module's dotted name to ``COMMANDS`` below (one line). Inside a command, get the composition root with
``container_of(ctx)`` (``ctx: typer.Context`` as first parameter) and keep heavy imports inside the function body.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

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

logger = logging.getLogger(__name__)

_CORPUS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

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


def container_of(ctx: click.Context) -> Container:
    """The process' composition root: the one passed as ``obj`` (tests), else built from the environment once."""
    root = ctx.find_root()
    if not isinstance(root.obj, Container):
        from core.settings import Settings

        root.obj = Container(Settings())
        root.call_on_close(root.obj.close)
    return root.obj


def echo_json(data: Any) -> None:
    """Write one JSON document to stdout (the ``--json`` output of commands)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# ------------------------------------------------------------------------------------------------------ commands
def _corpus(container: Container, corpus: str | None) -> str:
    """The corpus to use: ``--corpus`` (validated like the setting) or ``settings.indexing.corpus``."""
    if corpus is None:
        return container.settings.indexing.corpus
    if not _CORPUS_RE.fullmatch(corpus) or "__" in corpus:
        raise InvalidInputError(
            f"invalid corpus name {corpus!r}: lowercase letters, digits, '-' and '_' (no '__', max 63)", field="corpus"
        )
    return corpus


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
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Index documents into a new collection version and switch the corpus alias to it (incremental).

    Files that cannot be read (binary, undecodable, empty, broken PDF or gzip, symlink loop, over
    indexing.max_file_bytes) are skipped and listed; --strict aborts instead.
    """
    from rich.console import Console

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

        documents = documents + approved_corrections(container, name)
        result, _record = switch_to_new_version(container, documents, note="flywheel index", show_progress=True)
    else:
        result = container.index_manager.reindex(name, documents, embedder=container.embedder, show_progress=True)
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
    container = container_of(ctx)
    parsed = parse_filters(filters)
    if corpus is None or corpus == container.settings.indexing.corpus:
        result = container.router.answer(question, top_k=top_k, filters=parsed, user_id=None, tenant=None)
    else:
        service = container.build_query_service(
            embedder=container.embedder, generator=container.generator, corpus=_corpus(container, corpus)
        )
        result = service.answer(question, top_k=top_k, filters=parsed, user_id=None, tenant=None)
    if as_json:
        echo_json(result.to_dict())
        return
    typer.echo(result.answer)
    typer.echo("")
    for n, citation in enumerate(result.citations, start=1):
        snippet = " ".join(citation.text.split())[:160]
        typer.echo(f"[{n}] {citation.doc_id} score={citation.score:.3f}  {snippet}")
    typer.echo(f"query_id={result.query_id} index={result.index_version} embedder={result.embedder_version}")


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
    """Run the HTTP API (uvicorn); models load once at start-up. OpenAPI UI at /docs."""
    import uvicorn

    settings = container_of(ctx).settings
    # The API package is the top layer above ``flywheel``: uvicorn imports its factory by name.
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
    )


@app.command()
def versions(
    ctx: typer.Context,
    corpus: str = typer.Option(None, "--corpus", help="corpus (alias) name; default settings.indexing.corpus"),
    as_json: bool = typer.Option(False, "--json", help="print the versions as JSON"),
) -> None:
    """List a corpus' collection versions and which one its alias points to."""
    from rich.console import Console
    from rich.table import Table

    container = container_of(ctx)
    name = _corpus(container, corpus)
    infos = container.index_manager.versions(name)
    if not infos:
        raise NotFoundError(f"no collection versions for corpus {name!r}: run `flywheel index`", corpus=name)
    live = container.vector_store.get_alias(name)
    if as_json:
        echo_json({"corpus": name, "alias": live, "versions": [_as_dict(i) for i in infos]})
        return
    table = Table(title=f"corpus {name!r}")
    for column in ("collection", "version", "points", "dim", "embedder", "created", "alias"):
        table.add_column(column)
    for info in infos:
        created = info.created_at.isoformat(timespec="seconds") if info.created_at else "-"
        table.add_row(
            info.name,
            str(info.version),
            str(info.points),
            str(info.dim),
            info.embedder_version or "-",
            created,
            "<- live" if info.name == live else "",
        )
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


__all__ = ["COMMANDS", "app", "container_of", "echo_json", "exit_code_for", "main"]
