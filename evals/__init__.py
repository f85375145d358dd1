"""IR + RAGAS metrics, the regression gate, guardrail probes, per-cycle reports (imports ``core`` only)."""
