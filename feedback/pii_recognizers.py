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
- Street addresses and non-Latin-script names: :mod:`feedback.pii_addresses`; validators:
  :mod:`feedback.pii_validators`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import IpRecognizer

from feedback.pii_validators import CARD_PATTERN, IBAN_PATTERN, card_valid, iban_spans, phone_shaped, ssn_valid


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
    pattern = Pattern("card", CARD_PATTERN.pattern, 0.3)
    return _Validated(entity="CREDIT_CARD", patterns=[pattern], check=card_valid, name="CardRecognizer",
                      context=["card", "visa", "mastercard", "amex", "credit", "debit"])  # fmt: skip


class IbanCheckedRecognizer(PatternRecognizer):  # type: ignore[misc]
    """``IBAN_CODE``: compact or grouped by four, mod-97 and length validated; trailing words are never swallowed."""

    def __init__(self) -> None:
        super().__init__(supported_entity="IBAN_CODE", patterns=[Pattern("iban", IBAN_PATTERN.pattern, 0.3)],
                         name="IbanCheckedRecognizer")  # fmt: skip

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> Any:
        """Case-sensitive matches, shortened group by group until one validates (:func:`iban_spans`)."""
        return [RecognizerResult("IBAN_CODE", s, e, 0.95) for s, e in iban_spans(text)]


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
