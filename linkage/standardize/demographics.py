"""Birth date and sex: the two demographic fields every feed codes its own way.

Why: public security writes ``19480312``; civil affairs keeps only year and month, typed
as ``1948-03``, ``1948年3月`` or ``194803``, or lets Excel turn the cell into a date
(arriving as an ISO string or as a day serial such as ``17604``); health stores a real
date. Sex is ``男``/``女``, ``M``/``F`` or the GB/T 2261.1 codes ``1``/``2``. The model needs
one coding, and it needs to know how precise a birth date is: ``1948-03`` agrees with
``1948-03-12``, it does not contradict it.

No installed library parses this mix reliably (jionlp's time parser is built for
free-text expressions and guesses missing parts from the current date, which is wrong for
birth dates), so the formats are matched explicitly and anything else is rejected.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from functools import lru_cache
from typing import NamedTuple

from linkage.standardize.chars import clean_text

logger = logging.getLogger(__name__)

DAY = "day"
MONTH = "month"
YEAR = "year"

MIN_BIRTH_YEAR = 1880
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_FAKE_LEAP_DAY = 60  # 1900-02-29, which Excel counts although it never existed

_ISO_DATETIME = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ]?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
_SEPARATED = re.compile(r"^(\d{4})[-/.年](\d{1,2})(?:[-/.月](\d{1,2})[日号]?|月)?$")
_YEAR_ONLY = re.compile(r"^(\d{4})年?$")
_COMPACT_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_COMPACT_MONTH = re.compile(r"^(\d{4})(\d{2})$")
_EXCEL_SERIAL = re.compile(r"^(\d{5})(?:\.\d+)?$")

_SEX_CODES = {
    "男": "M", "男性": "M", "M": "M", "MALE": "M", "1": "M",
    "女": "F", "女性": "F", "F": "F", "FEMALE": "F", "2": "F",
}  # fmt: skip


class BirthDate(NamedTuple):
    """A parsed birth date: the date when the day is known, ``YYYY-MM`` when the month
    is, and how precise the source value was (``day``, ``month``, ``year`` or None).

    A year-only value yields precision ``year`` with neither date nor month: the feature
    table has no year column.
    """

    date: dt.date | None
    ym: str | None
    precision: str | None


_UNKNOWN = BirthDate(None, None, None)


def excel_serial_to_date(serial: float) -> dt.date | None:
    """Convert an Excel (1900 date system) day serial to a date.

    Excel inherited Lotus 1-2-3's bug of treating 1900 as a leap year: serial 60 is the
    non-existent 1900-02-29 and every serial from 61 on is one day too high relative to
    a plain count from 1899-12-31. Serials 1–59 count from 1899-12-31, serial 60 has no
    real date (None), and later serials count from 1899-12-30. A time-of-day fraction is
    dropped.
    """
    day = int(serial)
    if day < 1 or day == _EXCEL_FAKE_LEAP_DAY:
        return None
    if day < _EXCEL_FAKE_LEAP_DAY:
        return dt.date(1899, 12, 31) + dt.timedelta(days=day)
    try:
        return _EXCEL_EPOCH + dt.timedelta(days=day)
    except OverflowError:
        return None


def _plausible_year(year: int, today: dt.date) -> bool:
    return MIN_BIRTH_YEAR <= year <= today.year


def _day(year: int, month: int, day: int, today: dt.date) -> BirthDate:
    """A day-precision result, or unknown when the date is impossible or in the future."""
    if not _plausible_year(year, today):
        return _UNKNOWN
    try:
        value = dt.date(year, month, day)
    except ValueError:
        return _UNKNOWN
    if value > today:
        return _UNKNOWN
    return BirthDate(value, f"{year:04d}-{month:02d}", DAY)


def _month(year: int, month: int, today: dt.date) -> BirthDate:
    """A month-precision result, or unknown when impossible or in the future."""
    if not _plausible_year(year, today) or not 1 <= month <= 12:
        return _UNKNOWN
    if (year, month) > (today.year, today.month):
        return _UNKNOWN
    return BirthDate(None, f"{year:04d}-{month:02d}", MONTH)


@lru_cache(maxsize=65536)
def _parse_text(text: str, today: dt.date) -> BirthDate:
    """Parse one cleaned text value; the formats are tried from most to least specific.

    A 5-digit number is read as an Excel serial (10000 = 1927-05-18, 99999 = 2173), a
    4-digit number as a year. Shorter numbers are too ambiguous (a serial below 10000 is a
    birth before 1927 and also looks like a year) and are rejected.
    """
    for pattern in (_ISO_DATETIME, _SEPARATED):
        match = pattern.match(text)
        if match:
            year, month, day = match.groups()
            if day is None:
                return _month(int(year), int(month), today)
            return _day(int(year), int(month), int(day), today)
    match = _COMPACT_DAY.match(text)
    if match:
        year, month, day = (int(part) for part in match.groups())
        return _day(year, month, day, today)
    match = _COMPACT_MONTH.match(text)
    if match:
        return _month(int(match.group(1)), int(match.group(2)), today)
    match = _EXCEL_SERIAL.match(text)
    if match:
        value = excel_serial_to_date(int(match.group(1)))
        if value is None:
            return _UNKNOWN
        return _day(value.year, value.month, value.day, today)
    match = _YEAR_ONLY.match(text)
    if match and _plausible_year(int(match.group(1)), today):
        return BirthDate(None, None, YEAR)
    return _UNKNOWN


def parse_birth_date(raw: str | dt.date | None, *, today: dt.date | None = None) -> BirthDate:
    """Parse a delivered birth date in any of the feeds' formats.

    Accepted: ``19480312``, ``1948-03-12``, ``1948/3/12``, ``1948.3.12``, ``1948-03``,
    ``1948年3月``, ``1948年3月12日``, ``194803``, ``1948``, Excel serials (``17604``),
    ISO datetimes (``1948-03-12T00:00:00``, ``1948-03-12 00:00:00``) and ``date`` or
    ``datetime`` objects. Impossible dates (``19480230``, month 13), dates before 1880 and
    dates after ``today`` are rejected: a wrong birth date is worse than none.
    """
    today = today or dt.date.today()
    if raw is None:
        return _UNKNOWN
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        return _day(raw.year, raw.month, raw.day, today)
    text = clean_text(str(raw))
    if text is None:
        return _UNKNOWN
    return _parse_text(text, today)


def normalize_sex(raw: str | None) -> str | None:
    """``男``/``女``, ``M``/``F``, ``male``/``female`` and codes ``1``/``2`` → ``M``/``F``.

    GB/T 2261.1 codes 0 (unknown) and 9 (unstated) and anything else become None: an
    unknown sex must not count as a disagreement.
    """
    text = clean_text(raw)
    if text is None:
        return None
    if text.endswith(".0"):
        text = text[:-2]  # 1.0 from a numeric spreadsheet cell
    return _SEX_CODES.get(text.upper())
