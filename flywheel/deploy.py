"""Blue/green deployment with canary and shadow modes, driven by the deployment records of :mod:`flywheel.state`.

The newest ``active`` deployment record of a corpus is the single source of truth for what serves queries: the live
collection (what the alias ``{corpus}`` points to) and the model versions (embedder, reranker, generator adapter; the
registry's active pointers mirror them). Changes follow one order, and the record is written LAST (the commit point):

1. load the new arm (embedder etc.) — nothing has changed yet;
2. move the alias, 3. activate the model versions in the registry, 4. write the deployment record,
5. switch the in-process router to the new arm.

A process killed between 2 and 4 leaves the alias or the registry ahead of the record; :meth:`Deployer.reconcile`
(run at start-up and before every cycle) moves them back to what the record says, so queries answer from the last
good version. ``promote`` of a candidate whose cycle failed the gate raises ``GateFailedError`` unless forced with a
reason (recorded with the cycle's verdict). ``rollback`` restores the previous deployment — alias target and model
versions — in one step. A canary routes a sticky share of users to the candidate (``retrieval.routing``), and
:meth:`Deployer.evaluate_canary` compares the arms' feedback (:mod:`flywheel.online`) to promote or roll back.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConflictError, GateFailedError, InvalidInputError, NotFoundError
from core.ports import FeedbackStore, VectorStore
from core.types import ModelKind, utcnow
from flywheel.jobs import EXCLUSIVE_KINDS
from flywheel.lineage import Lineage, model_node
from flywheel.online import CanaryDecision, decide, tally
from flywheel.state import ACTIVE_JOB_STATUSES, DeploymentRecord, StateStore, new_id

logger = logging.getLogger(__name__)

MODEL_KINDS = (ModelKind.EMBEDDER, ModelKind.RERANKER, ModelKind.GENERATOR_ADAPTER)
BASE = "base"


@dataclass(slots=True)
class Candidate:
    """What a cycle proposes: a collection built with the candidate embedder and model versions by kind
    (``None``/``"base"``: the packaged base model)."""

    collection: str
    models: dict[str, str | None] = field(default_factory=dict)
    cycle_id: str | None = None
    gate_passed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form stored in deployment / cycle records."""
        return {"collection": self.collection, "models": dict(self.models), "cycle_id": self.cycle_id}


# (models by kind, collection or None for the alias) -> a query service arm
ArmFactory = Callable[[dict[str, str | None], "str | None"], Any]


