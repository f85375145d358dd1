"""The main job: a seeded simulation of agents using the service, with cycles turning their feedback into a better
embedder (and, with the ``hf`` generator, a LoRA-tuned SmolLM2), measured on held-out questions that never reach
training.

Flow (``flywheel demo`` = :func:`flywheel.simulate_run.run_simulation` with defaults; ``flywheel simulate`` exposes
the options):

1. A fresh data directory (``{data_dir}/simulation``, wiped) with the embedded defaults: qdrant-edge, SQLite, the
   packaged MiniLM, the extractive generator. Corrections wait for approval there (``fast_path="approval"``): the
   agents' corrections repeat existing answers, and live duplicates would only crowd the rankings.
2. The labelled questions (built-in FAQ, or ``--dataset`` JSONL of ``{"question", "answer", "id"?, "category"?}``)
   become the corpus: one document per answer, text = the answer only (the question is not indexed, not even as
   metadata).
3. Questions are split, seeded, into a traffic pool and held-out questions (``holdout_share``); the pool is asked
   over the cycles (cycle ``n`` gets the ``n``-th slice: new traffic each period, curation accumulates).
4. Each cycle: simulated agents (:mod:`flywheel.agents`) ask that cycle's questions through the container's router +
   ``QueryService`` and give feedback through ``FeedbackIntake`` — the same objects the API uses — with a share of
   wrong reactions (``noise``); then :class:`flywheel.cycle.CycleRunner` runs a full cycle; then the held-out
   questions are scored (MRR@10, recall@1/5/10, nDCG@10, and the live generator's answers) on whatever is live.
5. With ``generator="hf"`` (``flywheel demo --generator hf``) answers come from SmolLM2-135M-Instruct and every cycle
   also LoRA-tunes its adapter on the curated corrections (:data:`DEMO_SFT`, prompt :data:`HF_PROMPT`); the agents'
   traffic is answered extractively (they judge citations, never wording), and the newest adapter is measured against
   the base generator on the same retrieval at the end.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.settings import Settings
from core.types import Document, EvalCase
from flywheel.agents import LabelledQuestion

logger = logging.getLogger(__name__)

HEADLINE = ("mrr@10", "recall@1", "recall@5", "recall@10", "ndcg@10")
ANSWER_METRICS = ("semantic_similarity", "rouge_l")
GENERATORS = ("extractive", "hf")
# The hf run on 2 cores: prompt tokens dominate both a SmolLM2 answer (prefill) and a LoRA step, so the prompt
# carries the 2 best passages cut to 500 characters (FAQ answers: median 33 words, p90 61), and answers stop at 64
# new tokens (reference answers: median 56 tokens).
HF_MAX_NEW_TOKENS = 64
HF_PROMPT = {"max_passages": 2, "max_passage_chars": 500}
# The hf run's LoRA recipe per cycle (customization.lora.LoraConfig overrides), trained from the base model on the
# cumulative corrections: one pass at a high rate (the corrections teach one skill — answer with the evidence's own
# words — that the loss shows learnt within ~10 steps), and room for the whole prompt (nothing cut from the left).
DEMO_SFT: dict[str, Any] = {"epochs": 1, "learning_rate": 1e-3, "max_length": 512}
# The demo's per-cycle fine-tune: plain MNRL at lr 5e-5 over the feedback pairs, 3 epochs (benchmarks/faq_lift.py:
# no variant beat it; see customization.embedder_training), without the agent-marked negatives, which triple the
# texts per row (2-core time budget); with them (and 10% instead of 30% of asked questions kept for evaluation) no
# demo cycle passed the gate (gate-set MRR@10 +0.060 / +0.038 / +0.042 over the untuned model, each not proven).
DEMO_TRAINING: dict[str, Any] = {
    "epochs": 3,
    "learning_rate": 5e-5,
    "symmetric": False,
    "max_seq_length": 256,
    "hard_negatives": 0,
    "pseudo_queries_per_passage": 0,
}


@dataclass(slots=True)
class SimulationConfig:
    """Options of a simulation run (defaults = ``flywheel demo``)."""

    dataset: Path | None = field(default=None, metadata={"help": "JSONL of labelled questions; None: built-in FAQ"})
    cycles: int = field(default=3, metadata={"help": "cycles to run"})
    noise: float = field(default=0.10, metadata={"help": "share of wrong agent reactions (flipped marks/ratings)"})
    seed: int = field(default=42, metadata={"help": "seed of the split, the agents and training"})
    holdout_share: float = field(default=0.4, metadata={"help": "share of questions held out (never trained on)"})
    gate_holdout_share: float = field(
        default=0.3, metadata={"help": "share of asked questions curation keeps as the gate's eval cases"}
    )
    gold_share: float = field(
        default=0.5,
        metadata={
            "help": "share of the held-out questions given to the gate as a labelled gold set (eval.gold_set), as a "
            "team would keep one; the rest are the reported held-out questions, seen by neither training nor gate"
        },
    )
    agents: int = field(default=8, metadata={"help": "number of simulated agents (pseudonymous users)"})
    limit: int | None = field(default=None, metadata={"help": "use only the first N labelled questions (tests)"})
    top_k: int = field(default=5, metadata={"help": "passages cited per answer"})
    training: dict[str, Any] = field(
        default_factory=lambda: dict(DEMO_TRAINING),
        metadata={"help": "EmbedderTrainingConfig overrides for every cycle (see DEMO_TRAINING)"},
    )
    min_eval_cases: int | None = field(default=None, metadata={"help": "gate minimum eval cases (tests lower it)"})
    min_pairs: int | None = field(default=None, metadata={"help": "fewest contrastive pairs to train (tests lower it)"})
    generator: str = field(
        default="extractive",
        metadata={"help": "extractive: answers from the cited sentences; hf: SmolLM2-135M, LoRA-tuned every cycle on "
                  "the agents' corrections (training.train_generator)"},
    )  # fmt: skip
    answer_cases: int = field(
        default=100, metadata={"help": "held-out questions answered per measurement (generation metrics)"}
    )
    max_new_tokens: int | None = field(default=None, metadata={"help": "hf answer length (default: the setting)"})
    gate_answer_cases: int | None = field(
        default=None, metadata={"help": "eval cases each arm answers in a cycle's gate (default: answer_cases)"}
    )
    generator_training: dict[str, Any] = field(
        default_factory=lambda: dict(DEMO_SFT),
        metadata={"help": "LoraConfig overrides of the hf run's adapter, every cycle (see DEMO_SFT)"},
    )

    def __post_init__(self) -> None:
        if self.cycles < 1:
            raise InvalidInputError("cycles must be >= 1", field="cycles")
        if not 0.0 <= self.noise < 0.5:
            raise InvalidInputError("noise must be in [0, 0.5): beyond that the agents lie more than they help")
        if not 0.05 <= self.holdout_share <= 0.8:
            raise InvalidInputError("holdout_share must be in [0.05, 0.8]", field="holdout_share")
        if self.agents < 1:
            raise InvalidInputError("agents must be >= 1", field="agents")
        if not 0.0 <= self.gold_share < 1.0:
            raise InvalidInputError("gold_share must be in [0, 1)", field="gold_share")
        if not 0.0 < self.gate_holdout_share < 1.0:
            raise InvalidInputError("gate_holdout_share must be in (0, 1)", field="gate_holdout_share")
        if self.generator not in GENERATORS:
            raise InvalidInputError(f"generator must be one of {', '.join(GENERATORS)}", field="generator")
        if self.answer_cases < 1 or (self.gate_answer_cases is not None and self.gate_answer_cases < 1):
            raise InvalidInputError("answer_cases and gate_answer_cases must be >= 1", field="answer_cases")
        _check_lora(self.generator_training)
        from customization.embedder_training import EmbedderTrainingConfig

        EmbedderTrainingConfig.from_overrides(self.training)  # an unknown key or bad value fails here, not mid-cycle


def _check_lora(overrides: dict[str, Any]) -> None:
    """``overrides`` must be ``LoraConfig`` fields with valid values (checked before the run, not mid-cycle)."""
    from dataclasses import fields

    from customization.lora import LoraConfig

    known = {f.name for f in fields(LoraConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidInputError(f"unknown LoRA settings {unknown}; valid: {sorted(known)}", field="generator_training")
    try:
        LoraConfig(**overrides)
    except TypeError as exc:  # a mistyped value, e.g. {"epochs": "two"}
        raise InvalidInputError(f"bad LoRA setting value: {exc}", field="generator_training") from exc


# ------------------------------------------------------------------------------------------------- the data
def load_questions(dataset: Path | None, *, limit: int | None = None) -> list[LabelledQuestion]:
    """Labelled questions from the built-in FAQ or a JSONL file. Raises ``InvalidInputError`` for bad lines."""
    if dataset is None:
        import zaragoza_construction_faq

        raw = [{"id": e["id"], "question": e["q"], "answer": e["a"], "category": e["category"]}
               for e in zaragoza_construction_faq.load(lang="en")]  # fmt: skip
    else:
        raw = _read_jsonl(Path(dataset))
    items = [_labelled(r, n) for n, r in enumerate(raw, start=1)]
    ids = [i.doc_id for i in items]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("labelled question ids must be unique", field="id")
    return items[:limit] if limit else items


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInputError(f"dataset file does not exist: {path}", field="dataset")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}: line {n} is not JSON: {exc.msg}", field="dataset") from exc
            if not isinstance(row, dict):
                raise InvalidInputError(f"{path}: line {n} is not a JSON object", field="dataset")
            rows.append(row | {"_line": n})
    if len(rows) < 10:
        raise InvalidInputError(f"{path}: {len(rows)} labelled questions; a simulation needs at least 10")
    return rows


def _labelled(row: dict[str, Any], n: int) -> LabelledQuestion:
    where = f"line {row.get('_line', n)}"
    question, answer = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError(f"{where}: 'question' must be a non-empty string", field="question")
    if not isinstance(answer, str) or not answer.strip():
        raise InvalidInputError(f"{where}: 'answer' must be a non-empty string", field="answer")
    doc_id = str(row.get("id") or f"q{n}")
    category = row.get("category")
    return LabelledQuestion(id=doc_id, question=question.strip(), doc_id=doc_id, answer=answer.strip(),
                            category=str(category) if category else None)  # fmt: skip


def documents(items: Sequence[LabelledQuestion]) -> list[Document]:
    """One document per answer: text = the answer only; the question is not indexed anywhere."""
    docs = []
    for item in items:
        meta = {"source": "document", **({"category": item.category} if item.category else {})}
        docs.append(Document(id=item.doc_id, text=item.answer, metadata=meta))
    return docs


def split(items: Sequence[LabelledQuestion], *, holdout_share: float, seed: int) -> tuple[list, list]:
    """Seeded split into (traffic pool, held-out)."""
    order = list(items)
    random.Random(seed).shuffle(order)
    n_hold = max(1, round(len(order) * holdout_share))
    return order[n_hold:], order[:n_hold]


def eval_cases(items: Sequence[LabelledQuestion], prefix: str = "heldout") -> list[EvalCase]:
    """Held-out questions as eval cases (relevant doc = the question's own answer); ids ``{prefix}-{id}``."""
    return [
        EvalCase(id=f"{prefix}-{i.id}", question=i.question, relevant_doc_ids=[i.doc_id], reference_answer=i.answer,
                 slices={"category": i.category} if i.category else {})
        for i in items
    ]  # fmt: skip


def simulation_settings(base: Settings, config: SimulationConfig) -> Settings:
    """Settings of the simulation's own data dir (everything else inherited from ``base``)."""
    data = base.model_dump()
    data.update(data_dir=base.data_dir / "simulation", db={"url": None, "echo": False})
    data["store"] = {**data["store"], "kind": "edge", "url": None, "path": None}
    data["auth"] = {"enabled": False, "bootstrap_admin_key": None}
    data["feedback"] = {**data["feedback"], "fast_path": "approval"}
    data["deploy"] = {**data["deploy"], "mode": "promote", "reindex_cron": None, "reindex_source": None}
    data["training"] = {**data["training"], "seed": config.seed}
    # curation holds out this share of the asked questions as the gate's eval cases (never trained on)
    data["eval"] = {**data["eval"], "holdout_share": config.gate_holdout_share}
    if config.min_eval_cases is not None:
        data["eval"] = {**data["eval"], "min_slice_cases": config.min_eval_cases}
    if config.gold_share > 0:
        data["eval"] = {**data["eval"], "gold_set": gold_set_path(base)}
    data["eval"] = {**data["eval"], "max_generation_cases": config.gate_answer_cases or config.answer_cases}
    # the converted base models are kept outside the wiped simulation dir: converted once, not every run
    data["base_models_dir"] = base.base_models_path
    if config.generator == "hf":
        tokens = config.max_new_tokens or HF_MAX_NEW_TOKENS
        data["generator"] = {**data["generator"], **HF_PROMPT, "kind": "hf", "max_new_tokens": tokens}
        data["training"] = {**data["training"], "train_generator": True}
    return Settings.model_validate(data)


def gold_set_path(base: Settings) -> Path:
    """Where a simulation writes the gate's gold set (inside its own, wiped-per-run directory)."""
    return base.data_dir / "simulation" / "gold.jsonl"


def split_gold(held: Sequence[LabelledQuestion], *, share: float) -> tuple[list, list]:
    """Split held-out questions (already shuffled by :func:`split`) into (gate gold set, reported held-out)."""
    n_gold = int(len(held) * share)
    return list(held[:n_gold]), list(held[n_gold:])


def write_gold_set(path: Path, cases: Sequence[EvalCase]) -> None:
    """Write eval cases as the JSONL gold set that ``flywheel.steps.load_gold_set`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(asdict(case), ensure_ascii=False) + "\n")


def fresh_dir(path: Path) -> Path:
    """Remove and recreate the simulation directory (only ever ``{data_dir}/simulation``)."""
    if path.name != "simulation":
        raise InvalidInputError(f"refusing to wipe {path}: not a simulation directory")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


Progress = Callable[[str], None]


def write_json(results: dict[str, Any], path: Path) -> Path:
    """Write the results JSON (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return path


def config_json(config: SimulationConfig) -> dict[str, Any]:
    """JSON form of the config."""
    out = asdict(config)
    out["dataset"] = str(config.dataset) if config.dataset else "builtin:faq"
    return out


def now() -> float:
    """Monotonic seconds (timings)."""
    return time.perf_counter()
