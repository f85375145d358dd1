"""Fixtures of the customization tests: tiny real models built in temp dirs (seconds, no downloads).

* ``tiny_lm_dir``: a randomly initialised 2-layer ``LlamaForCausalLM`` with a word-level tokenizer and a ChatML chat
  template (the format SmolLM2 uses), so LoRA SFT and ``HFGenerator`` run real steps in well under a second each.
* ``faq_pairs`` / ``faq_passages``: a handful of built-in FAQ rows as contrastive pairs and corpus passages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.types import ContrastivePair, RelevanceExample, SftExample

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials, vocab_size=2000))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token=None
    )
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory, faq: list[dict[str, Any]]) -> Path:
    """A tiny random causal LM + tokenizer with a chat template, saved once per session."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.prompts import SYSTEM_PROMPT

    texts = [SYSTEM_PROMPT, "Passages: Question: Answer with citations: system user assistant [1] [2] [3]"]
    texts += [row["q"] + " " + row["a"] for row in faq[:40]]
    tokenizer = _tiny_tokenizer(texts)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    path = tmp_path_factory.mktemp("tiny-lm")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def faq_passages(faq: list[dict[str, Any]]) -> list[str]:
    """24 FAQ answers (the corpus of the small training tests)."""
    return [row["a"] for row in faq[:24]]


@pytest.fixture(scope="session")
def faq_pairs(faq: list[dict[str, Any]]) -> list[ContrastivePair]:
    """16 question -> answer pairs; the first four carry an agent-marked irrelevant passage."""
    pairs = []
    for i, row in enumerate(faq[:16]):
        negatives = [faq[i + 1]["a"]] if i < 4 else []
        pairs.append(ContrastivePair(query=row["q"], positive=row["a"], negatives=negatives, provenance=[f"ev{i}"]))
    return pairs


@pytest.fixture(scope="session")
def sft_examples(faq: list[dict[str, Any]]) -> list[SftExample]:
    """8 SFT examples (question, its answer + a neighbour as context, the answer with a marker as target)."""
    return [
        SftExample(query=row["q"], contexts=[row["a"], faq[i + 1]["a"]], target=row["a"].split(". ")[0] + ". [1]")
        for i, row in enumerate(faq[:8])
    ]


@pytest.fixture(scope="session")
def relevance_examples(faq: list[dict[str, Any]]) -> list[RelevanceExample]:
    """16 relevance judgements: each of 8 questions with its answer (1.0) and a wrong answer (0.0)."""
    out = []
    for i, row in enumerate(faq[:8]):
        out.append(RelevanceExample(query=row["q"], passage=row["a"], label=1.0))
        out.append(RelevanceExample(query=row["q"], passage=faq[(i + 5) % 8]["a"], label=0.0))
    return out
