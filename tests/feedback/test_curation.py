"""Curator on a small seeded feedback log: every dataset kind, QC (noise, dedup, conflicts, raters), hold-out, PII."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from core.datasets import DatasetRepository
from core.errors import NotEnoughDataError
from core.types import DatasetKind, FeedbackEvent, FeedbackKind
from feedback.curation import CurationConfig, Curator
from feedback.quality import holdout_bucket, is_held_out, noise_reason
from feedback.store import SqlStore

pytestmark = pytest.mark.integration

PASSAGES = {
    "p-reset": "To reset your password, open the login page and follow the reset link sent by email.",
    "p-bill": "Invoices are issued monthly and can be downloaded from the billing page.",
    "p-ship": "Orders ship within two business days from our central warehouse.",
    "p-return": "Returns are accepted within thirty days if the item is unused.",
    "p-hours": "Support is available on weekdays from nine to five.",
    "p-api": "API tokens can be created in the developer settings of your account.",
}
QUESTIONS = {
    "How do I reset my password?": "p-reset",
    "Where can I download my invoices?": "p-bill",
    "How long does shipping take?": "p-ship",
    "Can I return an unused item?": "p-return",
    "When is support available?": "p-hours",
    "How do I create an API token?": "p-api",
}


class _Log:
    """Builds queries and events straight into the store (texts here hold no PII)."""

    def __init__(self, store: SqlStore, make_query: Any) -> None:
        self.store, self.make_query = store, make_query

    def query(self, question: str, chunk_ids: list[str], user: str = "u1") -> Any:
        q = self.make_query(question=question, chunk_ids=chunk_ids, user_id=user)
        self.store.record_query(q)
        return q

    def event(self, q: Any, kind: FeedbackKind, data: dict, *, rater: str = "a1", user: str = "u1") -> str:
        e = FeedbackEvent(uuid.uuid4().hex, q.id, kind, data, user_id=user, rater_id=rater, principal=rater)
        return self.store.add_events([e], idempotency_keys=[None])[0]


@pytest.fixture(scope="module")
def curated(
    tmp_path_factory: pytest.TempPathFactory, make_query: Any, embedder: Any, scrubber: Any, fake_passage_index_cls: Any
) -> Any:
    """One curation run over a seeded log, shared by the module's read-only tests (mutating tests come last)."""
    tmp_path = tmp_path_factory.mktemp("curation")
    passage_index = fake_passage_index_cls(PASSAGES)
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    log = _Log(store, make_query)
    others = [c for c in PASSAGES]
    for question, good in QUESTIONS.items():
        bad = next(c for c in others if c != good)
        q = log.query(question, [good, bad])
        log.event(q, FeedbackKind.THUMBS, {"value": "up"})
        log.event(q, FeedbackKind.RELEVANCE, {"relevant": [good], "irrelevant": [bad]}, rater="a2")
    # a contested judgement: two agreeing raters beat one dissenting rater
    q = log.query("How do I reset my password?", ["p-reset", "p-api"], user="u2")
    log.event(q, FeedbackKind.RELEVANCE, {"irrelevant": ["p-reset"]}, rater="a3", user="u2")
    # a near-duplicate question with the same positive passage
    near = log.query("How can I reset my password?", ["p-reset"], user="u2")
    log.event(near, FeedbackKind.USED, {}, rater="a1", user="u2")
    # SFT: corrections and edits, plus noise
    log.event(q, FeedbackKind.CORRECTION, {"text": "Open the login page and use the emailed reset link."}, rater="a1")
    log.event(q, FeedbackKind.EDITED, {"text": "ok"}, rater="a2")
    log.event(q, FeedbackKind.CORRECTION, {"text": "xzkq wrtpl vvvvvvvvvv zzqq"}, rater="a2")
    # missing knowledge: two similar reports and one different
    for text in (
        "Do you support single sign-on (SSO)?",
        "Is SSO single sign-on supported?",
        "Can I pay by bank cheque?",
    ):
        log.event(q, FeedbackKind.MISSING_KNOWLEDGE, {"question": text}, rater="a4")
    # an opted-out user's events never enter a dataset
    hidden = log.query("What is the warranty period for tools?", ["p-return"], user="u-out")
    log.event(hidden, FeedbackKind.THUMBS, {"value": "up"}, user="u-out")
    store.set_opt_out("u-out", opted_out=True)
    questions = [*QUESTIONS, "How can I reset my password?"]
    seed = next(s for s in range(200) if 1 <= sum(is_held_out(x, share=0.3, seed=s) for x in questions) <= 3)
    repo = DatasetRepository(tmp_path / "datasets")
    curator = Curator(
        store,
        repo,
        scrubber=scrubber,
        embedder=embedder,
        passages=passage_index,
        config=CurationConfig(near_duplicate=0.9),
    )
    report = curator.curate("faq", holdout_share=0.3, seed=seed)
    yield {"report": report, "repo": repo, "store": store, "seed": seed, "curator": curator}
    store.close()


