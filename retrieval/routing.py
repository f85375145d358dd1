"""Canary and shadow routing between the current and a candidate query path.

:class:`CanaryRouter` decides, stably, whether a key (the user id, or the query id for anonymous queries) falls in
the canary share: ``sha256(salt + key)`` mapped to ``[0, 1)`` compared with ``share``. The same user always lands on
the same arm for a given salt and share, and raising the share only moves users from current to candidate.

:class:`DeploymentRouter` holds the arms (``current``, optional ``candidate``) and the mode, all swappable at run
time under a lock (engineer F's deployment decisions call :meth:`DeploymentRouter.configure`):

- ``promote``: every query goes to ``current`` (a candidate, if set, is ignored).
- ``canary``: the canary share of keys goes to ``candidate`` (recorded ``arm=candidate``), the rest to ``current``.
- ``shadow``: ``current`` answers; ``candidate`` also answers the same question, its record logged with
  ``arm=shadow`` under ``{query_id}-shadow`` and never shown. A failing shadow never fails the caller's query.

The chosen arm is recorded in every ``QueryRecord`` (the services record it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from core.errors import FlywheelError, InvalidInputError
from core.types import Arm, Citation, JSONValue, SearchFilter
from retrieval.service import QueryResult, QueryService

logger = logging.getLogger(__name__)

Mode = Literal["promote", "canary", "shadow"]
_MODES: tuple[str, ...] = ("promote", "canary", "shadow")


class CanaryRouter:
    """Sticky hash-based traffic split.

    Args:
        share: fraction of keys routed to the candidate, in ``[0, 1]``.
        salt: changes the assignment (e.g. per rollout) while keeping it stable within one.
    """

    def __init__(self, share: float, *, salt: str = "") -> None:
        if not 0.0 <= share <= 1.0:
            raise InvalidInputError(f"canary share must be in [0, 1], got {share}", field="canary_share")
        self.share = share
        self.salt = salt

    def bucket(self, key: str) -> float:
        """Stable position of ``key`` in ``[0, 1)`` (first 8 bytes of sha256 of salt and key)."""
        digest = hashlib.sha256(f"{self.salt}\x1f{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def to_candidate(self, key: str) -> bool:
        """Whether ``key`` falls in the canary share."""
        return self.bucket(key) < self.share


@dataclass(frozen=True, slots=True)
class RoutingState:
    """An immutable snapshot of the router's arms and mode (swapped as a whole, read without tearing)."""

    current: QueryService
    candidate: QueryService | None
    mode: Mode
    canary: CanaryRouter


class DeploymentRouter:
    """Routes queries to the current or candidate :class:`QueryService`; implements the ``Retriever`` port.

    Args:
        current: the serving arm.
        candidate: an optional candidate arm.
        mode: ``promote`` | ``canary`` | ``shadow``.
        canary_share: share of keys routed to the candidate in ``canary`` mode.
        salt: canary hash salt.
    """

    def __init__(
        self,
        *,
        current: QueryService,
        candidate: QueryService | None = None,
        mode: Mode = "promote",
        canary_share: float = 0.1,
        salt: str = "",
    ) -> None:
        self._lock = threading.Lock()
        self._state = self._build_state(current, candidate, mode, CanaryRouter(canary_share, salt=salt))

    @staticmethod
    def _build_state(
        current: QueryService, candidate: QueryService | None, mode: str, canary: CanaryRouter
    ) -> RoutingState:
        if mode not in _MODES:
            raise InvalidInputError(f"unknown routing mode {mode!r}; expected one of {_MODES}", field="mode")
        if mode != "promote" and candidate is None:
            raise InvalidInputError(f"routing mode {mode!r} needs a candidate arm", field="candidate")
        return RoutingState(current=current, candidate=candidate, mode=cast(Mode, mode), canary=canary)

    @property
    def state(self) -> RoutingState:
        """The current snapshot (arms, mode, canary split)."""
        with self._lock:
            return self._state

    def configure(
        self,
        *,
        current: QueryService | None = None,
        candidate: QueryService | None = None,
        mode: Mode | None = None,
        canary_share: float | None = None,
        salt: str | None = None,
        clear_candidate: bool = False,
    ) -> RoutingState:
        """Atomically change arms / mode / split; unspecified parts keep their value. Returns the new snapshot."""
        with self._lock:
            old = self._state
            canary = CanaryRouter(
                old.canary.share if canary_share is None else canary_share,
                salt=old.canary.salt if salt is None else salt,
            )
            new_candidate = None if clear_candidate else (candidate or old.candidate)
            new_mode = "promote" if clear_candidate and mode is None else (mode or old.mode)
            self._state = self._build_state(current or old.current, new_candidate, new_mode, canary)
            logger.info(
                "routing configured mode=%s share=%.3f candidate=%s", new_mode, canary.share, bool(new_candidate)
            )
            return self._state

    def choose(self, *, user_id: str | None, query_id: str) -> Arm:
        """The arm that serves a query (``current`` or ``candidate``); sticky per user, per query when anonymous."""
        state = self.state
        if state.mode != "canary" or state.candidate is None:
            return Arm.CURRENT
        return Arm.CANDIDATE if state.canary.to_candidate(user_id or query_id) else Arm.CURRENT

    def answer(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filters: Mapping[str, JSONValue] | None = None,
        user_id: str | None = None,
        tenant: str | None = None,
    ) -> QueryResult:
        """Answer through the chosen arm (and the shadow arm in ``shadow`` mode); the arm is recorded."""
        state = self.state
        query_id = uuid.uuid4().hex
        arm = self.choose(user_id=user_id, query_id=query_id)
        service = state.candidate if arm is Arm.CANDIDATE and state.candidate is not None else state.current
        result = service.answer(
            question, top_k=top_k, filters=filters, user_id=user_id, tenant=tenant, arm=arm, query_id=query_id
        )
        if state.mode == "shadow" and state.candidate is not None:
            self._shadow(
                state.candidate,
                question,
                query_id=f"{query_id}-shadow",
                top_k=top_k,
                filters=filters,
                user_id=user_id,
                tenant=tenant,
            )
        return result

    def _shadow(
        self,
        service: QueryService,
        question: str,
        *,
        query_id: str,
        top_k: int | None,
        filters: Mapping[str, JSONValue] | None,
        user_id: str | None,
        tenant: str | None,
    ) -> None:
        """Run the candidate on the same query, recorded as ``arm=shadow`` under ``{query_id}-shadow``.

        A shadow failure is logged, never raised: the caller already has the current arm's answer.
        """
        try:
            shadow = service.answer(
                question,
                top_k=top_k,
                filters=filters,
                user_id=user_id,
                tenant=tenant,
                arm=Arm.SHADOW,
                query_id=query_id,
            )
        except FlywheelError as exc:
            logger.warning("shadow arm failed error=%s", type(exc).__name__)
            return
        logger.info("shadow answered query_id=%s index=%s", shadow.query_id, shadow.index_version)

    def retrieve(self, question: str, *, top_k: int, filter: SearchFilter | None = None) -> list[Citation]:
        """``Retriever`` port over the current arm."""
        return self.state.current.retrieve(question, top_k=top_k, filter=filter)
