"""Character-level normalisation shared by names, addresses, phones and ID numbers.

Why a module of its own: every department types Chinese text differently. Civil affairs
staff type into Excel with a Chinese IME that produces full-width digits and letters
(``１１０１０５``), ideographic spaces and the occasional traditional character; the health
system stores clean UTF-8. Before any field-specific parsing, the same character must be
the same code point, or two spellings of one value will never compare equal.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

# NFKC does not remove zero-width characters or the BOM, which survive copy-paste from
# web forms and Word documents and make two identical-looking strings differ.
_WHITESPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")

# Chinese numerals as typed in addresses (三号楼, 二单元, 五〇一室). 两 is used for 2.
_DIGITS = {
    "〇": 0, "零": 0, "○": 0, "Ｏ": 0,
    "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
CHINESE_NUMERAL_CHARS = "".join(_DIGITS) + "".join(_UNITS)

_converter: Any = None
_converter_lock = threading.Lock()


def to_halfwidth(text: str) -> str:
    """Map full-width ASCII, the ideographic space and compatibility forms to plain ones.

    NFKC is the standard way to do this: ``１２３ＡＢｘ`` becomes ``123ABx`` and ``（`` becomes
    ``(``. It leaves ordinary CJK characters alone, so it is safe on names and addresses.
    """
    return unicodedata.normalize("NFKC", text)


def remove_whitespace(text: str) -> str:
    """Drop every kind of whitespace, including zero-width spaces and the BOM.

    Chinese names and addresses contain no meaningful spaces; stray ones (``张 伟``) are
    typing noise that would otherwise make equal values differ.
    """
    return _WHITESPACE.sub("", text)


def _opencc() -> Any:
    """Build the OpenCC traditional→simplified converter once, on first use.

    Building it loads dictionaries from disk; doing that at import time would slow every
    process that merely imports the package (Airflow parses DAG files often).
    """
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
                logger.debug("OpenCC t2s converter loaded")
    return _converter


@lru_cache(maxsize=65536)
def to_simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified ones (OpenCC ``t2s``).

    Hand-typed civil-affairs rows contain 張偉 for 张伟; OpenCC's phrase-aware tables are
    more reliable than a character map for the few characters whose simplification
    depends on context.
    """
    return str(_opencc().convert(text))


def chinese_numeral_to_int(text: str) -> int | None:
    """Read a Chinese numeral such as 三, 十二, 二十一, 一百零五 or 五〇一.

    Two notations occur in addresses: positional (十二 = 12, 一百零五 = 105) and digit by
    digit (五〇一 = 501, how room numbers are read aloud). A string with a unit
    character (十, 百, 千) is positional; otherwise it is read digit by digit.
    Returns None when the text is not a Chinese numeral.
    """
    if not text or any(ch not in _DIGITS and ch not in _UNITS for ch in text):
        return None
    if not any(ch in _UNITS for ch in text):
        return int("".join(str(_DIGITS[ch]) for ch in text))
    total = 0
    pending: int | None = None
    for ch in text:
        if ch in _DIGITS:
            pending = _DIGITS[ch]
        else:
            # 十二: a unit without a preceding digit means one of that unit.
            total += (1 if pending is None else pending) * _UNITS[ch]
            pending = None
    if pending is not None:
        total += pending
    return total


def replace_chinese_numerals(text: str, followed_by: str) -> str:
    """Replace Chinese numerals with digits, but only where followed by ``followed_by``.

    Converting every numeral would corrupt proper names (三里屯, 五道口, 十里堡); the
    numbers worth converting are those that count something, i.e. are followed by a unit
    word such as 号楼 or 单元. ``followed_by`` is a regular-expression alternation.
    """
    pattern = re.compile(rf"([{CHINESE_NUMERAL_CHARS}]+)(?=(?:{followed_by}))")

    def convert(match: re.Match[str]) -> str:
        value = chinese_numeral_to_int(match.group(1))
        return match.group(1) if value is None else str(value)

    return pattern.sub(convert, text)


def clean_text(value: str | None) -> str | None:
    """Half-width, whitespace-free text, or None when nothing is left.

    The common first step of every field: a value that is blank after cleaning is
    missing, not an empty string, so that comparisons treat it as unknown.
    """
    if value is None:
        return None
    cleaned = remove_whitespace(to_halfwidth(value))
    return cleaned or None
