"""Phone numbers: one digit string per number, and whether it is a mobile or a landline.

Why: departments write the same number as ``+86 138-1234-5678``, ``008613812345678``,
``(010)6512-3456`` or ``010 65123456``; civil-affairs cells may even hold two numbers or
an Excel-rendered float. A phone is shared by a household (and on civil-affairs rows is
often a relative's), so it is weaker evidence than the ID — but only if equal numbers
compare equal. No library covers this well for mainland numbers (python-stdnum has no
Chinese phone module; jionlp's phone tools locate numbers rather than normalise them), so
the rules are written here from the numbering plan:

* mobile: 11 digits, ``1[3-9]`` followed by 9 digits;
* landline: area code ``010`` or ``02x`` (3 digits) or ``0[3-9]xx`` (4 digits), then a
  7–8-digit subscriber number that does not start with 0 or 1;
* a 7–8-digit number without area code is kept as a local landline (it is still
  evidence between records of the same district), not invented an area code.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from linkage.standardize.chars import to_halfwidth

logger = logging.getLogger(__name__)

MOBILE = "mobile"
LANDLINE = "landline"

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(?:010|02\d|0[3-9]\d{2})[2-9]\d{6,7}$")
_LOCAL = re.compile(r"^[2-9]\d{6,7}$")
_SCIENTIFIC = re.compile(r"^\d+(?:\.\d+)?[eE][+-]?\d+$")
_FLOAT_RENDERED = re.compile(r"^(\d+)\.0+$")
# Several numbers in one cell: 13812345678/010-65123456, 138…；139…, 138… 或 139….
_SPLIT = re.compile(r"[,，;；/、|]|或")
# Extensions: 010-65123456-801, 010-65123456转801, ext. 801.
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x)\s*\d{1,6}$|(?<=\d{7})-\d{1,5}$", re.IGNORECASE)
_COUNTRY = re.compile(r"^(?:\+|00)\s*86")


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """A standardised phone (digits only) and its kind, both None when unusable."""

    phone_std: str | None
    kind: str | None


_INVALID = PhoneResult(phone_std=None, kind=None)


def _is_placeholder(digits: str) -> bool:
    """Numbers like 13800000000 or 11111111111 are typed to fill a mandatory field."""
    return len(set(digits[-8:])) == 1


def _classify(candidate: str) -> PhoneResult:
    """Standardise one candidate number (a single number, separators still present)."""
    text = _EXTENSION.sub("", candidate.strip())
    international = bool(_COUNTRY.match(text))
    digits = re.sub(r"\D", "", _COUNTRY.sub("", text))
    if not international and len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]  # 8613812345678: country code without + or 00
    if international and not digits.startswith("0") and not _MOBILE.match(digits):
        digits = "0" + digits  # +86 10 65123456: the trunk 0 is dropped abroad
    if _MOBILE.match(digits) and not _is_placeholder(digits):
        return PhoneResult(digits, MOBILE)
    if (_LANDLINE.match(digits) or _LOCAL.match(digits)) and not _is_placeholder(digits):
        return PhoneResult(digits, LANDLINE)
    return _INVALID


@lru_cache(maxsize=262144)
def standardize_phone(raw: str | None) -> PhoneResult:
    """Standardise a delivered phone value; the first usable number of a cell wins.

    ``+86``/``0086``/``86`` prefixes, spaces, dashes, dots and parentheses are removed;
    landlines keep their area code (``010-65123456`` → ``01065123456``); extensions are
    dropped. An Excel float with ``.0`` is exact for 11 digits and is recovered; scientific
    notation has lost digits and is invalid.
    """
    if raw is None:
        return _INVALID
    text = to_halfwidth(raw).strip()
    if not text or _SCIENTIFIC.match(text):
        return _INVALID
    rendered = _FLOAT_RENDERED.match(text)
    if rendered:
        text = rendered.group(1)
    for candidate in _SPLIT.split(text):
        if candidate.strip():
            result = _classify(candidate)
            if result.phone_std is not None:
                return result
    return _INVALID
