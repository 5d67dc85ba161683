"""Addresses: administrative divisions, and the dwelling (estate, building, unit, room).

Why: the dwelling is what two records of one household share, and every department
writes it differently — ``幸福里小区3号楼2单元501室``, ``幸福里3-2-501``,
``幸福里小区3栋2单元501``, ``北京市朝阳区幸福里小区3幢2单元501号``. The model compares a
dwelling key ``estate|building|unit|room`` that is equal for all four.

Province/city/county come from jionlp's ``parse_location``. It costs 3–10 ms a call (about
12× less once ``_index_candidates`` has indexed its division names),
prints a banner on import, and matches aliases anywhere in an estate name: ``朝阳花园``
loses ``朝阳``, ``高碑店东区`` becomes Hebei's 高碑店市 + ``东区``, ``小关西区`` becomes
Panzhihua's 西区. So it is called only on the text before the first digit — all the
units of one estate share that head and one cached call — and its split is accepted only
when the removed prefix really spells the levels it reported (see ``_spells_levels``).
The dwelling parser is hand-written: no installed library splits building/unit/room.

Only generic estate suffixes are stripped (小区, 住宅小区, 社区): 幸福里 and 幸福里小区 are
one place, but 阳光花园 and 阳光家园 are two, so 花园/家园/苑/公寓 stay.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from linkage.standardize.chars import clean_text, replace_chinese_numerals, to_simplified

logger = logging.getLogger(__name__)

_NUMERAL_CONTEXT = "号楼|号院|号|栋|幢|座|单元|室|户|层|楼|门(?=[\\d〇零一二三四五六七八九十])"
_DASHES = re.compile(r"[‐‑‒–—―~～]")
_FIRST_DIGIT = re.compile(r"\d")
_ADMIN_SUFFIX = tuple("省市区县旗州盟")
_COUNTRY = re.compile(r"^(?:中华人民共和国|中国)")

_BUILDING = re.compile(
    r"(?P<building>[A-Z]?\d+[A-Z]?|[A-Z])"
    r"(?:号楼|栋|幢|座|#楼?|楼(?=-?\d+(?:单元|门))|号(?=-?\d+(?:单元|门)))"
)
_DASHED3 = re.compile(
    r"(?P<building>[A-Z]?\d+[A-Z]?)(?:号楼|栋|幢|号|#)?-(?P<unit>\d+)(?:单元|门)?"
    r"-(?P<room>\d+)(?:室|号|户)?$"
)
_DASHED2 = re.compile(r"(?P<building>[A-Z]?\d+[A-Z]?)(?:号楼|栋|幢|#)?-(?P<room>\d+)(?:室|号|户)?$")
_UNIT_ROOM = (
    re.compile(r"^-?(?P<unit>\d+)(?:单元|门)-?(?:\d+(?:层|楼)-?)?(?:(?P<room>\d+)(?:室|号|户)?)?"),
    re.compile(r"^-?(?P<unit>\d+)-(?P<room>\d+)(?:室|号|户)?"),
    re.compile(r"^-?(?:\d+(?:层|楼)-?)?(?P<room>\d+)(?:室|号|户)?"),
)
_OFFICE_PREFIX = re.compile(r"^.+?(?:街道办事处|街道|居民委员会|居委会|村民委员会|村委会)(?=.)")
_COMMUNITY_PREFIX = re.compile(r"^.+?社区(?=..)")
_ROAD_NUMBER = re.compile(
    r"^(?P<road>.+?(?:大街|大道|路|街|巷|胡同|弄))(?P<num>\d+)号院?(?P<rest>.*)$"
)
_GENERIC_SUFFIXES = ("住宅小区", "小区", "社区")

_jionlp_lock = threading.Lock()
_parser: Any = None


@dataclass(frozen=True, slots=True)
class AddressResult:
    """A standardised address: divisions, dwelling parts and the dwelling key."""

    addr_std: str | None
    province: str | None = None
    city: str | None = None
    county: str | None = None
    estate: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    key: str | None = None


_BLANK = AddressResult(addr_std=None)


def _location_parser() -> Any:
    """jionlp's ``parse_location``, imported on first use with its banner captured.

    jionlp prints to stdout when imported; a CLI that writes results to stdout must not
    receive it, so the banner goes to the debug log instead.
    """
    global _parser
    if _parser is None:
        with _jionlp_lock:
            if _parser is None:
                banner = io.StringIO()
                with contextlib.redirect_stdout(banner):
                    import jionlp

                logger.debug("jionlp loaded: %s", banner.getvalue().strip())
                try:
                    _index_candidates(jionlp.parse_location)
                except (AttributeError, TypeError, IndexError) as exc:
                    # jionlp internals changed: keep its own (slower, correct) search.
                    logger.warning("jionlp candidate index not installed (%s); addresses "
                                   "parse at jionlp's own speed", exc)
                _parser = jionlp.parse_location
    return _parser


def _index_candidates(parser: Any) -> None:
    """Make jionlp's candidate search look only at the divisions named in the text.

    ``LocationParser.get_candidates`` tests every name of all ~3,500 divisions against
    the text with ``in`` (about 10 ms a call; 90 % of standardisation at 10k persons).
    Here the names are indexed by first character, the divisions one of whose names
    occurs in the text are found with a few ``startswith`` calls, and jionlp's own loop
    then runs on those divisions only, in their original order. A division none of whose
    names occurs is never a candidate in jionlp's loop either, so the result is the same
    (checked on every distinct address head of a generated 10k and 100k district); only
    faster (about 12×).
    """
    if parser.administrative_map_list is None:
        parser._prepare()
    divisions = parser.administrative_map_list
    by_name: dict[str, set[int]] = {}
    for position, division in enumerate(divisions):
        for names in division[1:4]:
            for name in names:
                if name is not None:
                    by_name.setdefault(name, set()).add(position)
    every_text = sorted(by_name.pop("", set()))  # "" is in every text
    by_first: dict[str, list[str]] = {}
    for name in by_name:
        by_first.setdefault(name[0], []).append(name)
    search = type(parser).get_candidates

    def get_candidates(location_text: str) -> list[Any]:
        named = set(every_text)
        for start, char in enumerate(location_text):
            for name in by_first.get(char, ()):
                if location_text.startswith(name, start):
                    named |= by_name[name]
        view = SimpleNamespace(
            administrative_map_list=[divisions[i] for i in sorted(named)],
            municipalities_cities=parser.municipalities_cities,
            _process_exception_alias=parser._process_exception_alias,
        )
        return search(view, location_text)

    parser.get_candidates = get_candidates


def normalize_address_text(raw: str | None) -> str | None:
    """Simplified, half-width, whitespace-free, with counted Chinese numerals as digits.

    Numerals are converted only before a unit word (三号楼 → 3号楼, 五〇一室 → 501室), so
    place names such as 三里屯 or 三门峡 are left alone.
    """
    text = clean_text(raw)
    if text is None:
        return None
    text = _DASHES.sub("-", to_simplified(text)).upper()
    return replace_chinese_numerals(text, _NUMERAL_CONTEXT)


def _spells_levels(prefix: str, levels: list[str | None]) -> bool:
    """Whether ``prefix`` is the reported levels written out, in order.

    Each level may be written in full (朝阳区) or short (朝阳, or the first two characters
    of an autonomous region: 新疆). The prefix must be used up, and must either end on a
    full name or consist of two or more parts: ``朝阳区`` and ``北京朝阳`` pass, a lone
    alias such as ``高碑店`` (an estate word here) or text jionlp skipped (``小关`` before
    ``西区``) does not.
    """
    rest, parts, last_full = prefix, 0, False
    for level in dict.fromkeys(name for name in levels if name):
        forms = {level, level[:2]}
        if level.endswith(_ADMIN_SUFFIX):
            forms.add(level[:-1])
        for form in sorted(forms, key=len, reverse=True):
            if len(form) >= 2 and rest.startswith(form):
                last_full = form == level and level.endswith(_ADMIN_SUFFIX)
                rest, parts = rest[len(form) :], parts + 1
                break
    return not rest and parts > 0 and (last_full or parts >= 2)


Admin = tuple[str | None, str | None, str | None, str]
"""(province, city, county, rest) of an address head."""

# Bump when parse_admin or the head it is given changes: stored parses are then stale.
HEAD_RULES = 1
# Heads parsed by earlier runs (``linkage.address_heads``, loaded by
# linkage.address_heads.load) and those this process parsed, to be stored. A memo, like
# the lru_cache below, but across runs: a day's new addresses are mostly new rooms of
# known estates, whose heads jionlp parsed before.
_known_heads: dict[str, Admin] = {}
_new_heads: dict[str, Admin] = {}


def head_rules() -> str:
    """What a stored head parse is valid under: the jionlp version and ``HEAD_RULES``."""
    from importlib.metadata import version

    return f"jionlp {version('jionlp')}; rules {HEAD_RULES}"


def remember_heads(parsed: dict[str, Admin]) -> None:
    """Take parses made under the current `head_rules` by an earlier run."""
    _known_heads.update(parsed)


def take_new_heads() -> dict[str, Admin]:
    """The heads parsed since the last call (to store them), forgetting them as new."""
    found = dict(_new_heads)
    _new_heads.clear()
    return found


def parse_admin(head: str) -> Admin:
    """(province, city, county, rest) of an address head (text before its first digit);
    from an earlier run's parse of the same head when there is one (`remember_heads`)."""
    found = _known_heads.get(head)
    if found is None:
        found = _parse_admin(head)
        _new_heads[head] = found
    return found


