"""Fixtures of the evals tests: tiny FAQ eval sets and the real-embedding numpy retriever (see ``eval_fakes``)."""

from __future__ import annotations

from typing import Any

import pytest
from eval_fakes import LeadGenerator, NumpyRetriever

from core.ports import Embedder
from core.types import EvalCase


@pytest.fixture(scope="session")
def faq_small(faq: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """First 40 FAQ entries (4 categories or more)."""
    return faq[:40]


@pytest.fixture(scope="session")
def faq_cases(faq_small: list[dict[str, Any]]) -> list[EvalCase]:
    """Eval cases of the small FAQ: question -> its own answer document, sliced by category."""
    return [
        EvalCase(
            id=f"case-{row['id']}",
            question=row["q"],
            relevant_doc_ids=[str(row["id"])],
            reference_answer=row["a"],
            slices={"category": row["category"]},
        )
        for row in faq_small
    ]


@pytest.fixture(scope="session")
def faq_retriever(embedder: Embedder, faq_small: list[dict[str, Any]]) -> NumpyRetriever:
    """A real-embedding retriever over the small FAQ's answers."""
    return NumpyRetriever(embedder, {str(r["id"]): r["a"] for r in faq_small})


@pytest.fixture
def lead_generator() -> LeadGenerator:
    """The deterministic lead-sentence generator."""
    return LeadGenerator()


@pytest.fixture(scope="session")
def evaluator(embedder: Embedder) -> Any:
    """One evaluator for the session, so its embedding cache (reference answers) is shared between tests."""
    from evals.runner import Evaluator

    return Evaluator(embedder=embedder)
