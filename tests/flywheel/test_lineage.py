"""flywheel.lineage: transitive upstream / downstream walks over recorded edges."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError, NotFoundError
from flywheel.lineage import Lineage
from flywheel.state import StateStore

pytestmark = pytest.mark.unit


@pytest.fixture
def lineage(sqlite_state: StateStore) -> Lineage:
    lin = Lineage(sqlite_state)
    lin.link_many([("user", "u1"), ("user", "u2")], "dataset", "contrastive:v1", relation="curated")
    lin.link_many([("event", "e1"), ("event", "e2")], "dataset", "contrastive:v1", relation="curated")
    lin.link("dataset", "contrastive:v1", "model", "embedder:v1", relation="trained")
    lin.link("model", "embedder:v1", "collection", "faq__v2", relation="embedded")
    lin.link("collection", "faq__v2", "deployment", "d1", relation="deployed")
    lin.link("model", "embedder:v1", "deployment", "d1", relation="deployed")
    return lin


def test_which_models_saw_this_users_data(lineage: Lineage) -> None:
    down = lineage.trace("user", "u1").downstream
    assert ("model", "embedder:v1") in {(n.kind, n.id) for n in down}
    assert ("deployment", "d1") in {(n.kind, n.id) for n in down}
    assert lineage.trace("user", "u1").upstream == []


def test_what_trained_the_live_embedder(lineage: Lineage) -> None:
    up = lineage.trace("model", "embedder:v1").upstream
    direct = [n for n in up if n.depth == 1]
    assert [(n.kind, n.id, n.relation) for n in direct] == [("dataset", "contrastive:v1", "trained")]
    assert {("user", "u1"), ("user", "u2"), ("event", "e1")} <= {(n.kind, n.id) for n in up}


def test_deployment_upstream_reaches_events_once(lineage: Lineage) -> None:
    up = lineage.trace("deployment", "d1").upstream
    ids = [(n.kind, n.id) for n in up]
    assert len(ids) == len(set(ids)) and ("event", "e2") in ids
    assert lineage.trace("deployment", "d1", depth=1).upstream[0].depth == 1


def test_when_unknown_node_or_kind_then_errors(lineage: Lineage) -> None:
    with pytest.raises(NotFoundError):
        lineage.trace("model", "embedder:v9")
    with pytest.raises(InvalidInputError):
        lineage.trace("spaceship", "x")
