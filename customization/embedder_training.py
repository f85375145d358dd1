"""Contrastive fine-tuning of the sentence-transformers embedder from feedback pairs.

Recipe (see ``benchmarks/faq_lift.py``, FAQ 60/40 split, 302 training pairs). One fine-tune's held-out MRR@10 moves
by about +-0.013 with the training seed alone (plain MNRL, lr 5e-5, 3 epochs: 0.795 / 0.776 / 0.768 for seeds
42 / 1 / 2, untuned 0.693), so variants are compared at the same seed. At seed 42 nothing beat that plain run
(0.795): lr 1e-4 0.787; GISTEmbed loss with the base model as guide 0.781; one mined hard negative 0.767; an MSE
anchor keeping the corpus embeddings at the base model's 0.788; topic-aware batches (true categories 0.788, k-means
0.757); interpolating the weights back towards the base model (0.85 / 0.7 / 0.5 of the way: 0.787 / 0.777 / 0.754);
a uniform soup of the three seeds 0.780; earlier, lr 1e-4 + warm-up + a mined negative + inverse-cloze pseudo-queries
0.754. Means over four training seeds (42 / 1 / 2 / 3; plain MNRL 0.780 MRR@10, 0.670 recall@1): symmetric loss
0.777; scale 8 / 12 / 30 / 50: 0.756 / 0.780 / 0.771 / 0.759; batch 16: 0.774; 5 epochs: 0.783; batch 64 at lr 1e-4:
0.786, and with 5 epochs 0.788 / 0.688 (the best, +0.009 over plain: inside the seed spread, it wins 3 of 4 seeds, at
1.7x the training time); frozen token embeddings 0.781 (0.784 at lr 1e-4); LoRA r=16 on the encoder 0.774; frozen
embeddings + first two layers 0.773. Synthetic questions for the unasked passages (GPL / InPars style): prompted,
the packaged SmolLM2-135M (Q4_1) writes unusable ones ("What is the answer to this question?", or copies of its
few-shot examples); LoRA-tuned on the 302 training pairs as a passage -> question generator (doc2query, 2 epochs,
r=16) it writes plausible ones ("Which mineral wool is best?" for "Which insulation is best?"), but often generic
ones ("What is the appeal?"), and training on them lowers held-out MRR@10 (``benchmarks/synthetic_queries.py``,
training seeds 42 and 1: real pairs only 0.776; plus three sampled questions per unasked passage 0.741; plus those
the base model ranks first 0.773; a throwaway run with one greedy question per passage 0.766); appending them to
the passages (doc2query expansion) lowers the untuned model's 0.693 to 0.626-0.688. Score ensembles do not help
either: the fine-tuned model mixed with the base model (0.6 / 0.75 / 0.9 of the fine-tuned score) 0.774 / 0.779 /
0.779, two seeds averaged 0.786 / 0.775, all four 0.778. What does move it is a bigger model's knowledge:
distilling the packaged all-mpnet-base-v2, fine-tuned on the same pairs, into MiniLM (``teacher="mpnet"``, see
``customization.distillation``) gives 0.804 / 0.708 over three seeds (+16.0% / +20.6%), at ~9x the CPU training
time. The defaults are plain MNRL at lr 5e-5 over the feedback pairs plus the agent-marked negatives (real
judgements, which the FAQ benchmark does not have); the teacher, mining, pseudo-queries and warm-up are opt-in:

1. Feedback pairs (query -> agent-confirmed passage) below ``min_pair_weight`` are dropped.
2. Hard negatives: the agent-marked irrelevant passages first; with ``mine`` on, pairs without one get a negative
   mined from the live corpus with ``sentence_transformers.util.mine_hard_negatives`` using the *base* model. A mined
   candidate whose score is within ``relative_margin`` of the positive's score is skipped (likely a false negative).
   Mining is off by default: on the FAQ benchmark it did not help (see below).
3. Domain adaptation on the live corpus: every passage (with feedback or not) yields ``pseudo_queries_per_passage``
   inverse-cloze pairs (a sentence of the passage -> the rest of it), mixed with the feedback rows.
4. ``MultipleNegativesRankingLoss`` (cached variant when the batch is larger than ``mini_batch_size``), in-batch
   negatives plus the hard ones, a batch sampler that never puts the same text twice in a batch, linear decay
   (warm-up opt-in), a fixed seed; the model is saved to ``output_dir``. Nothing is read from or sent to the hub.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError, NotEnoughDataError
from core.ports import ProgressCallback
from core.types import ContrastivePair
from customization.distillation import check_teacher
from customization.progress import part_of, quiet, trainer_callback

logger = logging.getLogger(__name__)

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


@dataclass(slots=True)
class EmbedderTrainingConfig:
    """Hyper-parameters of embedder fine-tuning. CPU-friendly defaults; every field documents itself."""

    epochs: int = field(default=3, metadata={"help": "passes over the training rows"})
    batch_size: int = field(
        default=32, metadata={"help": "rows per step; every other row of the batch is an in-batch negative"}
    )
    mini_batch_size: int = field(
        default=32,
        metadata={"help": "batches larger than this use CachedMultipleNegativesRankingLoss with this mini-batch"},
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of steps with linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    scale: float = field(default=20.0, metadata={"help": "MNRL similarity scale (inverse temperature)"})
    symmetric: bool = field(
        default=False, metadata={"help": "also rank queries given passages (MultipleNegativesSymmetricRankingLoss)"}
    )
    max_seq_length: int = field(default=128, metadata={"help": "token truncation during training"})
    seed: int = field(default=42, metadata={"help": "seed for sampling, shuffling and initialisation"})
    min_pairs: int = field(default=16, metadata={"help": "fewest usable feedback pairs needed to train"})
    min_pair_weight: float = field(
        default=0.0, metadata={"help": "feedback pairs with a confidence weight below this are dropped"}
    )
    hard_negatives: int = field(
        default=1, metadata={"help": "hard negatives per feedback pair (agent-marked first, then mined); 0: none"}
    )
    mine: bool = field(
        default=False,
        metadata={
            "help": "mine a negative from the live corpus for pairs without an agent-marked one (off: on the FAQ "
            "benchmark mined negatives did not help, 0.767 vs 0.795 MRR@10 at the same seed)"
        },
    )
    relative_margin: float = field(
        default=0.05,
        metadata={"help": "mined negatives scoring above (1 - margin) x the positive's score are dropped"},
    )
    mining_range_max: int = field(default=30, metadata={"help": "mine negatives among the top-N corpus hits only"})
    pseudo_queries_per_passage: int = field(
        default=0, metadata={"help": "inverse-cloze pairs per corpus passage for domain adaptation; 0: off"}
    )
    pseudo_query_min_words: int = field(default=4, metadata={"help": "shortest sentence used as a pseudo-query"})
    ict_remove_sentence: bool = field(
        default=True, metadata={"help": "remove the pseudo-query sentence from its passage (inverse cloze task)"}
    )
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "distill from a bigger model: 'mpnet' (the packaged all-mpnet-base-v2) or a sentence-transformers "
            "dir; None: off (see customization.distillation; on 2 CPU cores it adds ~10 min per 300 pairs)"
        },
    )
    teacher_fine_tune: bool = field(
        default=True, metadata={"help": "fine-tune the teacher on the same pairs before it labels the student's rows"}
    )
    distill_queries_per_passage: int = field(
        default=2, metadata={"help": "corpus sentences per passage the teacher labels as extra queries (with teacher)"}
    )
    distill_ce_weight: float = field(
        default=0.0,
        metadata={"help": "weight of the in-batch cross-entropy on feedback rows next to the teacher's KL term"},
    )
    device: str | None = field(default=None, metadata={"help": "cpu / cuda; default: cuda when present"})
    show_progress: bool = field(default=True, metadata={"help": "show a progress bar while training"})

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "mini_batch_size", "max_seq_length", "min_pairs", "mining_range_max"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"embedder training {name} must be >= 1", field=name)
        if not 0.0 <= self.relative_margin < 1.0:
            raise InvalidInputError("relative_margin must be in [0, 1)", field="relative_margin")
        if self.learning_rate <= 0:
            raise InvalidInputError("learning_rate must be > 0", field="learning_rate")
        if self.distill_queries_per_passage < 0 or self.distill_ce_weight < 0:
            raise InvalidInputError("distillation settings must be >= 0", field="distill_queries_per_passage")
        check_teacher(self.teacher)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the registry manifest)."""
        return asdict(self)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any], **defaults: Any) -> EmbedderTrainingConfig:
        """``defaults`` updated by ``overrides`` (user input: a job's or a simulation's recipe). Raises
        ``InvalidInputError`` naming the valid fields for an unknown key, for a value of another type than the field
        declares, and for a value the config's own checks refuse."""
        declared = {f.name: str(f.type).replace(" ", "") for f in fields(cls)}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise InvalidInputError(
                f"unknown embedder training setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(declared))}",
                field="training",
            )
        for key, value in overrides.items():
            _check_type(key, value, declared[key])
        return cls(**{**defaults, **overrides})


