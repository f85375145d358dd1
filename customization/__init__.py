"""Embedder fine-tuning, hard-negative mining, LoRA generator SFT, reranker, model registry (imports ``core`` only)."""