@lru_cache(maxsize=65536)
def _parse_admin(head: str) -> Admin:
    """(province, city, county, rest) of an address head (text before its first digit).

    jionlp's split is used only when the removed prefix spells the levels it reported;
    otherwise its alias matching has eaten part of an estate name, and the head is
    returned whole. Historical names are not modernised (``change2new=False``) so that
    the reported names match the text.
    """
    head = _COUNTRY.sub("", head)
    try:
        result = _location_parser()(head, change2new=False)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        logger.warning("jionlp could not parse %r: %s", head, exc)
        return None, None, None, head
    detail = result.get("detail") or ""
    levels = [result.get("province"), result.get("city"), result.get("county")]
    if not head.endswith(detail):
        return None, None, None, head
    prefix = head[: len(head) - len(detail)]
    if prefix and _spells_levels(prefix, levels):
        return levels[0], levels[1], levels[2], detail
    return None, None, None, head


def clean_estate(text: str) -> str | None:
    """The estate name from the text before the building number.

    Drops sub-district offices and residents' committees (…街道, …居委会, …社区 before
    another name), a road-and-number prefix when an estate name follows it
    (建国路88号幸福里 → 幸福里; 建国路88号院 alone stays 建国路88号), and generic suffixes.
    """
    text = text.strip("-,，()（）的")
    text = _OFFICE_PREFIX.sub("", text)
    text = _COMMUNITY_PREFIX.sub("", text)
    road = _ROAD_NUMBER.match(text)
    if road:
        rest = road.group("rest").strip("-,，")
        text = rest if rest else road.group("road") + road.group("num") + "号"
    for suffix in _GENERIC_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return text or None