_JSON_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_type(key: str, value: Any, declared: str) -> None:
    """``InvalidInputError`` unless ``value`` (user input, e.g. JSON) has the field's declared type (``int | None``
    style annotations; a bool is not accepted as a number)."""
    base = declared.removesuffix("|None")
    if value is None and base != declared:
        return
    allowed = _JSON_TYPES.get(base)
    if allowed is None:
        return
    if not isinstance(value, allowed) or (isinstance(value, bool) and base != "bool"):
        raise InvalidInputError(f"embedder training setting {key} must be {base}, got {value!r}", field="training")


@dataclass(slots=True)
class TrainingRows:
    """The rows handed to the trainer and where they came from."""

    anchors: list[str]
    positives: list[str]
    negatives: list[str] | None
    stats: dict[str, int]


def split_sentences(text: str, *, min_words: int) -> list[str]:
    """Sentences of ``text`` with at least ``min_words`` words."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if len(s.split()) >= min_words]


def pseudo_query_pairs(
    passages: Sequence[str], *, per_passage: int, min_words: int, remove: bool, seed: int
) -> list[tuple[str, str]]:
    """Inverse-cloze pairs ``(sentence, passage without it)`` for passages with at least two usable sentences."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    for passage in dict.fromkeys(passages):  # de-duplicated, order kept
        sentences = split_sentences(passage, min_words=min_words)
        if len(sentences) < 2:
            continue
        for sentence in rng.sample(sentences, min(per_passage, len(sentences))):
            rest = " ".join(s for s in sentences if s != sentence) if remove else passage
            pairs.append((sentence, rest))
    return pairs


