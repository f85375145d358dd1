"""LoRA supervised fine-tuning of the causal-LM generator (peft) on curated SFT examples.

Each example becomes the chat prompt of :mod:`core.prompts` (the exact prompt the query path's ``HFGenerator``
sends) followed by the target answer and the end-of-turn token; the loss covers the answer tokens only (prompt labels
are ``-100``). A plain PyTorch loop (AdamW, linear warm-up/decay, gradient clipping) keeps the step cost at the
model's forward/backward; only the adapter weights are saved (``adapter_config.json`` + ``adapter_model.safetensors``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError, NotEnoughDataError
from core.ports import ProgressCallback
from core.prompts import build_messages
from core.types import SftExample

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(slots=True)
class LoraConfig:
    """Hyper-parameters of LoRA SFT. CPU-friendly defaults for the 135M model; every field documents itself."""

    rank: int = field(default=8, metadata={"help": "LoRA rank r (adapter width)"})
    alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha (effective scale alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "names of the linear layers that get adapters"},
    )
    epochs: int = field(default=2, metadata={"help": "passes over the SFT examples"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak AdamW learning rate"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of steps with linear warm-up"})
    batch_size: int = field(default=4, metadata={"help": "examples per optimiser step"})
    max_length: int = field(default=384, metadata={"help": "prompt + answer tokens; the prompt is cut from the left"})
    max_passages: int = field(default=3, metadata={"help": "context passages put in each training prompt"})
    max_passage_chars: int = field(default=600, metadata={"help": "characters kept per context passage"})
    min_examples: int = field(default=8, metadata={"help": "fewest SFT examples needed to train"})
    seed: int = field(default=42, metadata={"help": "seed for shuffling and adapter initialisation"})
    device: str | None = field(default=None, metadata={"help": "cpu / cuda; default: cuda when present"})
    show_progress: bool = field(default=True, metadata={"help": "show a progress bar while training"})

    def __post_init__(self) -> None:
        for name in ("rank", "alpha", "epochs", "batch_size", "max_length", "max_passages", "min_examples"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"LoRA {name} must be >= 1", field=name)
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInputError("LoRA dropout must be in [0, 1)", field="dropout")
        if not self.target_modules:
            raise InvalidInputError("LoRA target_modules must not be empty", field="target_modules")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the registry manifest)."""
        return asdict(self)


def encode_example(tokenizer: Any, example: SftExample, config: LoraConfig) -> dict[str, list[int]]:
    """Token ids and labels of one example: the prompt is masked (``-100``), the answer + end token are learned."""
    messages = build_messages(
        example.query, example.contexts[: config.max_passages], max_passage_chars=config.max_passage_chars
    )
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    end = tokenizer.eos_token or ""
    answer_ids = tokenizer(example.target.strip() + end, add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: max(1, config.max_length // 2)]
    prompt_ids = prompt_ids[-(config.max_length - len(answer_ids)) :]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def collate(batch: Sequence[dict[str, list[int]]], *, pad_id: int) -> dict[str, Any]:
    """Right-pad a batch to its longest row; padding is masked in attention and labels."""
    import torch

    width = max(len(row["input_ids"]) for row in batch)
    ids, labels, mask = [], [], []
    for row in batch:
        pad = width - len(row["input_ids"])
        ids.append(row["input_ids"] + [pad_id] * pad)
        labels.append(row["labels"] + [IGNORE_INDEX] * pad)
        mask.append([1] * len(row["input_ids"]) + [0] * pad)
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def check_examples(examples: Sequence[SftExample], config: LoraConfig) -> list[SftExample]:
    """Examples with a query and a target. Raises ``NotEnoughDataError`` when fewer than ``min_examples``."""
    usable = [e for e in examples if e.query.strip() and e.target.strip()]
    if len(usable) < config.min_examples:
        raise NotEnoughDataError(
            f"generator training needs at least {config.min_examples} SFT examples, got {len(usable)}",
            have=len(usable),
            need=config.min_examples,
        )
    return usable


def _peft_model(model: Any, config: LoraConfig) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in config.target_modules if t not in names]
    if missing:
        raise InvalidInputError(f"the base model has no modules named {missing} (LoRA target_modules)")
    peft_config = PeftLoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )
    return get_peft_model(model, peft_config)


