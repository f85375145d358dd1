"""Feedback store: SQLAlchemy 2 models, Alembic migrations, and :class:`SqlStore` (SQLite WAL / PostgreSQL)."""

from feedback.store.records import (
    ApiKeyRecord,
    CorrectionRecord,
    CorrectionState,
    DeletionReport,
    Role,
    UserConsent,
    dataset_ref,
    parse_dataset_ref,
)
from feedback.store.sql import SqlStore

__all__ = [
    "ApiKeyRecord",
    "CorrectionRecord",
    "CorrectionState",
    "DeletionReport",
    "Role",
    "SqlStore",
    "UserConsent",
    "dataset_ref",
    "parse_dataset_ref",
]