def test_when_curated_then_every_kind_is_written_with_provenance(curated: dict[str, Any]) -> None:
    report, repo = curated["report"], curated["repo"]
    assert set(report.written) == {"contrastive", "relevance", "sft", "eval", "gaps"}, report.as_dict()
    for kind in report.written:
        manifest = repo.manifest(DatasetKind(kind), report.written[kind])
        assert manifest.rows == report.rows[kind] > 0
        assert manifest.event_ids and "u-out" not in manifest.user_ids
        for row in repo.read(DatasetKind(kind)):
            assert set(row["provenance"] if isinstance(row, dict) else row.provenance) <= set(manifest.event_ids)


def test_when_curated_then_eval_questions_never_appear_in_training(curated: dict[str, Any]) -> None:
    repo = curated["repo"]
    eval_questions = {c.question.lower() for c in repo.read(DatasetKind.EVAL)}
    train = {p.query.lower() for p in repo.read(DatasetKind.CONTRASTIVE)}
    train |= {r.query.lower() for r in repo.read(DatasetKind.RELEVANCE)}
    assert eval_questions and not eval_questions & train
    for case in repo.read(DatasetKind.EVAL):
        assert is_held_out(case.question, share=0.3, seed=curated["seed"])
        assert case.relevant_doc_ids == [f"d-{QUESTIONS[case.question]}"]


def test_when_signals_conflict_then_weighted_vote_wins_and_dissenter_weighs_less(curated: dict[str, Any]) -> None:
    report, repo = curated["report"], curated["repo"]
    assert report.dropped["conflicts_resolved"] >= 1
    assert report.rater_weights["a3"] < 1.0 < report.rater_weights["a2"]
    relevance = repo.read(DatasetKind.RELEVANCE)
    reset = [r for r in relevance if r.chunk_id == "p-reset" and "reset" in r.query]
    if reset:  # the reset question may be held out for this seed
        assert all(r.label == 1.0 for r in reset)


def test_when_curated_then_noise_and_duplicates_are_dropped(curated: dict[str, Any]) -> None:
    report, repo = curated["report"], curated["repo"]
    assert report.dropped.get("noise_too_short", 0) >= 1 and report.dropped.get("noise_gibberish", 0) >= 1
    targets = [r.target for r in repo.read(DatasetKind.SFT)]
    assert targets == ["Open the login page and use the emailed reset link."]
    pairs = repo.read(DatasetKind.CONTRASTIVE)
    assert len({(p.query.lower(), p.positive_chunk_id) for p in pairs}) == len(pairs)


def test_when_missing_knowledge_reported_then_similar_reports_form_one_gap(curated: dict[str, Any]) -> None:
    gaps = curated["repo"].read(DatasetKind.GAPS)
    assert [g["count"] for g in gaps] == [2, 1]
    assert any("SSO" in q for q in gaps[0]["questions"])


