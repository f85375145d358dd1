"""Presidio recognizers the scrubber adds to (or puts in place of) Presidio's stock ones, plus their validators.

Each is a Presidio ``PatternRecognizer`` / ``EntityRecognizer`` so the analyzer's registry, context enhancement and
batch API treat them like the built-ins:

- ``CREDIT_CARD``: 12-19 digits in groups, Luhn-valid, with a known issuer prefix (Visa, Mastercard 51-55 and
  2221-2720, Amex, Discover, JCB, Diners, UnionPay, Maestro). Replaces Presidio's, which misses 2-series, 19-digit
  and 12-digit numbers.
- ``IBAN_CODE``: country code + check digits + BBAN, compact or in groups of four, mod-97 and per-country length.
- ``US_SSN``: ``AAA-GG-SSSS`` (SSA rules: area not 000/666/9xx, group not 00, serial not 0000) on its own; nine bare
  digits (or space-separated) only with a context word ("SSN", "social security").
- ``DATE_OF_BIRTH``: dates in ISO, numeric day/month orders and written months, only with a context word ("DOB",
  "born", "birth", "birthday"); a bare date in a ticket is content, not PII.
- ``PHONE_NUMBER`` (fallback for what libphonenumber does not validate): 7-15 digits in phone-shaped groups with
  an optional ``+CC``, ``(0)``, parentheses and extension; ``+CC`` numbers count on their own, others need a context
  word ("call", "phone", "mobile" ...).
- ``URL``: only with a scheme (``https://``) or ``www.`` — a bare ``name.ext`` is a file or a host name
  (``pg_hba.conf``,
  ``db01.internal``), which is content.
- ``IP_ADDRESS``: Presidio's patterns, but private, loopback, link-local, reserved and documentation addresses (every
  address Python's ``ipaddress`` does not call global) and any
  address with a ``/prefix`` (a CIDR network, as in ``host all all 10.0.0.0/8 md5``) are technical content; a public
  host address (a customer's connection) is PII.
- ``STREET_ADDRESS`` in Latin script: a run of capitalised words, house numbers and postcodes holding a street word
  (Faker's street suffixes of 12 locales plus common street-type words) or a postcode next to a house number.
- Names and addresses in non-Latin scripts (Han, Kana, Hangul, Cyrillic, Arabic, Devanagari, Greek, Hebrew, Thai):
  in English support text a short run of such words is a name (``PERSON``); a run holding digits is an address.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from functools import lru_cache
from typing import Any

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import IpRecognizer

# ------------------------------------------------------------------------------------------------ validators
_ISSUER_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|6011|64[4-9]|65|35(?:2[89]|[3-8]\d)"
    r"|30[0-5]|3[689]|62|5[06-8]|6\d)"
)
IBAN_LENGTHS = {"AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
                "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
                "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
                "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26}  # fmt: skip


def digits_of(text: str) -> str:
    """The ASCII digits of ``text`` in order."""
    return "".join(ch for ch in text if "0" <= ch <= "9")


def luhn_valid(number: str) -> bool:
    """Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_valid(text: str) -> bool:
    """12-19 digits, Luhn-valid, with a known issuer prefix."""
    number = digits_of(text)
    return 12 <= len(number) <= 19 and bool(_ISSUER_PREFIX.match(number)) and luhn_valid(number)


def iban_valid(text: str) -> bool:
    """Known country length and ISO 13616 mod-97 check."""
    iban = re.sub(r"[\s-]", "", text).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    return int("".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])) % 97 == 1


