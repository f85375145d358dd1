"""Session-wide test fixtures: the offline guard first, tiny real models loaded once, isolated settings.

Package-specific fixtures live in ``tests/<package>/conftest.py``. Fakes exist only at ports (see ``tests/fakes.py``).
"""

from __future__ import annotations

from core.runtime import ensure_offline

ensure_offline()

import os  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import pytest  # noqa: E402

from core.settings import Settings  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2."""
    from indexing.embedder import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def embedder(minilm_path: Path) -> Any:
    """The real packaged MiniLM embedder, loaded once per session (read-only: do not train it in place)."""
    from indexing.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(minilm_path, version="base", device="cpu")


@pytest.fixture(scope="session")
def faq() -> list[dict[str, Any]]:
    """The built-in English FAQ corpus (503 Q&A pairs)."""
    import zaragoza_construction_faq

    return list(zaragoza_construction_faq.load(lang="en"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in a temp data dir (SQLite file, embedded vector store, auth on, fast-path immediate)."""
    return Settings(
        data_dir=tmp_path / "data",
        auth={"enabled": True, "bootstrap_admin_key": "test-admin-key"},
        indexing={"source_roots": [tmp_path]},  # tests write their reindex sources under tmp_path
        _env_file=None,
    )


def _reachable(url: str) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL test server.

    ``FLYWHEEL_TEST_POSTGRES_URL`` set (as ``.ci/run`` does): the server must answer, else the test fails.
    Unset: the default local server is used when it answers, else the test is skipped with the reason.
    """
    explicit = os.environ.get("FLYWHEEL_TEST_POSTGRES_URL")
    url = explicit or DEFAULT_POSTGRES_URL
    if _reachable(url):
        return url
    if explicit:
        pytest.fail(f"FLYWHEEL_TEST_POSTGRES_URL={explicit} is set but the server does not answer")
    pytest.skip(f"no PostgreSQL server at {url} (set FLYWHEEL_TEST_POSTGRES_URL to run these tests)")
