"""Validators for PII values and a scrubber-independent scan for validated identifiers (no Presidio import).

- :func:`card_valid` (Luhn + issuer prefix), :func:`iban_valid` (ISO 13616 mod-97 + country length),
  :func:`ssn_valid` (SSA area / group / serial rules), :func:`phone_shaped` (digit count, not a date / IP / version).
- :func:`validated_findings`: card numbers, IBANs, SSNs and email addresses found by pattern + validator alone. The
  curation's residual-PII check runs it on top of the scrubber's own scan, so a value that intake missed (a model
  miss, a narrowed ``pii.entities``, a raised threshold, a row written around the intake) still cannot reach a
  dataset.
"""

from __future__ import annotations

import re

from core.ports import PiiFinding

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


IBAN_PATTERN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
CARD_PATTERN = re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d){8,15}(?![\d-])")
_SSN_DASHED = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_SSN_PLAIN = re.compile(r"(?<![\d-])\d{3} ?\d{2} ?\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security|ss#)", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")


def iban_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of valid IBANs in ``text``; a grouped match is shortened group by group until it validates."""
    spans = []
    for match in IBAN_PATTERN.finditer(text):
        value = match.group()
        while value and not iban_valid(value):
            cut = value.rfind(" ")
            value = value[:cut] if cut > 4 else ""
        if value:
            spans.append((match.start(), match.start() + len(value)))
    return spans


def validated_findings(text: str) -> list[PiiFinding]:
    """Cards, IBANs, SSNs (dashed, or nine digits after "SSN" / "social security") and emails in ``text``."""
    found = [
        PiiFinding("CREDIT_CARD", m.start(), m.end(), 1.0) for m in CARD_PATTERN.finditer(text) if card_valid(m.group())
    ]
    found += [PiiFinding("IBAN_CODE", s, e, 1.0) for s, e in iban_spans(text)]
    found += [PiiFinding("US_SSN", m.start(), m.end(), 1.0) for m in _SSN_DASHED.finditer(text) if ssn_valid(m.group())]
    found += [
        PiiFinding("US_SSN", m.start(), m.end(), 1.0)
        for m in _SSN_PLAIN.finditer(text)
        if ssn_valid(m.group()) and _SSN_CONTEXT.search(text[max(0, m.start() - 40) : m.start()])
    ]
    found += [PiiFinding("EMAIL_ADDRESS", m.start(), m.end(), 1.0) for m in _EMAIL.finditer(text)]
    return sorted(found, key=lambda f: f.start)
