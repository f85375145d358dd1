"""Feedback stage: PII scrubbing, intake, the SQL store, auth, consent and deletion, curation into datasets.

Imports only :mod:`core`; wired in ``flywheel.container``.
"""
