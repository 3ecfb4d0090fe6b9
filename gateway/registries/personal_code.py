"""Latvian personal codes (personas kods): format and checksum.

Two kinds exist:

* old codes ``DDMMYY-CNNNN`` (issued until mid-2017) carry the birth date; ``C`` is the century
  (0: 1800s, 1: 1900s, 2: 2000s) and the last digit is a check digit over the other ten::

      sum   = 1*d1 + 6*d2 + 3*d3 + 7*d4 + 9*d5 + 10*d6 + 5*d7 + 8*d8 + 4*d9 + 2*d10
      check = (1101 - sum) mod 11

  A remainder of 10 cannot be written as one digit; like python-stdnum (``lv.pvn``) we accept
  0 then (``check mod 10``), so no real code is ever refused by the gateway.
* new codes ``32NNNN-NNNNN`` carry no birth date and no public check digit: format only.

Codes are accepted only in the hyphenated form PLUS and the registries use.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["WEIGHTS", "check_digit", "is_valid", "problem"]

#: Weights of the ten leading digits of an old-format code.
WEIGHTS = (1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

_FORMAT = re.compile(r"[0-9]{6}-[0-9]{5}")
_CENTURIES = {"0": 1800, "1": 1900, "2": 2000}


def check_digit(first_ten: str) -> int:
    """The check digit of an old-format code from its ten leading digits (no hyphen)."""
    if len(first_ten) != 10 or not first_ten.isdigit():
        raise ValueError("ten digits expected")
    total = sum(w * int(d) for w, d in zip(WEIGHTS, first_ten, strict=True))
    return (1101 - total) % 11 % 10


def problem(code: object) -> str | None:
    """Why ``code`` is not a valid personal code, or None when it is.

    The message never repeats the code (it is personal data).
    """
    if not isinstance(code, str) or not _FORMAT.fullmatch(code):
        return "must have the form DDMMYY-NNNNN"
    digits = code.replace("-", "")
    if digits.startswith("32"):
        return None
    century = _CENTURIES.get(digits[6])
    if century is None:
        return "the seventh digit of a code with a birth date must be 0, 1 or 2"
    try:
        dt.date(century + int(digits[4:6]), int(digits[2:4]), int(digits[0:2]))
    except ValueError:
        return "does not start with a valid birth date DDMMYY"
    if check_digit(digits[:10]) != int(digits[10]):
        return "check digit does not match"
    return None


def is_valid(code: object) -> bool:
    """True when ``code`` is a well-formed personal code with a correct check digit."""
    return problem(code) is None