def usable_pairs(pairs: Sequence[ContrastivePair], config: EmbedderTrainingConfig) -> list[ContrastivePair]:
    """Pairs with a non-empty query and positive and enough weight. Raises ``NotEnoughDataError`` if too few."""
    usable = [p for p in pairs if p.query.strip() and p.positive.strip() and p.weight >= config.min_pair_weight]
    if len(usable) < config.min_pairs:
        raise NotEnoughDataError(
            f"embedder training needs at least {config.min_pairs} usable contrastive pairs, got {len(usable)}",
            have=len(usable),
            need=config.min_pairs,
        )
    return usable


def mine_negatives(
    model: Any, pairs: Sequence[tuple[str, str]], *, corpus: Sequence[str], config: EmbedderTrainingConfig
) -> dict[int, str]:
    """Index of pair -> one mined hard negative (pairs for which none passes the false-negative guard are absent)."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    if not pairs or not corpus:
        return {}
    rows = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    mined = mine_hard_negatives(
        rows,
        model,
        anchor_column_name="anchor",
        positive_column_name="positive",
        corpus=list(dict.fromkeys(corpus)),
        range_max=config.mining_range_max,
        relative_margin=config.relative_margin,
        num_negatives=1,
        sampling_strategy="top",
        output_format="triplet",
        batch_size=64,
        use_faiss=False,
        verbose=False,
    )
    by_pair = {(a, p): n for a, p, n in zip(mined["anchor"], mined["positive"], mined["negative"], strict=True)}
    return {i: by_pair[pair] for i, pair in enumerate(pairs) if pair in by_pair}


def build_rows(
    pairs: Sequence[ContrastivePair], *, model: Any, corpus: Sequence[str], config: EmbedderTrainingConfig
) -> TrainingRows:
    """Feedback pairs + hard negatives (agent-marked, then mined) + corpus pseudo-query pairs, as trainer rows.

    Rows that end up without any negative (none marked, none mined past the guard) are kept with a negative drawn
    from another passage of the corpus at random, so every row has the same shape; the count is in ``stats``.
    """
    base = [(p.query, p.positive) for p in pairs]
    pseudo = pseudo_query_pairs(
        corpus,
        per_passage=config.pseudo_queries_per_passage,
        min_words=config.pseudo_query_min_words,
        remove=config.ict_remove_sentence,
        seed=config.seed,
    )
    anchors = [a for a, _ in base] + [a for a, _ in pseudo]
    positives = [p for _, p in base] + [p for _, p in pseudo]
    stats = {"feedback_pairs": len(base), "pseudo_pairs": len(pseudo), "agent_negatives": 0, "mined_negatives": 0}
    if config.hard_negatives < 1:
        return TrainingRows(anchors, positives, None, {**stats, "random_negatives": 0})
    negatives: list[str | None] = [p.negatives[0] if p.negatives else None for p in pairs] + [None] * len(pseudo)
    stats["agent_negatives"] = sum(n is not None for n in negatives)
    if config.mine:
        todo = [i for i, n in enumerate(negatives) if n is None]
        mined = mine_negatives(model, [(anchors[i], positives[i]) for i in todo], corpus=corpus, config=config)
        for j, neg in mined.items():
            negatives[todo[j]] = neg
        stats["mined_negatives"] = len(mined)
    if not any(n is not None for n in negatives):  # nothing marked or mined: plain in-batch negatives
        return TrainingRows(anchors, positives, None, {**stats, "random_negatives": 0})
    rng = random.Random(config.seed)
    pool = list(dict.fromkeys(corpus)) or positives
    filled = [n if n is not None else _random_other(rng, pool, positives[i]) for i, n in enumerate(negatives)]
    stats["random_negatives"] = sum(n is None for n in negatives)
    return TrainingRows(anchors, positives, filled, stats)


def _random_other(rng: random.Random, pool: Sequence[str], positive: str) -> str:
    for _ in range(10):
        candidate = rng.choice(pool)
        if candidate != positive:
            return candidate
    return ""


def _loss(model: Any, config: EmbedderTrainingConfig) -> Any:
    from sentence_transformers import losses  # type: ignore[attr-defined]

    cached = config.batch_size > config.mini_batch_size
    if config.symmetric:
        if cached:
            return losses.CachedMultipleNegativesSymmetricRankingLoss(
                model, scale=config.scale, mini_batch_size=config.mini_batch_size
            )
        return losses.MultipleNegativesSymmetricRankingLoss(model, scale=config.scale)
    if cached:
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=config.scale, mini_batch_size=config.mini_batch_size
        )
    return losses.MultipleNegativesRankingLoss(model, scale=config.scale)


def training_arguments(config: EmbedderTrainingConfig, *, output_dir: Path, device: str) -> Any:
    """``SentenceTransformerTrainingArguments`` for ``config``: no hub, no reporting, no checkpoints, seeded."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.training_args import BatchSamplers

    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers v5: a float < 1 is a ratio of the total steps
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="no",
        report_to="none",
        push_to_hub=False,
        logging_steps=max(1, config.epochs * 1000),
        disable_tqdm=not config.show_progress,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )


