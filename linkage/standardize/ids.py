"""Resident ID numbers (公民身份号码, GB 11643-1999): normalise, upgrade, check, decode.

Why this matters: the ID is the strongest single piece of evidence the linkage model has,
so a damaged ID must become *missing*, never a wrong value. Three kinds of damage occur:

* typing noise: full-width digits, spaces, a lowercase ``x`` check character;
* legacy 15-digit IDs (issued before 1999) that must be upgraded to 18 characters to
  compare with the same person's modern ID;
* Excel damage in the civil-affairs XLSX: an 18-digit number exceeds Excel's 15
  significant digits, so it is stored as ``1.10105E+17`` or as a number whose last three
  digits have become ``000`` (rendered ``110105194803121000`` or ``…000.0``).

The check-digit arithmetic comes from ``stdnum.cn.ric``; the damage detection, the 15→18
upgrade and the (trivial, but hot) birth-date slicing are written here.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from stdnum.cn import ric

from linkage.standardize.chars import clean_text

logger = logging.getLogger(__name__)

# Problem codes, carried to linkage.person_features.id_problem.
EXCEL_DAMAGED = "excel_damaged"
WRONG_LENGTH = "wrong_length"
BAD_FORMAT = "bad_format"
BAD_CHECK_DIGIT = "bad_check_digit"
BAD_BIRTH_DATE = "bad_birth_date"
BAD_REGION = "bad_region"
NOT_RESIDENT_ID = "not_resident_id"

# First two digits of a region code: the provinces of GB/T 2260 (71 Taiwan, 81 Hong Kong,
# 82 Macao, 83 the code used on residence permits for Taiwan residents).
_PROVINCES = frozenset(
    ("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
     "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
     "63", "64", "65", "71", "81", "82", "83")
)  # fmt: skip
# Oldest plausible birth year of a living or recently deceased resident.
_MIN_BIRTH_YEAR = 1880

_SEPARATORS = re.compile(r"[-_/\\.,'\"`]")
_SCIENTIFIC = re.compile(r"^\d+(?:\.\d+)?E[+-]?\d+$")
_FLOAT_RENDERED = re.compile(r"^(\d+)\.0+$")
_ID18 = re.compile(r"^\d{17}[\dX]$")
_ID15 = re.compile(r"^\d{15}$")
_HAS_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class IdResult:
    """What one ID value says, and why it is not usable when it is not.

    ``id_norm`` is kept for a wrong check digit (the same typo may recur in another feed
    and is still evidence) but is None when the value is blank, not an ID, the wrong
    length or Excel-damaged. ``birth``, ``sex`` and ``region`` are only decoded from a
    valid ID, because decoding a mistyped one would invent facts.
    """

    id_norm: str | None
    valid: bool
    birth: dt.date | None = None
    sex: str | None = None
    region: str | None = None
    problem: str | None = None
    upgraded: bool = False


_MISSING = IdResult(id_norm=None, valid=False)


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits (``0``–``9`` or ``X``).

    Delegates to ``stdnum.cn.ric.calc_check_digit``, which expects the full number with
    a placeholder in the check position.
    """
    return str(ric.calc_check_digit(first17 + "0"))


def upgrade_15_to_18(id15: str) -> str:
    """Turn a legacy 15-digit ID into its 18-character form.

    The 15-digit format (before 1999) wrote the birth year with two digits and had no
    check character; every holder was born in the 1900s, so the upgrade inserts ``19``
    after the six-digit region code and appends the computed check character — exactly
    what the public security system did when it reissued the cards.
    """
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_digit(first17)


def clean_id(raw: str | None) -> str | None:
    """Half-width, upper-case, without spaces or separators; None when blank."""
    text = clean_text(raw)
    if text is None:
        return None
    text = text.upper()
    if _SCIENTIFIC.match(text):
        return text  # keep the dot so the caller can recognise Excel notation
    if _FLOAT_RENDERED.match(text):
        return text
    return _SEPARATORS.sub("", text) or None


def _birth_date(id18: str) -> dt.date | None:
    """The birth date in positions 7–14, or None when it is not a real date.

    Sliced by hand rather than with ``ric.get_birth_date``: that function re-cleans the
    number on every call, which is most of the cost of standardising two million IDs.
    """
    try:
        return dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    except ValueError:
        return None


def _decode(id18: str, *, upgraded: bool) -> IdResult:
    """Check an 18-character ID and decode birth date, sex and region from it."""
    if id18[17] != check_digit(id18[:17]):
        return IdResult(id_norm=id18, valid=False, problem=BAD_CHECK_DIGIT, upgraded=upgraded)
    birth = _birth_date(id18)
    if birth is None or birth.year < _MIN_BIRTH_YEAR or birth > dt.date.today():
        return IdResult(id_norm=id18, valid=False, problem=BAD_BIRTH_DATE, upgraded=upgraded)
    if id18[:2] not in _PROVINCES:
        return IdResult(id_norm=id18, valid=False, problem=BAD_REGION, upgraded=upgraded)
    sex = "M" if int(id18[16]) % 2 == 1 else "F"
    return IdResult(
        id_norm=id18, valid=True, birth=birth, sex=sex, region=id18[:6], upgraded=upgraded
    )


@lru_cache(maxsize=262144)
def normalize_id(raw: str | None) -> IdResult:
    """Normalise one delivered ID value and say whether it can be trusted.

    Blank values and values without a single digit (``无``, ``不详``) are missing without
    a problem code: absence is not damage. Problem codes: ``excel_damaged``,
    ``wrong_length``, ``bad_format``, ``bad_check_digit``, ``bad_birth_date``,
    ``bad_region``.

    An 18-digit value ending in ``000`` is treated as Excel damage even when its check
    digit happens to pass (1 in 11 damaged values do): Excel keeps 15 significant digits,
    so the last three become zeros. A genuine ID ends in ``000`` about once in 1,100;
    losing it costs a missing value, whereas accepting a damaged one would link strangers.
    A 15-digit number rendered as a float (``110105480312123.0``) is exact in Excel and is
    recovered.
    """
    text = clean_id(raw)
    if text is None or not _HAS_DIGIT.search(text):
        return _MISSING
    if _SCIENTIFIC.match(text):
        return IdResult(id_norm=None, valid=False, problem=EXCEL_DAMAGED)
    rendered = _FLOAT_RENDERED.match(text)
    if rendered:
        if len(rendered.group(1)) != 15:
            return IdResult(id_norm=None, valid=False, problem=EXCEL_DAMAGED)
        text = rendered.group(1)
    if _ID15.match(text):
        return _decode(upgrade_15_to_18(text), upgraded=True)
    if not _ID18.match(text):
        if text.isdigit() or (text[:-1].isdigit() and text[-1] == "X"):
            return IdResult(id_norm=None, valid=False, problem=WRONG_LENGTH)
        return IdResult(id_norm=None, valid=False, problem=BAD_FORMAT)
    if text.endswith("000"):
        return IdResult(id_norm=None, valid=False, problem=EXCEL_DAMAGED)
    return _decode(text, upgraded=False)
