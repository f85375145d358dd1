"""A gazetteer recognizer for person names: a known first name followed by a capitalised word.

The small spaCy model misses many names ("Lars Dubois", "Sofia Rossi"); this recognizer backs it up with the first-
and last-name lists that Faker ships for 17 locales (plain tuples, no generation involved). It reports ``PERSON`` for
``<First> [particles] <Capitalised>`` (plus a following known last name; particles as in "van den", "de la"),
skipping first names that are common English words.
Over-scrubbing a capitalised pair is the safer failure than storing a customer's name.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

LOCALES = ("en_US", "en_GB", "en_IN", "fr_FR", "de_DE", "es_ES", "it_IT", "sv_SE", "nl_NL", "pt_BR", "pl_PL",
           "tr_TR", "ar_AA", "fi_FI", "da_DK", "no_NO", "zh_CN")  # fmt: skip
# First names that are everyday capitalised words at a sentence start or in titles.
_COMMON = (
    "will may june april august bill mark grant rose hope joy faith grace page guy art dean chase pat sue don jack "
    "frank gene lane ray sky summer autumn dawn crystal amber ruby pearl iris ivy holly daisy penny king young "
    "price white brown green black hall wood long case major rich sterling golden early lord said van von de del "
    "la le di da ben max bob sunny angel christian justice miles cash gay hunter"
)
COMMON_WORDS = frozenset(_COMMON.split())
SCORE = 0.65
PARTICLES = frozenset(
    ["van", "von", "den", "der", "de", "del", "della", "di", "da", "du", "le", "la", "dos", "das", "zu", "ter", "ten",
     "y", "bin", "ibn", "al", "auch", "genannt"]
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)*")


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) from Faker's locale providers, loaded once."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        first.update(_names(getattr(provider, "first_names", ())))
        last.update(_names(getattr(provider, "last_names", ())))
    return frozenset(n for n in first if n.casefold() not in COMMON_WORDS), frozenset(last)


def _names(raw: Any) -> set[str]:
    values = raw.keys() if isinstance(raw, dict) else raw
    return {v for v in values if isinstance(v, str) and v[:1].isupper() and len(v) > 1}


class NameGazetteerRecognizer(EntityRecognizer):  # type: ignore[misc]
    """``PERSON`` for a known first name followed by a capitalised word (see module docstring)."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(supported_entities=["PERSON"], supported_language=supported_language, name="NameGazetteer")

    def load(self) -> None:
        """Load the name lists (cached per process)."""
        name_lists()

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """Spans of ``<First> <Capitalised> [<Last>]`` in ``text``."""
        if "PERSON" not in entities:
            return []
        first, last = name_lists()
        words = list(_WORD.finditer(text))
        results = []
        for i, word in enumerate(words[:-1]):
            if word.group() not in first and not _common_first_with_last(words, i, last):
                continue
            j = i + 1  # skip surname particles: "Rafael van den Brand", "Juan de la Cruz"
            while j < len(words) - 1 and words[j].group() in PARTICLES and _adjacent(text, words[j - 1], words[j]):
                j += 1
            nxt = words[j]
            if not _adjacent(text, words[j - 1], nxt) or not nxt.group()[:1].isupper():
                continue
            end = nxt.end()
            if j + 1 < len(words) and words[j + 1].group() in last and _adjacent(text, nxt, words[j + 1]):
                end = words[j + 1].end()
            results.append(RecognizerResult("PERSON", word.start(), end, SCORE))
        return results


def _common_first_with_last(words: list[re.Match[str]], i: int, last: frozenset[str]) -> bool:
    """A first name that is also a common word ("Amber", "Guy") counts when a known last name follows it."""
    nxt = words[i + 1].group() if i + 1 < len(words) else ""
    return words[i].group().casefold() in COMMON_WORDS and words[i].group()[:1].isupper() and nxt in last


def _adjacent(text: str, a: re.Match[str], b: re.Match[str]) -> bool:
    gap = text[a.end() : b.start()]
    return 0 < len(gap) <= 2 and gap.strip() == ""
