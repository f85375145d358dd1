"""Offline runtime guard.

Contract: :func:`ensure_offline` must run before any heavy third-party import (transformers, sentence-transformers,
llama-index, ragas, presidio) in every entry point — the CLI, the API app factory and the test session. It sets the
environment variables that keep every dependency from reaching the network or sending telemetry (see STACK.md).
It never overrides a value the operator already set, except where an empty value would re-enable a download.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DO_NOT_TRACK": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    "WANDB_DISABLED": "true",
    "WANDB_MODE": "disabled",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}

_applied = False


def _tiktoken_cache_dir() -> str | None:
    """Return llama-index-core's bundled tiktoken cache (cl100k_base, o200k_base), if installed."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    cache = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    return str(cache) if cache.is_dir() else None


def ensure_offline() -> None:
    """Set the offline/no-telemetry environment once per process (idempotent, cheap).

    Side effects: mutates ``os.environ``. ``NLTK_DATA`` is deliberately left alone: llama-index ships its own cache
    and pointing NLTK elsewhere breaks its stopwords.
    """
    global _applied
    if _applied:
        return
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    # tldextract treats a missing variable as "use the default URLs": force the empty value.
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    cache = _tiktoken_cache_dir()
    if cache is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", cache)
    _applied = True
