"""The query path: embed, search via the alias, optional rerank, answer, canary routing (imports ``core`` only)."""
