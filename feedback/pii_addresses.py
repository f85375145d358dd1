"""Street addresses (Latin script, several countries) and names / addresses in non-Latin scripts, as Presidio
recognizers.

- ``STREET_ADDRESS`` in Latin script: a run of capitalised words, house numbers and postcodes holding a street word
  (Faker's street suffixes of 12 locales plus common street-type words) or a postcode next to a house number.
- Names and addresses in non-Latin scripts (Han, Kana, Hangul, Cyrillic, Arabic, Devanagari, Greek, Hebrew, Thai):
  in English support text a short run of such words is a name (``PERSON``); a run holding digits is an address.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

_SCRIPT = (
    "\u0370-\u03ff\u0400-\u052f\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\u0900-\u097f\u0e00-\u0e7f"
    "\u1100-\u11ff\u3005\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff\ufb50-\ufdff\ufe70-\ufeff\uff66-\uff9f"
)
# A token holding at least one non-Latin letter (digits and single Latin letters may be glued to it), a bare number,
# or a short parenthesised group; tokens joined by spaces and commas.
_NL_TOKEN = rf"(?:[\w.'’-]*[{_SCRIPT}][\w{_SCRIPT}.'’-]*|\d+(?:[-/]\d+)*|\([^()\n]{{1,24}}\))"
_NL_RUN = re.compile(rf"{_NL_TOKEN}(?:[ ,]{{1,2}}{_NL_TOKEN})*")


class NonLatinScriptRecognizer(EntityRecognizer):  # type: ignore[misc]
    """``PERSON`` for a short run of non-Latin words; ``STREET_ADDRESS`` for a run of them holding digits."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(supported_entities=["PERSON", "STREET_ADDRESS"], supported_language=supported_language,
                         name="NonLatinScriptRecognizer")  # fmt: skip

    def load(self) -> None:
        """Nothing to load (pure script detection)."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """One finding per run of non-Latin-script tokens."""
        results = []
        for match in _NL_RUN.finditer(text):
            value = match.group().rstrip(" ,.")
            if not re.search(f"[{_SCRIPT}]", value):
                continue
            entity = "STREET_ADDRESS" if re.search(r"\d", value) else "PERSON"
            if entity == "PERSON" and len(value.split()) > 8:
                continue  # a whole sentence in another language is content, not a name
            if entity in entities:
                results.append(RecognizerResult(entity, match.start(), match.start() + len(value), 0.7))
        return results


# ------------------------------------------------------------------------------------------------ Latin addresses
_STREET_WORDS = (
    "street st str road rd avenue ave av lane ln drive dr boulevard blvd court ct place pl square sq terrace way "
    "parkway pkwy highway hwy close crescent grove gardens row mews hill walk suite apt apartment flat unit floor "
    "rue allée allee impasse chemin quai route cours voie via viale piazza piazzale corso vicolo largo strada "
    "contrada borgo calle camino acceso avenida paseo plaza carrera cuesta ronda travesía glorieta urbanización "
    "pasaje vía rambla ulica ul al aleja plac os osiedle rynek skwer appartamento piso puerta bajo"
)
_STREET_SUFFIXES = ("straße", "strasse", "str", "gasse", "weg", "platz", "allee", "ring", "damm", "ufer", "chaussee",
                    "straat", "laan", "plein", "singel", "gracht", "kade", "hof", "steeg", "baan", "dreef", "pad",
                    "gatan", "vägen", "torget", "gränd", "stigen", "backen", "allén", "plan", "leden", "stråket",
                    "park", "markt", "steig", "berg", "boulevard", "dijk", "haven", "veld", "kanaal",
                    "avenue")  # fmt: skip
# Street types written in lower case inside an address (French, Italian, Spanish, Polish, Russian-style abbreviations).
_LOWER_STREETS = frozenset(
    [
        "rue",
        "avenue",
        "boulevard",
        "allée",
        "allee",
        "impasse",
        "chemin",
        "quai",
        "route",
        "cours",
        "place",
        "via",
        "viale",
        "piazza",
        "corso",
        "vicolo",
        "calle",
        "camino",
        "avenida",
        "paseo",
        "ulica",
        "ul",
        "al",
        "aleja",
        "plac",
        "pl",
        "os",
        "osiedle",
        "rynek",
    ]
)
_ADDRESS_LOCALES = ("en_US", "en_GB", "en_IE", "en_AU", "en_CA", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL", "sv_SE",
                    "pl_PL")  # fmt: skip
_POSTCODE = re.compile(r"^(?:\d{5}|\d{6}|\d{2}-\d{3}|\d{4}[A-Z]{2}|\d{3} ?\d{2}|[A-Z]{1,2}\d[A-Z\d]?|\d[A-Z]{2})$")
_HOUSE_NUMBER = re.compile(r"\d{1,6}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?")
_PARTICLES = frozenset(
    [
        "de",
        "la",
        "le",
        "les",
        "du",
        "des",
        "del",
        "della",
        "di",
        "da",
        "van",
        "der",
        "den",
        "het",
        "von",
        "zu",
        "am",
        "an",
        "im",
        "sur",
        "sous",
        "lès",
        "y",
        "e",
        "i",
        "'s",
        "aan",
        "op",
        "bij",
        "ter",
        "ten",
    ]
)
_ABBREV = re.compile(r"^(?:[A-Za-zÀ-ÿ]{1,5}\.)+$")
_LAT_TOKEN = re.compile(r"\(?[^\W_][\w'’./-]*\)?|'s-[\w-]+")


@lru_cache(maxsize=1)
def street_words() -> frozenset[str]:
    """Lower-cased street-type words: the list above plus Faker's street suffixes / prefixes of several locales."""
    words = set(_STREET_WORDS.split())
    for locale in _ADDRESS_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.address.{locale}").Provider
        except ModuleNotFoundError:
            continue
        for attr in ("street_suffixes", "street_prefixes", "street_titles"):
            raw = getattr(provider, attr, ())
            for value in raw.keys() if isinstance(raw, dict) else raw:
                if isinstance(value, str):
                    words.update(w.strip(".").lower() for w in value.split() if len(w.strip(".")) > 1)
    return frozenset(words)


