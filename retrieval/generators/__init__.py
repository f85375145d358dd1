"""Answer generators (``core.ports.Generator`` adapters): extractive (default), HF causal LM, OpenAI-compatible."""