class Deployer:
    """Moves the live alias and active model versions; runs canaries. One per corpus per process.

    Args:
        state: loop state store (deployment records, cycles).
        store: the vector store (alias swaps).
        registry: the model registry (``activate`` / ``deactivate`` / ``active``).
        corpus: the corpus alias this deployer manages.
        arm_factory: builds a query-service arm for given models and collection (``None``: follow the alias).
        router: the process' ``DeploymentRouter`` (``configure``), or ``None`` in a process that serves no queries.
        feedback: the feedback store (canary comparison).
        lineage: lineage recorder.
        min_feedback: canary horizon (rated answers per arm).
        on_applied: called with the new current arm after a switch (the container adopts it).
    """

    def __init__(
        self,
        *,
        state: StateStore,
        store: VectorStore,
        registry: Any,
        corpus: str,
        arm_factory: ArmFactory,
        router: Any | None,
        feedback: FeedbackStore | None,
        lineage: Lineage,
        min_feedback: int = 50,
        on_applied: Callable[[Any], None] | None = None,
    ) -> None:
        self.state, self.store, self.registry, self.corpus = state, store, registry, corpus
        self.arm_factory, self.router, self.feedback, self.lineage = arm_factory, router, feedback, lineage
        self.min_feedback = min_feedback
        self.on_applied = on_applied

    # ------------------------------------------------------------------------------------------- reading
    def registry_models(self) -> dict[str, str | None]:
        """Active registry version per model kind (``None``: base)."""
        out: dict[str, str | None] = {}
        for kind in MODEL_KINDS:
            active = self.registry.active(kind)
            out[kind.value] = active.version if active is not None else None
        return out

    def current(self) -> DeploymentRecord:
        """The active deployment; the first call records a baseline from the alias and the registry.
        Raises ``NotFoundError`` when the corpus has never been indexed."""
        record = self.state.current_deployment(self.corpus)
        if record is not None:
            return record
        live = self.store.get_alias(self.corpus)
        if live is None:
            raise NotFoundError(
                f"corpus {self.corpus!r} has no live collection: run `flywheel index`", corpus=self.corpus
            )
        baseline = DeploymentRecord(new_id(), self.corpus, "active", live, self.registry_models(), note="baseline")
        return self.state.record_deployment(baseline)

    def collections_in_use(self) -> set[str]:
        """Collections that serve or may serve again: the alias target, the active deployment's live collection, its
        rollback target and a running canary's (none of them may be dropped by cleanup or pruning)."""
        names = {self.store.get_alias(self.corpus)}
        record = self.state.current_deployment(self.corpus)
        if record is not None:
            names |= {record.live_collection, (record.previous or {}).get("collection")}
            names |= {(record.canary or {}).get("collection")}
        return {n for n in names if n}

    def reconcile(self) -> list[str]:
        """Make the alias and the registry agree with the active record (after a crash mid-change).
        Returns what was repaired (empty when consistent); no record yet: nothing to do."""
        record = self.state.current_deployment(self.corpus)
        if record is None:
            return []
        fixed: list[str] = []
        live = self.store.get_alias(self.corpus)
        if record.live_collection and live != record.live_collection:
            self.store.set_alias(self.corpus, record.live_collection)
            fixed.append(f"alias {self.corpus}: {live} -> {record.live_collection}")
        have = self.registry_models()
        for kind, version in record.models.items():
            if have.get(kind) != version:
                self._activate(ModelKind(kind), version)
                fixed.append(f"{kind}: {have.get(kind)} -> {version or BASE}")
        for line in fixed:
            logger.warning("deployment reconciled corpus=%s fix=%s", self.corpus, line)
        return fixed

    # ------------------------------------------------------------------------------------------- changing
    def promote(
        self, candidate: Candidate, *, force: bool = False, reason: str | None = None, actor: str | None = None
    ) -> DeploymentRecord:
        """Make ``candidate`` live (blue/green switch). Raises ``GateFailedError`` for a gate-failed candidate
        unless ``force`` with a ``reason`` (``InvalidInputError`` when forced without one)."""
        self._check_gate(candidate, force=force, reason=reason, actor=actor)
        if not self.store.collection_exists(candidate.collection):
            raise NotFoundError(
                f"candidate collection {candidate.collection} does not exist", collection=candidate.collection
            )
        current = self.current()
        arm = self.arm_factory(candidate.models, None)
        note = f"promoted by {actor}: {reason}" if force else "promoted"
        record = DeploymentRecord(
            new_id(), self.corpus, "active", candidate.collection, dict(candidate.models),
            previous={"deployment_id": current.id, "collection": current.live_collection, "models": current.models},
            cycle_id=candidate.cycle_id, note=note,
        )  # fmt: skip
        self._apply(record, arm)
        self._link(record)
        return record

    def switch_collection(self, collection: str, *, note: str) -> DeploymentRecord:
        """Serve a new collection built with the CURRENT models (the nightly reindex); rollback-able like a promote."""
        current = self.current()
        arm = self.arm_factory(current.models, None)
        record = DeploymentRecord(
            new_id(), self.corpus, "active", collection, dict(current.models),
            previous={"deployment_id": current.id, "collection": current.live_collection, "models": current.models},
            canary=current.canary, note=note,
        )  # fmt: skip
        self._apply(record, arm, keep_canary=True)
        return record

    def rollback(self, *, reason: str = "manual rollback") -> DeploymentRecord:
        """End a running canary, or else restore the previous deployment (alias + model versions) in one step.
        Raises ``ConflictError`` when there is nothing to roll back to."""
        current = self.current()
        if current.canary:
            self.end_canary(reason=reason)
            return self.state.get_deployment(current.id)
        if not current.previous or not current.previous.get("deployment_id"):
            raise ConflictError(f"corpus {self.corpus!r} has no previous deployment to roll back to")
        target = self.state.get_deployment(current.previous["deployment_id"])
        if not target.live_collection or not self.store.collection_exists(target.live_collection):
            raise NotFoundError(f"rollback target collection {target.live_collection} no longer exists")
        arm = self.arm_factory(target.models, None)
        record = DeploymentRecord(
            new_id(), self.corpus, "active", target.live_collection, dict(target.models),
            previous=target.previous, cycle_id=target.cycle_id, note=f"rollback of {current.id}: {reason}",
        )  # fmt: skip
        self._apply(record, arm)
        self.state.update_deployment(current.id, status="rolled_back")
        return record

    def _apply(self, record: DeploymentRecord, arm: Any, *, keep_canary: bool = False) -> None:
        assert record.live_collection is not None
        self.store.set_alias(self.corpus, record.live_collection)
        for kind, version in record.models.items():
            self._activate(ModelKind(kind), version)
        self.state.record_deployment(record)  # commit point
        if self.router is not None:
            self.router.configure(current=arm, clear_candidate=not keep_canary)
        if self.on_applied is not None:
            self.on_applied(arm)
        logger.info("deployment applied corpus=%s collection=%s id=%s", self.corpus, record.live_collection, record.id)

    def _activate(self, kind: ModelKind, version: str | None) -> None:
        if version in (None, BASE):
            self.registry.deactivate(kind)
        else:
            self.registry.activate(kind, version)

    def _check_gate(self, candidate: Candidate, *, force: bool, reason: str | None, actor: str | None) -> None:
        if candidate.gate_passed is not False:
            return
        if not force:
            raise GateFailedError(
                "the candidate failed the regression gate; promote with --force and a reason to override",
                cycle_id=candidate.cycle_id,
            )
        if not reason or not reason.strip():
            raise InvalidInputError("a forced promotion needs a reason", field="reason")
        if candidate.cycle_id:
            cycle = self.state.get_cycle(candidate.cycle_id)
            verdict = dict(cycle.gate_verdict or {})
            verdict |= {"overridden_by": actor or "unknown", "override_reason": reason.strip()}
            self.state.update_cycle(candidate.cycle_id, gate_verdict=verdict)
        logger.warning("gate overridden cycle_id=%s actor=%s", candidate.cycle_id, actor)

    def _link(self, record: DeploymentRecord) -> None:
        sources = [("collection", record.live_collection or "")]
        sources += [("model", model_node(k, v)) for k, v in record.models.items() if v not in (None, BASE)]
        if record.cycle_id:
            sources.append(("cycle", record.cycle_id))
        self.lineage.link_many(sources, "deployment", record.id, relation="deployed")

    # --------------------------------------------------------------------------------------------- canary
    def start_canary(self, candidate: Candidate, *, mode: str, share: float) -> DeploymentRecord:
        """Route ``share`` of users (sticky) to the candidate (``canary``) or mirror every query (``shadow``).
        The gate must have passed. Raises ``ConflictError`` when a canary is already running."""
        if mode not in ("canary", "shadow"):
            raise InvalidInputError(f"canary mode must be 'canary' or 'shadow', got {mode!r}", field="mode")
        self._check_gate(candidate, force=False, reason=None, actor=None)
        current = self.current()
        if current.canary:
            raise ConflictError("a canary is already running; promote or roll it back first", deployment_id=current.id)
        salt = secrets.token_hex(4)
        canary = candidate.to_json() | {"mode": mode, "share": share, "salt": salt, "started_at": utcnow().isoformat()}
        self.state.update_deployment(current.id, canary=canary)
        self.attach_canary(canary)
        return self.state.get_deployment(current.id)

    def attach_canary(self, canary: dict[str, Any]) -> None:
        """Configure the in-process router with the canary arm (also used at start-up from the record)."""
        if self.router is None:
            return
        arm = self.arm_factory(canary["models"], canary["collection"])
        self.router.configure(candidate=arm, mode=canary["mode"], canary_share=canary["share"], salt=canary["salt"])

    def end_canary(self, *, reason: str) -> None:
        """Stop routing to the candidate (rollback of a canary); the live deployment is untouched."""
        current = self.current()
        if not current.canary:
            raise ConflictError("no canary is running")
        self.state.update_deployment(current.id, canary=None, note=f"canary ended: {reason}")
        if self.router is not None:
            self.router.configure(clear_candidate=True)

    def canary_status(self) -> dict[str, Any]:
        """The running canary and its online comparison so far (``{"canary": None}`` when none)."""
        current = self.current()
        if not current.canary:
            return {"canary": None, "deployment_id": current.id}
        return {"canary": current.canary, "deployment_id": current.id, "decision": self.compare().to_json()}

    def compare(self) -> CanaryDecision:
        """Online comparison of the arms since the canary started."""
        from datetime import datetime

        current = self.current()
        if not current.canary or self.feedback is None:
            raise ConflictError("no canary is running")
        since = datetime.fromisoformat(current.canary["started_at"])
        events = self.feedback.list_events(since=since, limit=100_000)
        arms: dict[str, str] = {}

        def arm_of(query_id: str) -> str:
            if query_id not in arms:
                arms[query_id] = str(self.feedback.get_query(query_id).arm)  # type: ignore[union-attr]
            return arms[query_id]

        stats = tally((arm_of(e.query_id), e) for e in events)
        return decide(
            stats.get("current") or _empty(), stats.get("candidate") or _empty(), min_feedback=self.min_feedback
        )

    def scheduled_check(self) -> CanaryDecision | None:
        """The service scheduler's canary check (``deploy.canary_check_cron``): :meth:`evaluate_canary` when a canary
        runs, so the canary is promoted or rolled back without anyone calling the admin endpoint. ``None`` when no
        canary runs, or when a cycle or reindex job is running (its switch would race this one; the next check acts).
        """
        if not self.current().canary:
            return None
        busy = [job for job in self.state.list_jobs(statuses=tuple(ACTIVE_JOB_STATUSES), limit=100)
                if job.kind in EXCLUSIVE_KINDS]  # fmt: skip
        if busy:
            logger.info("canary check deferred corpus=%s busy_job=%s", self.corpus, busy[0].id)
            return None
        return self.evaluate_canary()

    def evaluate_canary(self) -> CanaryDecision:
        """Compare the arms and act: promote, roll back, or keep going."""
        decision = self.compare()
        canary = self.current().canary or {}
        if decision.action == "promote":
            cand = Candidate(canary["collection"], canary["models"], canary.get("cycle_id"), gate_passed=True)
            self.promote(cand)
        elif decision.action == "rollback":
            self.end_canary(reason="; ".join(decision.reasons))
        logger.info("canary evaluated corpus=%s action=%s", self.corpus, decision.action)
        return decision


def _empty() -> Any:
    from flywheel.online import ArmStats

    return ArmStats()
