"""Cross-encoder reranker trained from agent relevance judgements.

No pretrained cross-encoder ships in any package, so the reranker starts from the MiniLM encoder weights (a fresh
one-logit classification head, ``num_labels=1``) and learns only from the project's own (query, passage, relevant?)
examples with ``BinaryCrossEntropyLoss``. The trained model is saved as a sentence-transformers ``CrossEncoder``
directory, loadable by ``retrieval.reranker.CrossEncoderReranker``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError, NotEnoughDataError
from core.ports import ProgressCallback
from core.types import RelevanceExample
from customization.progress import quiet, trainer_callback

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RerankerTrainingConfig:
    """Hyper-parameters of reranker training. CPU-friendly defaults; every field documents itself."""

    epochs: int = field(default=2, metadata={"help": "passes over the relevance examples"})
    batch_size: int = field(default=16, metadata={"help": "(query, passage) pairs per step"})
    learning_rate: float = field(default=3e-5, metadata={"help": "peak AdamW learning rate"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps with linear warm-up"})
    max_length: int = field(default=256, metadata={"help": "token truncation of query + passage"})
    min_examples: int = field(default=16, metadata={"help": "fewest relevance examples needed to train"})
    min_per_class: int = field(default=2, metadata={"help": "fewest relevant and irrelevant examples each"})
    seed: int = field(default=42, metadata={"help": "seed for shuffling and head initialisation"})
    device: str | None = field(default=None, metadata={"help": "cpu / cuda; default: cuda when present"})
    show_progress: bool = field(default=True, metadata={"help": "show a progress bar while training"})

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_length", "min_examples"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"reranker training {name} must be >= 1", field=name)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the registry manifest)."""
        return asdict(self)


def check_examples(examples: Sequence[RelevanceExample], config: RerankerTrainingConfig) -> list[RelevanceExample]:
    """Usable examples. Raises ``NotEnoughDataError`` when too few, or too few of either class."""
    usable = [e for e in examples if e.query.strip() and e.passage.strip() and 0.0 <= e.label <= 1.0]
    if len(usable) < config.min_examples:
        raise NotEnoughDataError(
            f"reranker training needs at least {config.min_examples} relevance examples, got {len(usable)}",
            have=len(usable),
            need=config.min_examples,
        )
    positives = sum(e.label >= 0.5 for e in usable)
    fewest = min(positives, len(usable) - positives)
    if fewest < config.min_per_class:
        raise NotEnoughDataError(
            f"reranker training needs at least {config.min_per_class} relevant and irrelevant examples each, "
            f"got {positives} relevant and {len(usable) - positives} irrelevant",
            have=fewest,
            need=config.min_per_class,
        )
    return usable


def _load_cross_encoder(base_model_path: Path, *, device: str, max_length: int) -> Any:
    from sentence_transformers import CrossEncoder

    if not base_model_path.is_dir() or not (base_model_path / "config.json").is_file():
        raise InvalidInputError(f"not a transformer model directory: {base_model_path}", field="base_model_path")
    try:
        return CrossEncoder(
            str(base_model_path), num_labels=1, max_length=max_length, device=device, local_files_only=True
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"cannot build a cross-encoder from {base_model_path}: {exc}") from exc


def train_reranker(
    examples: Sequence[RelevanceExample],
    *,
    base_model_path: Path | str,
    output_dir: Path | str,
    config: RerankerTrainingConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train a cross-encoder from ``base_model_path`` (MiniLM) on ``examples``; save to ``output_dir``; metrics.

    ``on_progress(step, steps)`` follows the optimizer steps; what it raises stops training.

    Raises ``NotEnoughDataError`` (too few examples or a missing class) and ``InvalidInputError`` (bad base model).
    """
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    config = config or RerankerTrainingConfig()
    usable = check_examples(examples, config)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    set_seed(config.seed)
    model = _load_cross_encoder(Path(base_model_path), device=device, max_length=config.max_length)
    data = Dataset.from_dict(
        {"query": [e.query for e in usable], "passage": [e.passage for e in usable], "label": [e.label for e in usable]}
    )
    out = Path(output_dir)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / ".trainer"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="no",
        report_to="none",
        push_to_hub=False,
        disable_tqdm=not config.show_progress,
        use_cpu=device == "cpu",
        logging_steps=10_000,
    )
    trainer = quiet(CrossEncoderTrainer(
        model=model, args=args, train_dataset=data.shuffle(seed=config.seed), loss=BinaryCrossEntropyLoss(model),
        callbacks=[trainer_callback(on_progress)] if on_progress is not None else None,
    ))  # fmt: skip
    started = time.perf_counter()
    result = trainer.train()
    model.save_pretrained(str(out))
    shutil.rmtree(out / ".trainer", ignore_errors=True)
    positives = sum(e.label >= 0.5 for e in usable)
    metrics: dict[str, Any] = {"examples": len(usable), "relevant": positives, "irrelevant": len(usable) - positives}
    metrics.update(train_loss=float(result.training_loss), steps=int(result.global_step), device=device)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    logger.info("reranker trained examples=%d steps=%d", len(usable), metrics["steps"])
    return metrics


__all__ = ["RerankerTrainingConfig", "check_examples", "train_reranker"]