Encoder = Callable[[Any, SftExample, LoraConfig], dict[str, list[int]]]


def train_generator_adapter(
    examples: Sequence[SftExample],
    *,
    base_model_dir: Path | str,
    output_dir: Path | str,
    config: LoraConfig | None = None,
    encode: Encoder = encode_example,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter for the causal LM in ``base_model_dir`` and save it to ``output_dir``; return metrics.

    ``encode(tokenizer, example, config)`` turns an example into ``input_ids`` / ``labels``; the default is the
    generator's answer prompt (:func:`encode_example`), which the query path serves; another encoder trains another
    task (``benchmarks/synthetic_queries.py``: passage -> question) and is recorded in ``sft_prompt.json``.

    Raises ``NotEnoughDataError`` (too few examples) and ``InvalidInputError`` (not a loadable causal LM with a chat
    template, or target modules it does not have). Metrics: ``examples``, ``steps``, ``train_loss`` (mean of the last
    epoch), ``first_loss``, ``train_seconds``. ``on_progress(step, steps)`` follows the optimizer steps; what it raises
    stops training.
    """
    import torch
    from transformers import set_seed

    config = config or LoraConfig()
    usable = check_examples(examples, config)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    set_seed(config.seed)
    tokenizer, base = _load_base(Path(base_model_dir), device=device)
    model = _peft_model(base, config)
    rows = [encode(tokenizer, e, config) for e in usable]
    started = time.perf_counter()
    losses = _train_loop(
        model, rows, pad_id=tokenizer.pad_token_id, config=config, device=device, on_progress=on_progress
    )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    prompt = "core.prompts.build_messages" if encode is encode_example else f"{encode.__module__}.{encode.__qualname__}"
    (out / "sft_prompt.json").write_text(json.dumps({"format": prompt}), encoding="utf-8")
    seconds = time.perf_counter() - started
    last = losses[-max(1, len(losses) // config.epochs) :]
    metrics: dict[str, Any] = {
        "examples": len(rows),
        "steps": len(losses),
        "first_loss": losses[0],
        "train_loss": sum(last) / len(last),
    }
    metrics.update(train_seconds=round(seconds, 2), device=device, base_model=Path(base_model_dir).name)
    logger.info("generator adapter trained examples=%d steps=%d seconds=%.1f", len(rows), len(losses), seconds)
    return metrics


def _load_base(model_dir: Path, *, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = model_dir / "config.json"
    if not config.is_file():
        raise InvalidInputError(f"not a Hugging Face model directory (no config.json): {model_dir}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"cannot load a causal LM from {model_dir}: {exc}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInputError(f"the tokenizer in {model_dir} has no chat template")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.to(device)  # type: ignore[arg-type]


def _train_loop(
    model: Any,
    rows: list[dict[str, list[int]]],
    *,
    pad_id: int,
    config: LoraConfig,
    device: str,
    on_progress: ProgressCallback | None = None,
) -> list[float]:
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    rng = random.Random(config.seed)
    steps_per_epoch = (len(rows) + config.batch_size - 1) // config.batch_size
    total = steps_per_epoch * config.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, int(total * config.warmup_ratio), total)
    model.train()
    losses: list[float] = []
    with tqdm(total=total, desc="lora", disable=not config.show_progress) as bar:
        for _epoch in range(config.epochs):
            order = list(range(len(rows)))
            rng.shuffle(order)
            for start in range(0, len(order), config.batch_size):
                batch = collate([rows[i] for i in order[start : start + config.batch_size]], pad_id=pad_id)
                loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                if on_progress is not None:
                    on_progress(len(losses), total)
    model.eval()
    return losses


__all__ = ["IGNORE_INDEX", "LoraConfig", "check_examples", "collate", "encode_example", "train_generator_adapter"]