def load_sentence_transformer(path: Path, *, device: str, max_seq_length: int | None = None) -> Any:
    """Load a sentence-transformers model strictly from a directory. ``InvalidInputError`` if it is not one."""
    from sentence_transformers import SentenceTransformer

    if not Path(path).is_dir() or not (Path(path) / "config.json").is_file():
        raise InvalidInputError(f"not a sentence-transformers model directory: {path}", field="base_model_path")
    try:
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"cannot load a sentence-transformers model from {path}: {exc}") from exc
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def train_embedder(
    pairs: Sequence[ContrastivePair],
    *,
    base_model_path: Path | str,
    corpus_passages: Sequence[str],
    output_dir: Path | str,
    config: EmbedderTrainingConfig | None = None,
    base_models_dir: Path | str | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Fine-tune the embedder at ``base_model_path`` on ``pairs`` and save it to ``output_dir``; return metrics.

    ``corpus_passages`` is the live corpus (mining, pseudo-query pairs, the teacher's extra queries).
    ``base_models_dir`` is where a packaged teacher is extracted (``config.teacher == "mpnet"``). Raises
    ``NotEnoughDataError`` when fewer than ``config.min_pairs`` usable pairs are given and ``InvalidInputError`` for a
    base model or teacher that cannot be loaded. Metrics: row counts by source, ``train_loss``, ``train_seconds``,
    ``steps`` (and ``teacher_*`` figures when distilling). ``on_progress(step, steps)`` follows the optimizer steps
    (the teacher's fine-tune and the student's run as two halves when distilling); what it raises stops training.
    """
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import set_seed

    config = config or EmbedderTrainingConfig()
    usable = usable_pairs(pairs, config)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(output_dir)
    teacher: Any = None
    teacher_metrics: dict[str, Any] = {}
    if config.teacher:
        teacher, teacher_metrics = _prepare_teacher(
            usable, corpus_passages, config, out, base_models_dir, device, on_progress=part_of(on_progress, 0, 2)
        )
        on_progress = part_of(on_progress, 1, 2)
    set_seed(config.seed)
    model = load_sentence_transformer(Path(base_model_path), device=device, max_seq_length=config.max_seq_length)
    rows = build_rows(usable, model=model, corpus=corpus_passages, config=config)
    columns: dict[str, list[Any]] = {"anchor": rows.anchors, "positive": rows.positives}
    if rows.negatives is not None:
        columns["negative"] = rows.negatives
    if teacher is None:
        loss = _loss(model, config)
    else:
        from customization.distillation import distillation_loss, distillation_rows

        labelled = distillation_rows(
            teacher, anchors=rows.anchors, positives=rows.positives, negatives=rows.negatives,
            corpus=corpus_passages, per_passage=config.distill_queries_per_passage,
            min_words=config.pseudo_query_min_words, seed=config.seed,
        )  # fmt: skip
        del teacher
        _remove_trainer_dir(out / ".teacher")
        columns = labelled.columns
        loss = distillation_loss(model, scale=config.scale, ce_weight=config.distill_ce_weight)
        teacher_metrics.update(labelled.stats)
    trainer = quiet(SentenceTransformerTrainer(
        model=model,
        args=training_arguments(config, output_dir=out / ".trainer", device=device),
        train_dataset=Dataset.from_dict(columns).shuffle(seed=config.seed),
        loss=loss,
        callbacks=[trainer_callback(on_progress)] if on_progress is not None else None,
    ))
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    model.save_pretrained(str(out))
    _remove_trainer_dir(out / ".trainer")
    metrics: dict[str, Any] = {**rows.stats, **teacher_metrics, "rows": len(columns["anchor"])}
    metrics.update(train_loss=float(result.training_loss), train_seconds=round(seconds, 2))
    metrics.update(steps=int(result.global_step), device=device)
    logger.info("embedder trained rows=%d steps=%d seconds=%.1f", metrics["rows"], metrics["steps"], seconds)
    return metrics


def _prepare_teacher(
    pairs: Sequence[ContrastivePair],
    corpus: Sequence[str],
    config: EmbedderTrainingConfig,
    out: Path,
    base_models_dir: Path | str | None,
    device: str,
    *,
    on_progress: ProgressCallback | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The teacher model, fine-tuned on ``pairs`` first (into ``out/.teacher``) unless ``teacher_fine_tune`` is off."""
    from dataclasses import replace

    from customization.distillation import resolve_teacher

    path = resolve_teacher(str(config.teacher), base_models_dir=Path(base_models_dir) if base_models_dir else None)
    metrics: dict[str, Any] = {"teacher": str(config.teacher)}
    if config.teacher_fine_tune:
        logger.info("fine-tuning the teacher %s on %d pairs", path, len(pairs))
        tuned = train_embedder(pairs, base_model_path=path, corpus_passages=corpus, output_dir=out / ".teacher",
                               config=replace(config, teacher=None), on_progress=on_progress)  # fmt: skip
        metrics.update(teacher_train_seconds=tuned["train_seconds"], teacher_steps=tuned["steps"])
        path = out / ".teacher"
    return load_sentence_transformer(path, device=device, max_seq_length=config.max_seq_length), metrics


def _remove_trainer_dir(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "EmbedderTrainingConfig",
    "TrainingRows",
    "build_rows",
    "load_sentence_transformer",
    "mine_negatives",
    "pseudo_query_pairs",
    "train_embedder",
    "training_arguments",
    "usable_pairs",
]