def _number(value: str | None) -> str | None:
    """Building/unit/room numbers without leading zeros (03 → 3)."""
    if value is None:
        return None
    stripped = value.lstrip("0")
    return stripped or value


def parse_dwelling(detail: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(estate, building, unit, room) from the part of an address below the county.

    Tries the dashed form ``3-2-501`` at the end, then a labelled building (``3号楼``,
    ``3栋``, ``3幢``, ``A座``, ``3#``) followed by unit and room, then ``3-501``.
    """
    match = _DASHED3.search(detail)
    if match:
        return (
            clean_estate(detail[: match.start()]),
            _number(match.group("building")),
            _number(match.group("unit")),
            _number(match.group("room")),
        )
    match = _BUILDING.search(detail)
    if match:
        unit = room = None
        rest = detail[match.end() :]
        for pattern in _UNIT_ROOM:
            parts = pattern.match(rest)
            if parts:
                groups = parts.groupdict()
                unit, room = groups.get("unit"), groups.get("room")
                break
        return (
            clean_estate(detail[: match.start()]),
            _number(match.group("building")),
            _number(unit),
            _number(room),
        )
    match = _DASHED2.search(detail)
    if match:
        return (
            clean_estate(detail[: match.start()]),
            _number(match.group("building")),
            None,
            _number(match.group("room")),
        )
    return clean_estate(detail), None, None, None


@lru_cache(maxsize=262144)
def standardize_address(raw: str | None) -> AddressResult:
    """Standardise one delivered address.

    ``addr_std`` is the address below the county in canonical form
    (``幸福里3号楼2单元501室``) when a building was found, else the cleaned text below the
    county. The administrative prefix is left out because feeds of one district include
    it inconsistently; keeping it would make the same dwelling look different. ``key`` is
    ``estate|building|unit|room`` and is set only when all four are known.
    """
    text = normalize_address_text(raw)
    if text is None:
        return _BLANK
    digit = _FIRST_DIGIT.search(text)
    split = digit.start() if digit else len(text)
    province = city = county = None
    head_rest = ""
    if split:
        province, city, county, head_rest = parse_admin(text[:split])
    detail = head_rest + text[split:]
    estate, building, unit, room = parse_dwelling(detail)
    if building is not None:
        addr_std = (
            (estate or "")
            + f"{building}号楼"
            + (f"{unit}单元" if unit else "")
            + (f"{room}室" if room else "")
        )
    else:
        addr_std = detail or text
    key = f"{estate}|{building}|{unit}|{room}" if estate and building and unit and room else None
    return AddressResult(
        addr_std=addr_std,
        province=province,
        city=city,
        county=county,
        estate=estate,
        building=building,
        unit=unit,
        room=room,
        key=key,
    )
