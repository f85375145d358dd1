"""Write ``docs/settings.md``: every setting (key, env name, default, meaning) from the classes in ``core.settings``.

Run ``python scripts/gen_settings_doc.py`` after changing a setting (``--check`` exits 1 when the file is stale; the
test ``tests/core/test_settings_doc.py`` does the same).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "settings.md"

HEADER = """# Settings reference

Generated from `core/settings.py` by `scripts/gen_settings_doc.py` — do not edit by hand.

Every setting can be given, highest precedence first, as: an environment variable (the *env* column; nested
sections use `__`), a line in a `.env` file in the working directory, or a key in a TOML config file, else its
default. The TOML file is `$FLYWHEEL_CONFIG` when set (it must exist), else the first of `./flywheel.toml` and
`{FLYWHEEL_DATA_DIR or ./data}/flywheel.toml` that exists. Sections are TOML tables:

```toml
data_dir = "/srv/flywheel"

[training]
min_pairs = 64

[auth]
bootstrap_admin_key = "change-me"   # a secret: keep this file private (chmod 600) or use the environment
```

Paths left unset derive from `data_dir`: vectors `{data_dir}/vectors`, state and feedback database
`{data_dir}/flywheel.db`, models `{data_dir}/models`, datasets `{data_dir}/datasets`, reports `{data_dir}/reports`.
"""

# Meanings of the settings whose field carries no ``description`` yet (a field's own description wins; a new setting
# with neither fails the staleness test, so give new fields a description in core/settings.py).
MEANINGS = {
    "data_dir": "root of everything the service keeps on disk (see the derived paths above); also where "
    "`flywheel serve` records its address (`service.json`) for the CLI",
    "store.kind": "`edge`: embedded qdrant-edge shards under store.path; `qdrant`: qdrant-client (store.url, or "
    "local mode at store.path)",
    "store.api_key": "Qdrant server API key (kind=qdrant)",
    "store.timeout_s": "Qdrant server request timeout, seconds",
    "db.echo": "log every SQL statement (debugging)",
    "embedder.batch_size": "passages per encode batch when indexing",
    "embedder.max_seq_length": "tokens per passage the embedder reads (longer text is truncated)",
    "indexing.corpus": "the corpus (alias) queries, feedback and cycles use; collections are `{corpus}__v{n}`",
    "indexing.chunk_overlap": "tokens shared by neighbouring chunks (below chunk_size)",
    "indexing.max_file_bytes": "larger source files are refused (InvalidInputError)",
    "retrieval.default_top_k": "passages retrieved and cited when a query does not say",
    "retrieval.max_top_k": "largest top_k a query may ask for",
    "retrieval.max_question_chars": "longer questions are refused (422)",
    "retrieval.rerank_candidates": "hits re-scored by the reranker (when one is active) before keeping top_k",
    "retrieval.answer_sentences": "sentences in an extractive answer",
    "generator.kind": "`extractive` (sentences of the cited passages), `hf` (local causal LM + LoRA adapter) or "
    "`openai` (OpenAI-compatible endpoint)",
    "generator.max_new_tokens": "answer length limit for hf / openai generators",
    "generator.api_key": "API key of the OpenAI-compatible endpoint",
    "generator.timeout_s": "endpoint request timeout, seconds",
    "generator.retries": "endpoint retries before the query fails with 503",
    "judge.endpoint": "OpenAI-compatible base URL of a judge LLM; unset: faithfulness and answer relevancy are skipped",
    "judge.api_key": "API key of the judge endpoint",
    "judge.model": "model name sent to the judge endpoint",
    "judge.timeout_s": "judge request timeout, seconds",
    "pii.entities": "Presidio entity types scrubbed from questions, answers and feedback before storage",
    "pii.score_threshold": "minimum Presidio score for a span to be scrubbed",
    "pii.spacy_model": "spaCy model package Presidio's NLP engine loads",
    "pii.language": "language of the scrubbed text",
    "feedback.max_text_chars": "longest free-text field of a feedback event (422 beyond)",
    "feedback.max_batch": "most events in one POST /v1/feedback:batch",
    "feedback.fast_path": "when a correction enters the live index: `immediate`, after `quorum` agreeing agents, "
    "after admin `approval`, or `off`",
    "auth.enabled": "require API keys (turn off for local development only: every request is then an admin)",
    "auth.bootstrap_admin_key": "seeds the first admin key at start-up (at least 8 characters, else every command "
    "refuses the settings); the CLI also sends it to a running service when FLYWHEEL_API_KEY is unset",
    "training.min_sft_examples": "fewest SFT examples to LoRA-tune the generator",
    "training.train_reranker": "cycles also train a cross-encoder reranker (relevance dataset)",
    "training.train_generator": "cycles also LoRA-tune the generator (SFT dataset; needs generator.kind=hf)",
    "training.seed": "random seed of training and of curation's hold-out split",
    "training.epochs": "embedder fine-tuning epochs per cycle",
    "eval.primary_metric": "the metric a candidate must improve (CI lower bound of the paired difference > 0)",
    "eval.guarded_metrics": "metrics that must not regress beyond eval.tolerance (overall and per slice)",
    "eval.min_slice_cases": "fewest eval cases a cycle needs (else it is skipped), and the smallest slice the gate "
    "judges on its own",
    "eval.bootstrap_samples": "paired bootstrap resamples of the gate",
    "eval.confidence": "confidence level of the gate's intervals",
    "eval.holdout_share": "share of asked questions curation holds out as eval cases (never trained on)",
    "eval.gold_set": "JSONL file of labelled eval cases (`id`, `question`, `relevant_doc_ids`, optional "
    "`reference_answer`, `slices`) used with the curated ones",
    "eval.blocklist": "terms no evaluated answer may contain (guardrail)",
    "deploy.mode": "what a passing cycle does: `promote` at once, start a `canary`, or run in `shadow`",
    "deploy.canary_share": "share of users (sticky) a canary serves",
    "deploy.canary_min_feedback": "feedback events per arm before a canary is judged",
    "server.host": "bind address of `flywheel serve`",
    "server.port": "port of `flywheel serve`",
}


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None:
        return "unset"
    return f"`{value}`".replace("|", "\\|") if not isinstance(value, str) or value else '`""`'


def _type(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("pathlib.", "").replace("<class '", "")
    return text.replace("'>", "").replace("pydantic.types.", "").replace("|", "\\|")


def _meaning(key: str, field: FieldInfo) -> str:
    text = field.description or MEANINGS.get(key)
    if not text:
        raise ValueError(f"setting {key} has no description: add Field(description=...) in core/settings.py")
    return " ".join(text.split()).replace("|", "\\|")


def _rows(model: type[BaseModel], section: str | None) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        key = f"{section}.{name}" if section else name
        env = "FLYWHEEL_" + key.upper().replace(".", "__")
        rows.append(f"| `{key}` | `{env}` | {_type(field)} | {_default(field)} | {_meaning(key, field)} |")
    return rows


def render() -> str:
    """The whole document."""
    from core.settings import Settings

    parts = [HEADER, "## Top level\n", "| key | env | type | default | meaning |", "|---|---|---|---|---|"]
    parts += _rows(Settings, None)
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            doc = " ".join((section.__doc__ or "").split())
            parts += ["", f"## `{name}` — {doc}\n", "| key | env | type | default | meaning |", "|---|---|---|---|---|"]
            parts += _rows(section, name)
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    """Write the doc, or with ``--check`` report whether it is up to date (exit 1 when stale)."""
    sys.path.insert(0, str(ROOT))
    text = render()
    if "--check" in argv:
        current = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
        if current != text:
            print(f"{DOC} is stale: run python scripts/gen_settings_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
