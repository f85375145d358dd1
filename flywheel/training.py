"""One way to train a model kind: each trained kind (embedder, reranker, generator adapter) is one :class:`TrainedKind`
entry — its dataset kind, config class, precondition check and ``train -> metrics`` — used by ``flywheel train KIND``
and by the cycle (whose train step is a loop over :data:`KINDS`). Adding a kind is adding one entry.

Every run trains inside a registry staging directory and registers a *candidate* (nothing live changes); a failure
(too few rows, bad base model, crash) registers nothing. :meth:`TrainedKind.prepare` checks the rows and builds the
config before any model is loaded, so a cycle knows every precondition before it trains anything.

A generator adapter is trained with ``training.sft_canaries`` synthetic canaries planted in its SFT rows
(:func:`evals.guardrails.canary_sft_examples`); the canaries' seed is recorded in the version's metrics (never their
text) so the memorisation probe can rebuild them and check the adapter before it may serve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import NotEnoughDataError
from core.ports import ProgressCallback
from core.settings import Settings
from core.types import DatasetKind, DatasetManifest, ModelKind
from flywheel.deploy import BASE

if TYPE_CHECKING:
    from core.types import ModelVersion
    from customization.registry import ModelRegistry


@dataclass(frozen=True, slots=True)
class TrainingServices:
    """What training reads besides its rows.

    Attributes:
        settings: the loaded settings.
        registry: where candidates are staged and registered (and trained versions are found).
        deployed: the live deployment's models by kind (where an embedder starts, ``training.embedder_start``).
        corpus_passages: the live corpus' passage texts (hard-negative mining).

    Both callables are called only by a trainer that needs them (a reranker needs neither, nor a live corpus).
    """

    settings: Settings
    registry: ModelRegistry
    deployed: Callable[[], Mapping[str, str | None]]
    corpus_passages: Callable[[], list[str]]


@dataclass(slots=True)
class Prepared:
    """A kind ready to train: checked rows, its config, where it starts (``parent``) and any planted rows."""

    kind: TrainedKind
    rows: list[Any]
    manifest: DatasetManifest
    config: Any
    extra_metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrainedKind:
    """One trainable model kind.

    Attributes:
        model: the registry kind.
        dataset: the curated dataset kind it trains on.
        wanted: ``settings -> None`` when the cycle should train it, else the reason (naming the setting).
        config: ``(settings, overrides) -> config`` (a dataclass with ``to_dict()`` and ``seed``).
        check: ``(rows, config) -> usable rows``; raises ``NotEnoughDataError`` (loads no model).
        run: ``(services, rows, config, output_dir, on_progress) -> metrics``: trains and saves the model.
        parent: ``services -> parent version`` recorded in the registry (``None``: trained from a base model).
    """

    model: ModelKind
    dataset: DatasetKind
    wanted: Callable[[Settings], str | None]
    config: Callable[[Settings, dict[str, Any]], Any]
    check: Callable[[Sequence[Any], Any], list[Any]]
    run: Callable[[TrainingServices, list[Any], Any, Path, ProgressCallback | None], dict[str, Any]]
    parent: Callable[[TrainingServices], str | None] = lambda s: None
    canaries: bool = False

    def prepare(
        self, settings: Settings, rows: Sequence[Any], manifest: DatasetManifest, *, overrides: dict[str, Any],
        salt: str = "",
    ) -> Prepared:  # fmt: skip
        """Config + precondition check (no model loaded); for a kind with ``canaries``, ``training.sft_canaries``
        canaries planted (seeded by the dataset version and ``salt``). Raises ``NotEnoughDataError`` /
        ``InvalidInputError``."""
        config = self.config(settings, overrides)
        prepared = Prepared(self, list(self.check(rows, config)), manifest, config, {})
        if self.canaries:
            plant_canaries(prepared, count=settings.training.sft_canaries, seed=canary_seed(manifest, salt))
        return prepared

    def train(
        self, s: TrainingServices, prepared: Prepared, *, extra_metrics: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ModelVersion:  # fmt: skip
        """Train in a registry staging dir and register a candidate with the dataset's provenance."""
        from customization.registry import DatasetRef

        m = prepared.manifest
        ref = DatasetRef(m.kind.value, m.version, m.provenance_hash, tuple(m.user_ids))
        config = prepared.config
        with s.registry.staging(self.model) as work:
            metrics = self.run(s, prepared.rows, config, work / "model", on_progress)
            return s.registry.register(
                self.model, work / "model", parent=self.parent(s), datasets=[ref], config=config.to_dict(),
                seed=config.seed, metrics={**metrics, **prepared.extra_metrics, **(extra_metrics or {})},
            )  # fmt: skip


