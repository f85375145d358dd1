"""The one tokenizer of keyword matching: hybrid retrieval's sparse vectors and the extractive answer's scoring.

Contract: :func:`tokenize` lowercases, keeps identifiers whole (``core.autocrlf``, ``--force-with-lease`` ->
``force-with-lease``, ``pg_hba.conf``, ``23505``, ``v2.1.0``) AND emits their parts (``core``, ``autocrlf``; ``pg``,
``hba``, ``conf``), drops English stop words among plain words and Porter-stems plain alphabetic words
(``permits`` -> ``permit``); identifiers are never stemmed. Deterministic, thread-safe, cached per distinct word.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nltk.stem.porter import PorterStemmer

# An identifier-ish run: word characters joined by . _ - / : (a leading -- of an option is dropped).
_TOKEN = re.compile(r"[0-9a-z_]+(?:[.\-/:+#][0-9a-z_]+)*")
_PART_SPLIT = re.compile(r"[.\-/:+#_]+")
_STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves""".split()  # noqa: SIM905
)


@lru_cache(maxsize=1)
def _porter() -> PorterStemmer:
    return PorterStemmer()


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_porter().stem(word))


def _plain(word: str) -> list[str]:
    """A plain word: dropped when a stop word, stemmed when alphabetic, kept as is otherwise (numbers)."""
    if word in _STOP or not word:
        return []
    return [_stem(word) if word.isalpha() else word]


@lru_cache(maxsize=200_000)
def _expand(raw: str) -> tuple[str, ...]:
    """Tokens of one raw run: the whole identifier plus its parts, or the plain word."""
    parts = [p for p in _PART_SPLIT.split(raw) if p]
    if len(parts) <= 1:
        return tuple(_plain(parts[0] if parts else raw))
    tokens = [raw]
    if "_" in raw and any(c in raw for c in ".-/:+#"):  # pg_hba.conf -> also pg_hba
        tokens += [p for p in re.split(r"[.\-/:+#]+", raw) if "_" in p]
    for part in parts:
        tokens += [part] if part not in _STOP else []
    return tuple(tokens)


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` in order (with repeats): identifiers whole and in parts, plain words stemmed."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        tokens.extend(_expand(match.group(0)))
    return tokens



def is_identifier(token: str) -> bool:
    """Whether a token is an identifier (joined parts or digits), which keyword matching weighs higher."""
    return not token.isalpha()


__all__ = ["is_identifier", "tokenize"]
