"""The operations layer: every use case the API routers and the CLI share, on one composition root.

Each method takes plain arguments, does the work on the container's services and returns JSON-shaped data (dicts,
lists, strings, numbers; datetimes stay ``datetime``), so that an API router only turns it into its response schema and
a CLI command only prints it. The CLI reaches these methods either in-process (:class:`flywheel.client.LocalBackend`)
or through the service's HTTP API (:class:`flywheel.client_remote.RemoteBackend`), with the same results and errors.

Errors are :mod:`core.errors` (the API maps them to problem+json, the CLI to exit codes).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from core.errors import ConflictError, InvalidInputError

if TYPE_CHECKING:
    from flywheel.container import Container
    from flywheel.deploy import Candidate

_CORPUS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_corpus(corpus: str) -> str:
    """``corpus`` if it is a valid corpus (alias) name, else ``InvalidInputError`` (field ``corpus``)."""
    if not _CORPUS_RE.fullmatch(corpus) or "__" in corpus:
        raise InvalidInputError(
            f"invalid corpus name {corpus!r}: lowercase letters, digits, '-' and '_' (no '__', max 63)", field="corpus"
        )
    return corpus


def job_dict(job: Any) -> dict[str, Any]:
    """A :class:`flywheel.state.JobRecord` as a dict (status as its string value)."""
    return dataclasses.asdict(job) | {"status": job.status.value}


def deployment_dict(record: Any) -> dict[str, Any]:
    """A :class:`flywheel.state.DeploymentRecord` as a dict (without its bookkeeping ``updated_at``)."""
    return {k: v for k, v in dataclasses.asdict(record).items() if k != "updated_at"}


def model_dict(version: Any) -> dict[str, Any]:
    """A registered :class:`core.types.ModelVersion` as a dict, without its on-disk path."""
    data = {k: v for k, v in dataclasses.asdict(version).items() if k != "path"}
    return data | {"kind": version.kind.value, "status": version.status.value}


def key_dict(record: Any) -> dict[str, Any]:
    """An API key record (never the raw key nor its hash)."""
    return {"id": record.id, "name": record.name, "role": record.role.value, "created_at": record.created_at,
            "revoked_at": record.revoked_at}  # fmt: skip


def await_recorded_queries(container: Container) -> None:
    """Wait until every query answered so far is persisted by the background recorder (milliseconds; nothing to wait
    for when none is pending): feedback or a look-up may name a query answered a moment ago."""
    if container.is_built("query_recorder"):
        container.query_recorder.flush()


class Operations:
    """The use cases on one container (the service's, or the CLI's own when no service runs)."""

    def __init__(self, container: Container) -> None:
        self.container = container

    # ------------------------------------------------------------------------------------------------ read
    def versions(self, corpus: str | None = None) -> dict[str, Any]:
        """A corpus' complete collection versions and the one its alias points to (``NotFoundError`` if none)."""
        from core.errors import NotFoundError

        c = self.container
        name = check_corpus(corpus) if corpus else c.settings.indexing.corpus
        infos = c.index_manager.versions(name)
        if not infos:
            raise NotFoundError(f"no collection versions for corpus {name!r}: run `flywheel index`", corpus=name)
        versions = [dataclasses.asdict(i) for i in infos]
        return {"corpus": name, "alias": c.vector_store.get_alias(name), "versions": versions}

    def models(self, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Registered model versions (by kind, oldest first); ``kind`` / ``status`` filter (bad value: 422 / exit 2)."""
        from core.types import ModelKind, ModelStatus

        registry = self.container.registry
        found = registry.list(_enum(ModelKind, kind, "kind"), status=_enum(ModelStatus, status, "status"))
        return [model_dict(v) for v in found]

    def model(self, kind: str, version: str) -> dict[str, Any]:
        """One registered version (``NotFoundError`` if unknown)."""
        from core.types import ModelKind

        return model_dict(self.container.registry.get(_enum(ModelKind, kind, "kind"), version))

    def jobs(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent jobs, newest first."""
        return [job_dict(j) for j in self.container.state_store.list_jobs(kind=kind, limit=limit)]

    def job(self, job_id: str) -> dict[str, Any]:
        """One job (``NotFoundError`` if unknown)."""
        return job_dict(self.container.state_store.get_job(job_id))

    def lineage(self, kind: str, node_id: str, *, depth: int = 8) -> dict[str, Any]:
        """What a node came from and what it fed (``NotFoundError`` when nothing is recorded for it)."""
        result: dict[str, Any] = self.container.lineage.trace(kind, node_id, depth=depth).to_json()
        return result

    def deployment(self) -> dict[str, Any]:
        """The active deployment (live collection, model versions, previous, canary)."""
        return deployment_dict(self.container.deployer.current())

    # ------------------------------------------------------------------------------------------------ jobs
    def submit_job(self, kind: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue a job (``reindex | cycle | curate | eval``) in this process; params are checked now (422 / 404)."""
        return job_dict(self.container.job_runner.submit(kind, params or {}))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Ask a job to stop at its next step or progress report (``ConflictError`` if it already ended)."""
        return job_dict(self.container.job_runner.cancel(job_id))

    # ------------------------------------------------------------------------------------------------ deploy
    def promote(
        self, candidate: str | None = None, *, force: bool = False, reason: str | None = None, actor: str
    ) -> dict[str, Any]:
        """Make a candidate live: a cycle id or collection, or by default the running canary.

        Raises ``InvalidInputError`` when no candidate is named and no canary runs, ``NotFoundError`` for an unknown
        one, ``GateFailedError`` for a gate-failed candidate without ``force`` (and a ``reason``)."""
        c = self.container
        c.deployer.reconcile()
        cand = self._resolve(candidate) if candidate else self._running_canary()
        return deployment_dict(c.deployer.promote(cand, force=force, reason=reason, actor=actor))

    def _resolve(self, ref: str) -> Candidate:
        from flywheel.loop import resolve_candidate

        cand: Candidate = resolve_candidate(self.container, ref)
        return cand

    def _running_canary(self) -> Candidate:
        from flywheel.deploy import Candidate

        canary = self.container.deployer.current().canary
        if not canary:
            raise InvalidInputError("no canary is running: name a cycle id or collection", field="candidate")
        return Candidate(canary["collection"], canary["models"], canary.get("cycle_id"), gate_passed=True)

    def rollback(self, *, reason: str = "manual rollback") -> dict[str, Any]:
        """End a running canary, else restore the previous alias target and model versions in one step."""
        c = self.container
        c.deployer.reconcile()
        return deployment_dict(c.deployer.rollback(reason=reason))

    def override_gate(self, cycle_id: str, *, admin: str, reason: str) -> dict[str, Any]:
        """Record an admin override of a cycle's failed gate verdict (``ConflictError`` if it has no verdict)."""
        from core.types import GateVerdict
        from evals.gate import override, verdict_to_dict

        state = self.container.state_store
        cycle = state.get_cycle(cycle_id)
        if not cycle.gate_verdict:
            raise ConflictError(f"cycle {cycle_id} has no gate verdict to override ({cycle.status})", cycle_id=cycle_id)
        keys = ("passed", "reasons", "rows", "overridden_by", "override_reason")
        fields: dict[str, Any] = {k: cycle.gate_verdict.get(k) for k in keys}
        verdict = verdict_to_dict(override(GateVerdict(**fields), admin=admin, reason=reason))
        state.update_cycle(cycle_id, gate_verdict=verdict)
        return verdict

    # ------------------------------------------------------------------------------------------------ keys
    def create_key(self, role: str, *, name: str) -> dict[str, Any]:
        """Create an API key; the result carries the raw ``key`` (shown once, only its hash is stored)."""
        record, raw = self.container.api_keys.create(role, name=name)
        return key_dict(record) | {"key": raw}

    def list_keys(self) -> list[dict[str, Any]]:
        """Every key (id, name, role, created, revoked); no raw keys."""
        return [key_dict(r) for r in self.container.api_keys.list()]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key (``NotFoundError`` unknown, ``ConflictError`` already revoked)."""
        return key_dict(self.container.api_keys.revoke(key_id))

    # ------------------------------------------------------------------------------------------------ query / data
    def query(
        self, question: str, *, top_k: int, filters: dict[str, Any] | None = None, corpus: str | None = None,
        user_id: str | None = None, tenant: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Answer a question from the live index (recorded, PII-scrubbed); another ``corpus`` skips canary routing."""
        c = self.container
        if corpus is None or corpus == c.settings.indexing.corpus:
            result = c.router.answer(question, top_k=top_k, filters=filters, user_id=user_id, tenant=tenant)
        else:
            service = c.build_query_service(embedder=c.embedder, generator=c.generator, corpus=check_corpus(corpus))
            result = service.answer(question, top_k=top_k, filters=filters, user_id=user_id, tenant=tenant)
        data: dict[str, Any] = result.to_dict()
        return data

    def recorded_query(self, query_id: str) -> dict[str, Any]:
        """A recorded query (question and answer as scrubbed); one answered a moment ago is waited for.
        ``NotFoundError`` for an unknown id."""
        await_recorded_queries(self.container)
        record = self.container.query_log.get_query(query_id)
        data = dataclasses.asdict(record)
        return {"query_id": data.pop("id"), **data, "arm": str(record.arm)}

    def curate(
        self, *, corpus: str | None = None, holdout_share: float | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Curate the consented feedback into new dataset versions; the report lists what was written or refused.

        A dataset refused for residual PII is in the report's ``refused`` (the caller decides how to surface it)."""
        from core.datasets import DatasetRepository
        from feedback.curation import Curator

        c = self.container
        if holdout_share is not None and not 0.0 < holdout_share < 1.0:
            raise InvalidInputError("holdout_share must be strictly between 0 and 1", field="holdout_share")
        curator = Curator(c.feedback_store, DatasetRepository(c.settings.datasets_dir), scrubber=c.scrubber,
                          embedder=c.embedder, passages=c.passage_index)  # fmt: skip
        report = curator.curate(
            check_corpus(corpus) if corpus else c.settings.indexing.corpus,
            holdout_share=holdout_share if holdout_share is not None else c.settings.eval.holdout_share,
            seed=seed if seed is not None else c.settings.training.seed,
        )
        data: dict[str, Any] = report.as_dict()
        return data


def _enum(enum: Any, value: str | None, field: str) -> Any:
    """``enum(value)``, None for None, ``InvalidInputError`` naming the choices for an unknown value."""
    try:
        return enum(value) if value is not None else None
    except ValueError:
        choices = ", ".join(e.value for e in enum)
        raise InvalidInputError(f"{field} must be one of {choices}; got {value!r}", field=field) from None


__all__ = [
    "Operations",
    "await_recorded_queries",
    "check_corpus",
    "deployment_dict",
    "job_dict",
    "key_dict",
    "model_dict",
]