def test_when_dataset_holds_residual_pii_then_it_is_refused(
    tmp_path: Path, make_query: Any, embedder: Any, scrubber: Any, passage_index: Any
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    log = _Log(store, make_query)
    q = log.query("How do I reset my password?", ["c1"])
    for i in range(3):  # written straight to the store, bypassing the intake's scrubbing
        log.event(q, FeedbackKind.CORRECTION, {"text": f"Ask John Smith at john.smith{i}@example.com for a reset."})
    repo = DatasetRepository(tmp_path / "datasets")
    curator = Curator(
        store, repo, scrubber=scrubber, embedder=embedder, passages=passage_index, config=CurationConfig(min_events=3)
    )
    report = curator.curate("faq", holdout_share=0.01, seed=1)
    assert "sft" in report.refused and any("EMAIL_ADDRESS" in leak for leak in report.refused["sft"])
    assert repo.versions(DatasetKind.SFT) == []
    store.close()


def test_when_too_few_events_then_not_enough_data(
    tmp_path: Path, make_query: Any, embedder: Any, scrubber: Any, passage_index: Any
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    curator = Curator(
        store, DatasetRepository(tmp_path / "d"), scrubber=scrubber, embedder=embedder, passages=passage_index
    )
    with pytest.raises(NotEnoughDataError) as info:
        curator.curate("faq")
    assert (info.value.have, info.value.need) == (0, 10)
    store.close()


NOISE = [
    ("", "empty"),
    ("  ", "empty"),
    ("ok", "too_short"),
    ("asdfgh qwrtzp xkcdvb", "gibberish"),
    ("!!!! ???? ....", "gibberish"),
    ("aaaaaaaaaaaa help", "gibberish"),
    ("How do I reset my password?", None),
]


@pytest.mark.unit
@pytest.mark.parametrize(("text", "reason"), NOISE)
def test_when_text_is_noise_then_reason_is_given(text: str, reason: str | None) -> None:
    assert noise_reason(text, min_chars=8) == reason


@pytest.mark.unit
def test_when_question_varies_only_in_case_and_punctuation_then_bucket_is_stable() -> None:
    assert holdout_bucket("How do I reset?", seed=3) == holdout_bucket("  how do i RESET ", seed=3)
    assert holdout_bucket("How do I reset?", seed=3) != holdout_bucket("How do I reset?", seed=4)


# ------------------------------------------------------------------- these mutate the shared curation: keep them last
def test_when_curated_twice_then_new_versions_are_written(curated: dict[str, Any]) -> None:
    again = curated["curator"].curate("faq", holdout_share=0.3, seed=curated["seed"])
    assert again.written["contrastive"] == curated["report"].written["contrastive"] + 1


def test_when_user_deleted_after_curation_then_used_datasets_are_reported(curated: dict[str, Any]) -> None:
    report = curated["store"].delete_user_data("u1")
    assert "contrastive/v1" in report.datasets and report.events_deleted > 0


def test_when_few_rows_hold_residual_pii_then_only_those_rows_are_dropped(
    tmp_path: Path, make_query: Any, embedder: Any, scrubber: Any, passage_index: Any
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    log = _Log(store, make_query)
    q = log.query("How do I reset my password?", ["c1"])
    texts = [
        "Open the settings page and choose the reset option.",
        "Use the account page; the reset link arrives within minutes.",
        "Write to john.smith@example.com to get a reset.",  # bypasses intake scrubbing: residual PII
    ]
    for i, text in enumerate(texts):
        log.event(q, FeedbackKind.CORRECTION, {"text": text}, rater=f"a{i}")
    repo = DatasetRepository(tmp_path / "datasets")
    config = CurationConfig(min_events=3, max_pii_share=0.5)
    report = Curator(store, repo, scrubber=scrubber, embedder=embedder, passages=passage_index, config=config).curate(
        "faq", holdout_share=0.01, seed=1
    )
    assert "sft" not in report.refused
    assert report.dropped["sft_residual_pii"] == 1
    targets = [row.target for row in repo.read(DatasetKind.SFT)]
    assert len(targets) == 2 and not any("@" in t for t in targets)
    store.close()


def test_when_a_correction_names_its_evidence_then_the_sft_row_puts_that_passage_first(
    tmp_path: Path, make_query: Any, embedder: Any, scrubber: Any, fake_passage_index_cls: Any
) -> None:
    # retrieval ranked the right passage second: the agent marks it relevant, the first irrelevant, and corrects
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    log = _Log(store, make_query)
    q = log.query("How do I reset my password?", ["p-api", "p-bill", "p-reset"])
    log.event(q, FeedbackKind.RELEVANCE, {"relevant": ["p-reset"], "irrelevant": ["p-api", "p-bill"]})
    log.event(q, FeedbackKind.CORRECTION, {"text": "Open the login page and follow the emailed reset link."})
    for question, good in QUESTIONS.items():  # enough other feedback to curate; none of it corrects anything
        log.event(log.query(question, [good]), FeedbackKind.THUMBS, {"value": "up"})
    repo = DatasetRepository(tmp_path / "datasets")
    curator = Curator(store, repo, scrubber=scrubber, embedder=embedder, passages=fake_passage_index_cls(PASSAGES),
                      config=CurationConfig(min_events=1))  # fmt: skip
    seed = next(s for s in range(200) if not is_held_out("How do I reset my password?", share=0.3, seed=s))
    curator.curate("faq", holdout_share=0.3, seed=seed)
    store.close()
    [row] = repo.read(DatasetKind.SFT)
    assert row.contexts == [PASSAGES["p-reset"], PASSAGES["p-api"], PASSAGES["p-bill"]]