# --------------------------------------------------------------------------------------------------- embedder
def embedder_parent(s: TrainingServices) -> str:
    """Where embedder training starts (``training.embedder_start``): the base model or the live embedder."""
    active = s.deployed().get(ModelKind.EMBEDDER.value)
    if s.settings.training.embedder_start == "active" and active not in (None, BASE):
        return str(active)
    return BASE


def _embedder_config(settings: Settings, overrides: dict[str, Any]) -> Any:
    from customization.embedder_training import EmbedderTrainingConfig

    t = settings.training
    return EmbedderTrainingConfig.from_overrides(
        overrides, epochs=t.epochs, seed=t.seed, min_pairs=t.min_pairs, teacher=t.embedder_teacher
    )


def _embedder_check(rows: Sequence[Any], config: Any) -> list[Any]:
    from customization.embedder_training import usable_pairs

    usable_pairs(rows, config)
    return list(rows)  # the trainer filters again; weights and negatives stay as curated


def _embedder_run(
    s: TrainingServices, rows: list[Any], config: Any, out: Path, on_progress: ProgressCallback | None
) -> dict[str, Any]:
    from customization.embedder_training import train_embedder
    from flywheel.arms import embedder_path

    return train_embedder(
        rows, base_model_path=embedder_path(s.settings.embedder, s.registry, embedder_parent(s)), output_dir=out,
        config=config, corpus_passages=s.corpus_passages(), base_models_dir=s.settings.base_models_path,
        on_progress=on_progress,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------- reranker
def _reranker_config(settings: Settings, overrides: dict[str, Any]) -> Any:
    from customization.reranker_training import RerankerTrainingConfig

    return RerankerTrainingConfig(**({"seed": settings.training.seed} | overrides))


def _reranker_check(rows: Sequence[Any], config: Any) -> list[Any]:
    from customization.reranker_training import check_examples

    check_examples(rows, config)
    return list(rows)


def _reranker_run(
    s: TrainingServices, rows: list[Any], config: Any, out: Path, on_progress: ProgressCallback | None
) -> dict[str, Any]:
    from customization.reranker_training import train_reranker
    from indexing.embedder import default_model_path

    base = Path(s.settings.embedder.model_path or default_model_path())
    return train_reranker(rows, base_model_path=base, output_dir=out, config=config, on_progress=on_progress)


# ------------------------------------------------------------------------------------------ generator adapter
def _generator_wanted(settings: Settings) -> str | None:
    if not settings.training.train_generator:
        return "training.train_generator is off"
    if settings.generator.kind != "hf":
        return f"generator.kind is {settings.generator.kind!r}: only 'hf' serves an adapter (set generator.kind=hf)"
    return None


def _generator_config(settings: Settings, overrides: dict[str, Any]) -> Any:
    from customization.lora import LoraConfig

    t, g = settings.training, settings.generator
    # The training prompt is the served prompt: same passages, same cut (an override may change neither).
    fixed = {"max_passages": g.max_passages, "max_passage_chars": g.max_passage_chars}
    return LoraConfig(**({"seed": t.seed, "min_examples": t.min_sft_examples} | overrides | fixed))


def _generator_check(rows: Sequence[Any], config: Any) -> list[Any]:
    from customization.lora import check_examples

    return check_examples(rows, config)


def _generator_run(
    s: TrainingServices, rows: list[Any], config: Any, out: Path, on_progress: ProgressCallback | None
) -> dict[str, Any]:
    from customization.base_models import ensure_smollm2
    from customization.lora import train_generator_adapter

    base = s.settings.generator.model_dir or ensure_smollm2(s.settings.base_models_path)
    metrics = train_generator_adapter(rows, base_model_dir=base, output_dir=out, config=config, on_progress=on_progress)
    return {**metrics, "base_model_dir": str(base)}


def canary_seed(manifest: DatasetManifest, salt: str) -> int:
    """Seed of the canaries planted in one adapter's SFT rows (from the dataset version and ``salt``, e.g. the cycle
    id): stable for a run, different between runs, and recorded in place of the canaries themselves."""
    digest = hashlib.sha256(f"{manifest.kind.value}:{manifest.version}:{salt}".encode()).hexdigest()
    return int(digest[:8], 16)


def plant_canaries(prepared: Prepared, *, count: int, seed: int) -> None:
    """Mix ``count`` canaries (seeded) into a generator adapter's SFT rows, recording ``canary_seed`` /
    ``canaries`` in its metrics so :func:`evals.guardrails.memorisation_probe` can rebuild and probe them."""
    from evals.guardrails import canary_sft_examples, make_canaries

    prepared.rows.extend(canary_sft_examples(make_canaries(count, seed=seed)))
    prepared.extra_metrics.update({"canary_seed": seed, "canaries": count})


def _off(setting: str) -> Callable[[Settings], str | None]:
    def wanted(settings: Settings) -> str | None:
        return None if getattr(settings.training, setting) else f"training.{setting} is off"

    return wanted


EMBEDDER = TrainedKind(
    ModelKind.EMBEDDER, DatasetKind.CONTRASTIVE, lambda s: None, _embedder_config, _embedder_check, _embedder_run,
    embedder_parent,
)  # fmt: skip
RERANKER = TrainedKind(
    ModelKind.RERANKER, DatasetKind.RELEVANCE, _off("train_reranker"), _reranker_config, _reranker_check, _reranker_run
)  # fmt: skip
GENERATOR_ADAPTER = TrainedKind(
    ModelKind.GENERATOR_ADAPTER, DatasetKind.SFT, _generator_wanted, _generator_config, _generator_check,
    _generator_run, canaries=True,
)  # fmt: skip
KINDS: dict[ModelKind, TrainedKind] = {k.model: k for k in (EMBEDDER, RERANKER, GENERATOR_ADAPTER)}
REQUIRED = (ModelKind.EMBEDDER,)  # a cycle without enough data for these is skipped; the others are left out


def read_dataset(repo: Any, kind: TrainedKind, version: int | None) -> tuple[list[Any], DatasetManifest]:
    """Rows and manifest of a dataset version of ``kind``'s dataset kind (latest when ``None``); ``NotFoundError``
    when it does not exist."""
    rows = repo.read(kind.dataset, version)
    return rows, repo.manifest(kind.dataset, version if version is not None else repo.latest(kind.dataset))


def kind_named(name: str) -> TrainedKind:
    """The entry for ``embedder`` / ``reranker`` / ``generator`` (or ``generator_adapter``)."""
    from core.errors import InvalidInputError

    aliases = {"generator": ModelKind.GENERATOR_ADAPTER.value}
    try:
        return KINDS[ModelKind(aliases.get(name, name))]
    except ValueError:
        choices = ", ".join(["embedder", "reranker", "generator"])
        raise InvalidInputError(f"unknown model kind {name!r}; one of {choices}", field="kind") from None


def not_enough(kind: TrainedKind, exc: NotEnoughDataError) -> str:
    """The reason a kind was not trained, naming the setting that lowers the bar."""
    setting = {ModelKind.EMBEDDER: "training.min_pairs", ModelKind.GENERATOR_ADAPTER: "training.min_sft_examples"}
    hint = f" (lower {setting[kind.model]} or collect more feedback)" if kind.model in setting else ""
    return f"not enough data ({exc.have} of {exc.need}): {exc.message}{hint}"


__all__ = [
    "EMBEDDER",
    "GENERATOR_ADAPTER",
    "KINDS",
    "REQUIRED",
    "RERANKER",
    "Prepared",
    "TrainedKind",
    "TrainingServices",
    "canary_seed",
    "embedder_parent",
    "kind_named",
    "not_enough",
    "plant_canaries",
    "read_dataset",
]
