"""IR metrics: known values for perfect / worst / partial rankings, chunk de-duplication, bad input."""

from __future__ import annotations

import math

import pytest

from core.errors import InvalidInputError
from core.types import Citation, EvalCase
from evals.ir import doc_ranking, evaluate_ir, ir_metrics, retrieve_cases

pytestmark = pytest.mark.unit

ONE_REL = EvalCase(id="c1", question="q", relevant_doc_ids=["d1"])
TWO_REL = EvalCase(id="c2", question="q", relevant_doc_ids=["d1", "d2"])
FILLER = [f"x{i}" for i in range(10)]


@pytest.mark.parametrize(
    ("case", "ranking", "expected"),
    [
        (ONE_REL, ["d1", *FILLER[:9]], {"recall@1": 1, "recall@5": 1, "recall@10": 1, "mrr@10": 1, "ndcg@10": 1,
                                        "map@10": 1, "precision@1": 1, "precision@5": 0.2}),
        (ONE_REL, FILLER, {"recall@1": 0, "recall@5": 0, "recall@10": 0, "mrr@10": 0, "ndcg@10": 0, "map@10": 0,
                           "precision@5": 0}),
        (ONE_REL, ["x0", "d1"], {"recall@1": 0, "recall@5": 1, "mrr@10": 0.5, "ndcg@10": 1 / math.log2(3)}),
        (ONE_REL, [*FILLER, "d1"], {"recall@10": 0, "mrr@10": 0}),  # rank 11 is outside every cut-off
        (TWO_REL, ["d1", "x0", "d2"], {"recall@1": 0.5, "recall@5": 1, "mrr@10": 1, "precision@5": 0.4,
                                       "map@10": (1 + 2 / 3) / 2}),
        (ONE_REL, [], {"recall@10": 0, "mrr@10": 0, "ndcg@10": 0}),
    ],
)  # fmt: skip
def test_when_ranking_known_then_library_metrics_match(case: EvalCase, ranking: list[str], expected: dict) -> None:
    results = ir_metrics([case], {case.id: ranking})
    for name, value in expected.items():
        assert results[name].value == pytest.approx(value), name
        assert results[name].per_case == {case.id: pytest.approx(value)}


def test_when_several_cases_then_value_is_mean_of_per_case() -> None:
    cases = [EvalCase(id=f"c{i}", question="q", relevant_doc_ids=["d1"]) for i in range(4)]
    rankings = {"c0": ["d1"], "c1": ["x", "d1"], "c2": ["x"], "c3": ["d1"]}
    mrr = ir_metrics(cases, rankings)["mrr@10"]
    assert mrr.value == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert set(mrr.per_case) == {"c0", "c1", "c2", "c3"}


def test_when_chunks_of_one_document_then_counted_once() -> None:
    cites = [Citation("a#0", "a", "t", 0.9), Citation("a#1", "a", "t", 0.8), Citation("b#0", "b", "t", 0.7)]
    assert doc_ranking(cites) == ["a", "b"]
    case = EvalCase(id="c", question="q", relevant_doc_ids=["b"])
    assert ir_metrics([case], {"c": doc_ranking(cites)})["mrr@10"].value == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        ([], "eval set is empty"),
        ([EvalCase(id="c", question="q", relevant_doc_ids=[])], "no relevance labels"),
        ([ONE_REL, ONE_REL], "unique"),
    ],
)
def test_when_eval_set_unusable_then_invalid_input(cases: list[EvalCase], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ir_metrics(cases, {})


def test_when_ranking_missing_then_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="no ranking"):
        ir_metrics([ONE_REL], {})


class _SingleOnly:
    """A retriever without ``retrieve_many``: the per-question path must be used."""

    def __init__(self) -> None:
        self.calls = 0

    def retrieve(self, question: str, *, top_k: int, filter: object = None) -> list[Citation]:
        self.calls += 1
        return [Citation("d1#0", "d1", "text", 1.0)]


def test_when_retriever_has_no_batch_path_then_one_call_per_question() -> None:
    retriever = _SingleOnly()
    cases = [EvalCase(id=f"c{i}", question="q", relevant_doc_ids=["d1"]) for i in range(3)]
    assert evaluate_ir(retriever, cases)["recall@1"].value == 1.0
    assert retriever.calls == 3


@pytest.mark.integration
def test_when_real_retriever_then_batched_and_good(faq_retriever, faq_cases) -> None:  # type: ignore[no-untyped-def]
    before = faq_retriever.batch_calls
    retrievals = retrieve_cases(faq_retriever, faq_cases, top_k=10)
    assert faq_retriever.batch_calls == before + 1
    metrics = ir_metrics(faq_cases, {k: r.doc_ids for k, r in retrievals.items()})
    assert metrics["mrr@10"].value > 0.6  # MiniLM finds an FAQ answer from its own question
    assert metrics["recall@10"].value >= metrics["recall@1"].value