def _address_token(word: str) -> bool:
    core = word.strip("(),")
    if not core:
        return False
    if core[0].isdigit() or core[0].isupper() or core.startswith("'s-"):
        return True
    bare = core.rstrip(".").lower()
    return bare in _PARTICLES or bare in street_words()


def _is_street(word: str) -> bool:
    """A capitalised street word or compound ("Village", "Wesackstraße"), or a lower-case one ("rue", "ul.")."""
    bare = word.strip("(),.").lower()
    if bare in _LOWER_STREETS:
        return True
    if not word.strip("(")[:1].isupper():
        return False
    # A compound needs a stem of 3+ letters before a short suffix ("Weg", "Ring"), 2+ before a long one ("Ekvägen").
    return bare in street_words() or any(
        bare.endswith(s) and len(bare) - len(s) >= (2 if len(s) >= 5 else 3) for s in _STREET_SUFFIXES
    )


class LatinAddressRecognizer(EntityRecognizer):  # type: ignore[misc]
    """``STREET_ADDRESS``: runs of capitalised words, numbers and postcodes anchored by a street word (module doc)."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(supported_entities=["STREET_ADDRESS"], supported_language=supported_language,
                         name="LatinAddressRecognizer")  # fmt: skip

    def load(self) -> None:
        """Load the street-word list (cached per process)."""
        street_words()

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """One finding per address-like run (see :func:`address_runs`)."""
        if "STREET_ADDRESS" not in entities:
            return []
        return [RecognizerResult("STREET_ADDRESS", s, e, 0.9) for s, e in address_runs(text)]


def address_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of runs that hold a house number next to a street word, or a street word and a postcode."""
    runs: list[list[re.Match[str]]] = []
    current: list[re.Match[str]] = []
    for match in _LAT_TOKEN.finditer(text):
        word = match.group()
        joined = current and re.fullmatch(r",? ?|, ?\n?|\n", text[current[-1].end() : match.start()]) is not None
        prev = current[-1].group() if current else ""
        ended = prev.endswith(".") and not (_ABBREV.match(prev) or _is_street(prev))
        if current and (not joined or ended):
            runs.append(current)
            current = []
        if _address_token(word):
            current.append(match)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [span for run in runs if (span := _anchored(text, run))]


def _anchored(text: str, run: list[re.Match[str]]) -> tuple[int, int] | None:
    words = [m.group().strip("(),") for m in run]
    numbers = [i for i, w in enumerate(words) if _HOUSE_NUMBER.fullmatch(w.rstrip("."))]
    streets = [i for i, w in enumerate(words) if _is_street(w)]
    postcodes = [i for i, w in enumerate(words) if _POSTCODE.match(w.rstrip("."))]
    if not numbers or not streets or len(run) < 3:
        return None
    if not any(abs(n - s) <= 4 for n in numbers for s in streets) and not postcodes:
        return None
    # Capitalised words before the number / street word belong to it ("Via Parisi", "Camino Delfina Puente 4").
    start = max(0, min(min(numbers), min(streets)) - 4)
    end = run[-1].end()
    while text[end - 1] in ".,":
        end -= 1
    return run[start].start(), end
