"""LoRA SFT on a tiny random Llama + HFGenerator with and without the adapter (real peft / transformers steps)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidInputError, NotEnoughDataError
from core.ports import Generator
from core.types import Citation, SftExample
from customization.lora import IGNORE_INDEX, LoraConfig, encode_example, train_generator_adapter

pytestmark = pytest.mark.integration

TINY = {"epochs": 1, "batch_size": 4, "max_length": 96, "rank": 4, "alpha": 8, "show_progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_lm_dir: Path, sft_examples: list[SftExample]) -> Path:
    out = tmp_path_factory.mktemp("adapter")
    seen: list[tuple[int, int]] = []
    metrics = train_generator_adapter(
        sft_examples, base_model_dir=tiny_lm_dir, output_dir=out, config=LoraConfig(**TINY),
        on_progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert metrics["examples"] == 8 and metrics["steps"] == 2 and seen == [(1, 2), (2, 2)]
    return out


def test_when_example_is_encoded_then_only_answer_tokens_carry_labels(tiny_lm_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lm_dir))
    example = SftExample(query="How long?", contexts=["Two weeks."], target="Two weeks [1]")
    row = encode_example(tokenizer, example, LoraConfig(**TINY))
    answer = tokenizer("Two weeks [1]" + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert row["input_ids"][-len(answer) :] == answer
    assert row["labels"][-len(answer) :] == answer
    assert set(row["labels"][: -len(answer)]) == {IGNORE_INDEX}
    assert len(row["input_ids"]) <= 96


def test_when_lora_trains_then_adapter_files_are_saved(adapter_dir: Path) -> None:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["r"] == 4 and set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert (adapter_dir / "adapter_model.safetensors").is_file()


def test_when_lora_trains_then_adapter_files_are_saved_and_the_prompt_format_recorded(adapter_dir: Path) -> None:
    assert json.loads((adapter_dir / "sft_prompt.json").read_text()) == {"format": "core.prompts.build_messages"}


def test_when_an_encoder_is_given_then_it_builds_the_training_rows(
    tiny_lm_dir: Path, sft_examples: list[SftExample], tmp_path: Path
) -> None:
    seen: list[str] = []

    def question_task(tokenizer: Any, example: SftExample, config: LoraConfig) -> dict[str, list[int]]:
        seen.append(example.target)
        prompt = tokenizer(example.target, add_special_tokens=False)["input_ids"][:40]
        target = tokenizer(example.query + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        return {"input_ids": prompt + target, "labels": [IGNORE_INDEX] * len(prompt) + target}

    metrics = train_generator_adapter(
        sft_examples, base_model_dir=tiny_lm_dir, output_dir=tmp_path, config=LoraConfig(**TINY), encode=question_task
    )
    assert metrics["steps"] == 2 and seen == [e.target for e in sft_examples]
    recorded = json.loads((tmp_path / "sft_prompt.json").read_text())["format"]
    assert recorded.endswith("question_task")


def test_hf_generator_answers_with_citation_markers_with_and_without_adapter(
    tiny_lm_dir: Path, adapter_dir: Path
) -> None:
    from retrieval.generators.hf import HFGenerator

    passages = [Citation(chunk_id="c1", doc_id="d1", text="Roof replacement takes two weeks.", score=0.9)]
    base = HFGenerator(tiny_lm_dir, max_new_tokens=4, device="cpu")
    tuned = HFGenerator(tiny_lm_dir, adapter_dir=adapter_dir, max_new_tokens=4, version="v1", device="cpu")
    assert isinstance(base, Generator)
    for gen in (base, tuned):
        answer = gen.generate("How long does a roof take?", passages)
        assert "[1]" in answer.text
        assert answer.citations == tuple(passages)
        assert gen.generate("How long does a roof take?", passages).text == answer.text  # greedy: deterministic
    assert tuned.version == "v1" and base.version.startswith("hf:")


def test_when_adapter_is_corrupt_then_invalid_input(tiny_lm_dir: Path, adapter_dir: Path, tmp_path: Path) -> None:
    from retrieval.generators.hf import HFGenerator

    broken = tmp_path / "broken"
    shutil.copytree(adapter_dir, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InvalidInputError, match="adapter"):
        HFGenerator(tiny_lm_dir, adapter_dir=broken, device="cpu")
    with pytest.raises(InvalidInputError, match=r"adapter_config\.json"):
        HFGenerator(tiny_lm_dir, adapter_dir=tmp_path / "missing", device="cpu")


def test_when_model_dir_is_incompatible_then_invalid_input(minilm_path: Path, tmp_path: Path) -> None:
    from retrieval.generators.hf import HFGenerator

    with pytest.raises(InvalidInputError, match=r"config\.json"):
        HFGenerator(tmp_path, device="cpu")
    with pytest.raises(InvalidInputError, match="causal"):
        HFGenerator(minilm_path, device="cpu")  # a BERT encoder, not a causal LM
    with pytest.raises(InvalidInputError):
        train_generator_adapter(
            [SftExample("q", ["c"], "a")] * 8,
            base_model_dir=tmp_path,
            output_dir=tmp_path / "o",
            config=LoraConfig(**TINY),
        )


def test_when_too_few_examples_then_not_enough_data(tiny_lm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotEnoughDataError) as info:
        train_generator_adapter(
            [SftExample("q", ["c"], "a")] * 3,
            base_model_dir=tiny_lm_dir,
            output_dir=tmp_path,
            config=LoraConfig(**TINY),
        )
    assert (info.value.have, info.value.need) == (3, 8)
    assert "at least 8" in info.value.message and "got 3" in info.value.message


def test_when_target_modules_do_not_exist_then_invalid_input(
    tiny_lm_dir: Path, sft_examples: list[SftExample], tmp_path: Path
) -> None:
    config = LoraConfig(**{**TINY, "target_modules": ["c_attn"]})
    with pytest.raises(InvalidInputError, match="c_attn"):
        train_generator_adapter(sft_examples, base_model_dir=tiny_lm_dir, output_dir=tmp_path, config=config)


def test_when_a_prompt_was_answered_before_then_the_answer_comes_from_the_cache(tiny_lm_dir: Path) -> None:
    from retrieval.generators.hf import HFGenerator

    passages = [Citation(chunk_id="c1", doc_id="d1", text="Roof replacement takes two weeks.", score=0.9)]
    questions = ["How long does a roof take?", "Who pays for scaffolding on a roof replacement job?"]
    for cache, expected_calls in ((4096, 1), (0, 2)):
        gen = HFGenerator(tiny_lm_dir, max_new_tokens=4, device="cpu", answer_cache=cache)
        calls: list[int] = []
        gen.model.generate = _counting(gen.model.generate, calls)
        first = gen.generate_many(questions, [passages, passages])
        again = gen.generate_many(questions[::-1], [passages, passages])
        assert [a.text for a in again] == [a.text for a in first][::-1]  # in input order, same answers
        assert len(calls) == expected_calls, cache


def _counting(generate: Any, calls: list[int]) -> Any:
    """``generate`` that records each run of the model in ``calls``."""

    def run(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return generate(*args, **kwargs)

    return run
