"""Local Hugging Face causal-LM adapter of the ``Generator`` port, with an optional peft LoRA adapter.

The model (and adapter) are loaded once, by path, in the constructor. Prompts come from :mod:`core.prompts` (the
same builder LoRA SFT trains with) through the tokenizer's chat template; decoding is greedy, so the same question
and passages give the same answer, and answers are cached by prompt (bounded). Prompts are batched by length.
Citation markers in the output are kept and validated.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.prompts import DEFAULT_MAX_PASSAGE_CHARS, build_messages, ensure_citations
from core.types import Answer, Citation

logger = logging.getLogger(__name__)

_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError)


def _check_model_dir(model_dir: Path) -> None:
    config = model_dir / "config.json"
    if not model_dir.is_dir() or not config.is_file():
        raise InvalidInputError(f"not a Hugging Face model directory (no config.json): {model_dir}", field="model_dir")
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"unreadable config.json in {model_dir}: {exc}", field="model_dir") from exc
    archs = raw.get("architectures") or []
    if archs and not any(a.endswith("ForCausalLM") for a in archs):
        raise InvalidInputError(
            f"model in {model_dir} is not a causal language model (architectures={archs})", field="model_dir"
        )


def load_causal_lm(model_dir: Path, *, device: str) -> tuple[Any, Any]:
    """Load tokenizer + causal LM from ``model_dir``. Raises ``InvalidInputError`` for an incompatible directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_model_dir(model_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)  # type: ignore[arg-type]
    except _LOAD_ERRORS as exc:
        raise InvalidInputError(f"cannot load a causal LM from {model_dir}: {exc}", field="model_dir") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInputError(f"the tokenizer in {model_dir} has no chat template", field="model_dir")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.to(device)  # type: ignore[arg-type]


def load_adapter(model: Any, adapter_dir: Path) -> Any:
    """Apply the LoRA adapter in ``adapter_dir`` to ``model`` and merge it. ``InvalidInputError`` if corrupt."""
    from peft import PeftModel
    from safetensors import SafetensorError

    if not (adapter_dir / "adapter_config.json").is_file():
        raise InvalidInputError(f"not a LoRA adapter directory (no adapter_config.json): {adapter_dir}")
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        return peft_model.merge_and_unload()
    except (*_LOAD_ERRORS, SafetensorError) as exc:
        raise InvalidInputError(f"corrupt or incompatible LoRA adapter in {adapter_dir}: {exc}") from exc


class HFGenerator:
    """``Generator`` over a local HF causal LM (e.g. the converted SmolLM2-135M-Instruct) + optional LoRA adapter.

    Args:
        model_dir: HF causal-LM checkpoint directory with a chat template.
        adapter_dir: optional peft LoRA adapter directory trained on ``model_dir`` (merged at load time).
        max_new_tokens: generation budget per answer.
        version: reported version (default: the adapter dir's parent name, else ``hf:{model dir name}``).
        device: ``cpu`` / ``cuda``; default the best available.
        max_passages: passages put in the prompt (the first ones, in retrieval order).
        max_passage_chars: characters kept per prompt passage.
        answer_cache: answers kept by prompt (question + passages), newest first: decoding is greedy, so a prompt
            answered before (the live arm re-measured, a question asked again) is not generated again; 0 keeps none.
    Raises:
        InvalidInputError: an incompatible model directory or a corrupt adapter.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        adapter_dir: Path | str | None = None,
        max_new_tokens: int = 160,
        version: str | None = None,
        device: str | None = None,
        max_passages: int = 5,
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
        answer_cache: int = 4096,
    ) -> None:
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model_dir = Path(model_dir)
        self.tokenizer, model = load_causal_lm(self.model_dir, device=self.device)
        if adapter_dir is not None:
            model = load_adapter(model, Path(adapter_dir))
        self.model = model.eval()
        self.max_new_tokens = max_new_tokens
        self.max_passages = max_passages
        self.max_passage_chars = max_passage_chars
        self._version = version or f"hf:{self.model_dir.name}"
        self.answer_cache = answer_cache
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], str] = OrderedDict()
        self._lock = threading.Lock()
        logger.info("hf generator loaded version=%s adapter=%s", self._version, adapter_dir is not None)

    @property
    def version(self) -> str:
        """Base model name or registered adapter version."""
        return self._version

    def generate(self, question: str, passages: Sequence[Citation]) -> Answer:
        """Greedy answer to ``question`` from the first ``max_passages`` passages, with ``[i]`` citation markers."""
        return self.generate_many([question], [passages])[0]

    def generate_many(
        self, questions: Sequence[str], passages: Sequence[Sequence[Citation]], *, batch_size: int = 8
    ) -> list[Answer]:
        """Answers to several questions (each with its own passages), generated in left-padded batches of similar
        prompt length (less padding to compute); a prompt answered before is served from the answer cache."""
        if len(questions) != len(passages):
            raise InvalidInputError("questions and passages must have the same length")
        cited = [tuple(p[: self.max_passages]) for p in passages]
        keys = [(" ".join(q.split()), tuple(c.text for c in group)) for q, group in zip(questions, cited, strict=True)]
        with self._lock:
            raw = {k: self._cache[k] for k in keys if k in self._cache}
        todo = list(dict.fromkeys(k for k in keys if k not in raw))
        prompts = {k: self._prompt(*k) for k in todo}
        todo.sort(key=lambda k: len(prompts[k]))
        for start in range(0, len(todo), max(1, batch_size)):
            batch = todo[start : start + max(1, batch_size)]
            raw.update(zip(batch, self._batch([prompts[k] for k in batch]), strict=True))
        with self._lock:
            for key in todo:
                self._cache[key] = raw[key]
            while len(self._cache) > self.answer_cache:
                self._cache.popitem(last=False)
        return [
            Answer(text=ensure_citations(raw[k], k[1]), citations=c, generator_version=self.version)
            for k, c in zip(keys, cited, strict=True)
        ]

    def _prompt(self, question: str, texts: Sequence[str]) -> str:
        messages = build_messages(question, texts, max_passage_chars=self.max_passage_chars)
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    def _batch(self, prompts: list[str]) -> list[str]:
        import torch

        self.tokenizer.padding_side = "left"
        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with self._lock, torch.no_grad():
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
            )
        decoded = self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [text.strip() for text in decoded]


__all__ = ["HFGenerator", "load_adapter", "load_causal_lm"]
