"""Small text helpers shared by intake, the store and curation (normalisation, stable hashing)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WS = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalize_text(text: str) -> str:
    """NFKC, lower case, collapsed whitespace, no leading/trailing punctuation: equal questions compare equal."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _EDGE_PUNCT.sub("", _WS.sub(" ", folded).strip())


def stable_hash(*parts: str) -> str:
    """sha256 hex of the normalised parts joined by a unit separator (stable across runs and machines)."""
    return hashlib.sha256("\x1f".join(normalize_text(p) for p in parts).encode("utf-8")).hexdigest()