def ssn_valid(text: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000; not one repeated digit."""
    d = digits_of(text)
    if len(d) != 9 or len(set(d)) == 1:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def phone_shaped(text: str) -> bool:
    """7-15 digits that are not a date, an IPv4 address or a version string."""
    main = re.split(r"\s*(?:x|ext\.?)\s*\d+$", text)[0]
    d = digits_of(main)
    if not 7 <= len(d) <= 15 or len(set(d)) == 1:
        return False
    return not re.fullmatch(
        r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}", main
    )


# ------------------------------------------------------------------------------------------------ pattern recognizers
class _Validated(PatternRecognizer):  # type: ignore[misc]
    """A pattern recognizer whose matches are kept only when ``check`` accepts them (score raised to ``VALID``)."""

    VALID = 0.9

    def __init__(self, *, entity: str, patterns: list[Pattern], check: Any, name: str, context: Any = None) -> None:
        super().__init__(supported_entity=entity, patterns=patterns, name=name, context=context)
        self._check = check

    def validate_result(self, pattern_text: str) -> bool | None:
        """``True`` raises the score to ``VALID``; ``False`` drops the match."""
        return bool(self._check(pattern_text))

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
        """Presidio's pattern matching, then validated matches get ``VALID`` (unless the pattern scored higher)."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for r in results:
            r.score = max(r.score, self.VALID) if r.score >= 1.0 else r.score
        return results


def card_recognizer() -> PatternRecognizer:
    """``CREDIT_CARD``: grouped or plain 12-19 digits, Luhn + issuer validated."""
    pattern = Pattern("card", r"(?<![\d-])\d{4}(?:[ -]?\d){8,15}(?![\d-])", 0.3)
    return _Validated(entity="CREDIT_CARD", patterns=[pattern], check=card_valid, name="CardRecognizer",
                      context=["card", "visa", "mastercard", "amex", "credit", "debit"])  # fmt: skip


class IbanCheckedRecognizer(PatternRecognizer):  # type: ignore[misc]
    """``IBAN_CODE``: compact or grouped by four, mod-97 and length validated; trailing words are never swallowed."""

    _PATTERN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")

    def __init__(self) -> None:
        super().__init__(supported_entity="IBAN_CODE", patterns=[Pattern("iban", self._PATTERN.pattern, 0.3)],
                         name="IbanCheckedRecognizer")  # fmt: skip

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
        """Case-sensitive matches, shortened group by group until one validates."""
        results = []
        for match in self._PATTERN.finditer(text):
            value = match.group()
            while value and not iban_valid(value):
                cut = value.rfind(" ")
                value = value[:cut] if cut > 4 else ""
            if value:
                results.append(RecognizerResult("IBAN_CODE", match.start(), match.start() + len(value), 0.95))
        return results


class PrefixContextRecognizer(PatternRecognizer):  # type: ignore[misc]
    """A pattern recognizer whose matches gain ``BOOST`` when a context word is among the 6 words before them.

    Presidio's lemma enhancer reads only non-stop-word lemmas, and spaCy counts "call" as a stop word; so the
    window is read here, on the raw text (whole words, case-insensitive, a context word may be a word's prefix:
    "phone" matches "phoned").
    """

    BOOST = 0.35
    WINDOW = 6

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
        """Presidio's pattern matches, boosted by a preceding context word (marked so the engine does not re-boost)."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for r in results:
            before = re.findall(r"[^\W\d_][\w.#]*", text[max(0, r.start - 80) : r.start].lower())[-self.WINDOW :]
            if any(w.startswith(c) for w in before for c in self.context):
                r.score = min(1.0, r.score + self.BOOST)
            r.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
        return results


class SsnRecognizer(PrefixContextRecognizer):  # type: ignore[misc]
    """``US_SSN``: dashed form on its own; bare or spaced nine digits with a context word (Presidio's enhancer)."""

    def __init__(self) -> None:
        patterns = [
            Pattern("ssn_dashed", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", 0.6),
            Pattern("ssn_plain", r"(?<![\d-])\d{3}[ ]?\d{2}[ ]?\d{4}(?![\d-])", 0.2),
        ]
        super().__init__(supported_entity="US_SSN", patterns=patterns, name="SsnRecognizer",
                         context=["ssn", "ssns", "social", "security", "ss#", "ssa"])  # fmt: skip

    def validate_result(self, pattern_text: str) -> bool | None:
        """Invalid areas, groups and serials are dropped; valid ones keep the pattern's score (no raise)."""
        return None if ssn_valid(pattern_text) else False


_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)


def dob_recognizer() -> PrefixContextRecognizer:
    """``DATE_OF_BIRTH``: a date scored below the threshold unless a birth context word precedes it."""
    patterns = [
        Pattern("iso", r"\b(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])\b", 0.2),
        Pattern("numeric", r"\b(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:19|20)?\d\d\b", 0.2),
        Pattern(
            "d_month_y", rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(?:19|20)\d\d\b", 0.2
        ),
        Pattern("month_d_y", rf"\b{_MONTH}\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+(?:19|20)\d\d\b", 0.2),
    ]
    context = ["dob", "d.o.b", "birth", "born", "geboren", "née", "né"]
    return PrefixContextRecognizer(
        supported_entity="DATE_OF_BIRTH", patterns=patterns, context=context, name="DobRecognizer"
    )


class PhoneFallbackRecognizer(PrefixContextRecognizer):  # type: ignore[misc]
    """``PHONE_NUMBER`` in national and international formats libphonenumber does not validate (see module doc)."""

    _GROUPS = r"(?:\(\d{1,5}\)[ .-]?)?\d{1,11}(?:[ .-]{1,2}\(?\d{1,8}\)?){0,5}"
    _EXT = r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?"

    def __init__(self) -> None:
        patterns = [
            Pattern("intl", rf"(?<![\w+])\+\d{{1,3}}[ .-]?(?:\(0\)[ .-]?)?{self._GROUPS}{self._EXT}(?!\w)", 0.6),
            Pattern("national", rf"(?<![\w+.-]){self._GROUPS}{self._EXT}(?![\w.-]?\d)", 0.2),
        ]
        context = ["phone", "call", "called", "tel", "telephone", "mobile", "cell", "number", "reach", "ring", "fax",
                   "whatsapp", "hotline", "contact", "sms", "text"]  # fmt: skip
        super().__init__(supported_entity="PHONE_NUMBER", patterns=patterns, context=context, name="PhoneFallback")

    def validate_result(self, pattern_text: str) -> bool | None:
        """Drop what is not phone-shaped (too few digits, dates, IPv4, versions)."""
        return None if phone_shaped(pattern_text) else False


class SchemeUrlRecognizer(PatternRecognizer):  # type: ignore[misc]
    """``URL`` with a scheme or ``www.`` (the whole URL: paths and queries carry names and emails).

    A URL to ``localhost`` or to a non-global IP address (``http://10.0.0.5:8080/health``) is technical content.
    """

    def __init__(self) -> None:
        pattern = Pattern("url", r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]", 0.6)
        super().__init__(supported_entity="URL", patterns=[pattern], name="SchemeUrlRecognizer")

    def validate_result(self, pattern_text: str) -> bool | None:
        """Drop URLs to local or private hosts; keep the pattern's score otherwise."""
        host = re.sub(r"^(?:[a-z]+://)?(?:[^@/]*@)?", "", pattern_text).split("/")[0]
        host = re.sub(r":\d+$", "", host).strip("[]")
        if host == "localhost" or host.endswith(".localhost"):
            return False
        try:
            return None if ipaddress.ip_address(host).is_global else False
        except ValueError:
            return None


class PublicIpRecognizer(IpRecognizer):  # type: ignore[misc]
    """Presidio's IP patterns; private / reserved addresses and CIDR networks are technical content, not PII."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
        """Presidio's matches minus the technical ones (see :func:`ip_is_technical`)."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if not ip_is_technical(text, r.start, r.end)]


def ip_is_technical(text: str, start: int, end: int) -> bool:
    """A network (``/prefix`` follows) or a non-global address (private, loopback, documentation ...)."""
    if "/" in text[start:end] or re.match(r"/\d{1,3}\b", text[end:]):
        return True
    try:
        address = ipaddress.ip_address(text[start:end])
    except ValueError:
        return False
    return not address.is_global


# ------------------------------------------------------------------------------------------------ non-Latin scripts
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
    return bare in street_words() or any(bare.endswith(s) and len(bare) > len(s) + 2 for s in _STREET_SUFFIXES)


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
        return [RecognizerResult("STREET_ADDRESS", s, e, 0.75) for s, e in address_runs(text)]


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
