"""Feedback intake, PII scrubbing, the SQL store, consent & deletion, curation (imports ``core`` only)."""
