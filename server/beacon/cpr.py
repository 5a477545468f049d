"""Refuse identifiers that look like Danish CPR numbers.

A CPR number is ``DDMMYY-XXXX`` (or the same ten digits without the dash).
Such a value must never enter the store, so it can never reach a response:
loaders call :func:`check_identifier` on every identifier and
:func:`find_in_document` on every metadata document.
"""

from __future__ import annotations

import datetime as dt
import re

_DASHED = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{2})-(\d{4})(?!\d)")
_PLAIN = re.compile(r"^\s*(\d{2})(\d{2})(\d{2})(\d{4})\s*$")


def _valid_date(dd: str, mm: str, yy: str) -> bool:
    for century in (1900, 2000):
        try:
            dt.date(century + int(yy), int(mm), int(dd))
            return True
        except ValueError:
            continue
    return False


def looks_like_cpr(value: str) -> bool:
    """True for ``DDMMYY-XXXX`` anywhere in the value (day 01-31, month 01-12)
    or for a value that is exactly ten digits starting with a valid date."""
    if not isinstance(value, str):
        return False
    for m in _DASHED.finditer(value):
        if 1 <= int(m.group(1)) <= 31 and 1 <= int(m.group(2)) <= 12:
            return True
    m = _PLAIN.match(value)
    return bool(m and _valid_date(m.group(1), m.group(2), m.group(3)))


_TEN_DIGITS = re.compile(r"(?<!\d)\d{10}(?!\d)")


def text_may_contain(text: str) -> bool:
    """A fast whole-file pre-check: False means no value in it can look like a CPR."""
    return bool(_DASHED.search(text) or _TEN_DIGITS.search(text))


def find_in_document(doc, path: str = "") -> str | None:
    """The JSON path of the first CPR-like string in ``doc`` (keys included)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            here = f"{path}.{key}" if path else str(key)
            if looks_like_cpr(str(key)):
                return here
            found = find_in_document(value, here)
            if found:
                return found
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found = find_in_document(value, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(doc, str) and looks_like_cpr(doc):
        return path or "<value>"
    return None
