"""Identifiers: resident IDs (GB 11643-1999), passports, record keys and phone numbers.

Why a sequence allocator: two different people must not share a valid resident ID (the
ID is strong evidence in linkage, and the README promises it), yet persons are generated
chunk by chunk without a global list. The allocator keeps one small counter per
(region, birth date, sex) in a fixed-size array — memory independent of the number of
persons — and day-2 arrivals draw from a separate part of the sequence space so that
regenerating day 1 on day 2 yields exactly the same IDs.

Record keys and phone numbers are bijections of (chunk, local index): unique without any
lookup, stable across days, and scrambled so that key order reveals nothing about who
lives with whom.
"""

from __future__ import annotations

import random
from array import array
from datetime import date

from sharehub.generate.damage import Damage, note
from sharehub.generate.places import REGION_CODES

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_EPOCH = date(1900, 1, 1)
_DAYS = 46_600  # 1900-01-01 … 2027-08: every birth date of the district
_DAY1_SPACE = 400  # sequence slots for day-1 persons; 400–498 are kept for day-2 arrivals
_REGION_INDEX = {code: i for i, code in enumerate(REGION_CODES)}

# Index spaces: keys are built from chunk * stride + local counter.
KEY_STRIDE = 100_000
DAY2_LOCAL = 50_000  # local counters of day-2 records and persons start here


def check_digit(first17: str) -> str:
    """GB 11643-1999 check character of the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def is_valid_id(value: str) -> bool:
    """True when ``value`` is 18 characters whose check character is right."""
    return (
        len(value) == 18 and value[:17].isdigit() and check_digit(value[:17]) == value[17].upper()
    )


def legacy_15(id18: str) -> str:
    """The pre-1999 15-digit form: no century, no check character."""
    return id18[:6] + id18[8:17]


class IdAllocator:
    """Allocates the 3-digit sequence of resident IDs without ever repeating one.

    Counters live in one ``array('H')`` indexed by region, birth day and sex (~10 MB,
    fixed). Day-1 persons take slots 0–399, scattered by a per-key offset; persons who
    first appear on day 2 take slots 400–498 from a separate small dictionary, so day 1
    is reproduced identically whether or not day 2 is generated afterwards.
    """

    def __init__(self) -> None:
        self._counts = array("H", bytes(2 * len(REGION_CODES) * _DAYS * 2))
        self._late: dict[tuple[int, int, int], int] = {}

    def resident_id(self, region: str, birth: date, male: bool, *, late: bool = False) -> str:
        """A valid 18-character ID for a person born on ``birth`` registered in ``region``."""
        r = _REGION_INDEX[region]
        day = min(max((birth - _EPOCH).days, 0), _DAYS - 1)
        sex = 1 if male else 0
        if late:
            key = (r, day, sex)
            count = self._late.get(key, 0)
            self._late[key] = count + 1
            slot = _DAY1_SPACE + count % (499 - _DAY1_SPACE)
        else:
            idx = (r * _DAYS + day) * 2 + sex
            count = self._counts[idx]
            self._counts[idx] = min(count + 1, 65_535)
            slot = (count * 7 + r * 131 + day * 17) % _DAY1_SPACE
        seq = 2 * slot + 1 if male else 2 * slot + 2
        first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
        return first17 + check_digit(first17)


def scramble(index: int, digits: int, salt: int) -> int:
    """A bijection of ``[0, 10**digits)``: affine map, digit reversal, affine map."""
    modulus = 10**digits
    x = (index * 7_919_273 + salt) % modulus
    x = int(f"{x:0{digits}d}"[::-1])
    return (x * 104_729 + salt * 31 + 12_345) % modulus


def record_key(prefix: str, index: int, digits: int, salt: int) -> str:
    """A stable source key such as ``RK004518830266`` for a global record index."""
    return f"{prefix}{scramble(index, digits, salt):0{digits}d}"


def mobile(index: int, salt: int, rng: random.Random, prefixes: tuple[str, ...]) -> str:
    """An 11-digit mobile number unique per index (the 8-digit tail is a bijection)."""
    return rng.choice(prefixes) + f"{scramble(index, 8, salt):08d}"


def landline(index: int, salt: int, rng: random.Random) -> str:
    """A Beijing fixed line ``010-6xxxxxxx``, unique per household index."""
    return f"010-{rng.choice('568')}{scramble(index, 7, salt):07d}"


def passport(index: int, salt: int, rng: random.Random) -> str:
    """A passport number in one of several national formats, unique per index."""
    tail = scramble(index, 8, salt)
    prefix = ("E", "M", "TK", "5", "C")[rng.randrange(5)]  # CN, KR, JP, US, DE forms
    return f"{prefix}{tail:08d}"


def damage_id(value: str, rng: random.Random, damage: Damage | None = None) -> str:
    """One clerical error: wrong check character, one-digit typo or a transposition.

    ``damage`` (if given) has its ``id`` field replaced by the kind of error made.
    """
    kind = rng.randrange(3)
    if damage is not None:
        damage.replace("id")
    if kind == 0:
        wrong = [c for c in _CHECK if c != value[17]]
        note(damage, "id", "id_check_digit")
        return value[:17] + rng.choice(wrong)
    if kind == 1:
        pos = rng.randrange(6, 17)
        digit = str((int(value[pos]) + rng.randrange(1, 10)) % 10)
        note(damage, "id", "id_typo")
        return value[:pos] + digit + value[pos + 1 :]
    for _ in range(8):
        pos = rng.randrange(0, 16)
        if value[pos] != value[pos + 1]:
            note(damage, "id", "id_transposed")
            return value[:pos] + value[pos + 1] + value[pos] + value[pos + 2 :]
    note(damage, "id", "id_check_digit")
    return value[:17] + ("0" if value[17] != "0" else "1")


def excel_float(id18: str) -> float | None:
    """What Excel stores when an ID is typed into a General cell: 15 significant digits.

    IDs ending in X stay text in Excel, so they cannot be damaged this way (None).
    """
    if not id18.isdigit():
        return None
    return float(int(id18[:15]) * 1000)


def excel_sci_text(id18: str) -> str | None:
    """The text an ID becomes after a copy of the displayed cell: ``1.10105E+17``."""
    if not id18.isdigit():
        return None
    return f"{int(id18):.5E}"


class KeyFactory:
    """Source keys of one chunk: 人员编号 (RK), 对象编号 (MZ), health record_id (JK).

    Day-2 records continue in a separate local range so that day-1 keys are the same
    whether or not day 2 follows.
    """

    def __init__(self, chunk: int, salts: dict[str, int]) -> None:
        self.base = chunk * KEY_STRIDE
        self.salts = salts
        self.counters = {"RK": 0, "MZ": 0, "JK": 0}

    def start_day2(self) -> None:
        self.counters = dict.fromkeys(self.counters, DAY2_LOCAL)

    def _next(self, prefix: str, digits: int) -> str:
        local = self.counters[prefix]
        self.counters[prefix] = local + 1
        return record_key(prefix, self.base + local, digits, self.salts[prefix])

    def population(self) -> str:
        return self._next("RK", 12)

    def recipient(self) -> str:
        return self._next("MZ", 10)

    def health(self) -> str:
        return self._next("JK", 12)
