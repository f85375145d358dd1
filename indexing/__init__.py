"""Documents -> chunks -> embeddings -> versioned collections behind an alias (imports ``core`` only)."""
