"""Estates, dwellings and the many ways one room is written down.

Why: address agreement is one of the strongest signals after the ID, and its difficulty
comes from format variants of the *same* room (`幸福里小区3号楼2单元501室`, `幸福里3-2-501`,
`幸福里小区3栋2单元501`), from prefixes written or not, and from households that share a
room. Estate names are a bijection of the estate index, so two estates never share a
name and an address agreement is never a coincidence of the generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sharehub.generate.damage import Damage, note
from sharehub.generate.places import (
    CITY,
    DISTRICT,
    ESTATE_SUFFIXES,
    ESTATE_WORDS,
    PREFIX,
    REGION_NAMES,
    ROAD_NAMES,
    STREETS,
    TAKES_XIAOQU,
)

if TYPE_CHECKING:
    from sharehub.generate.people import Person

ROOMS_PER_ESTATE = 900  # enough for day 1, vacant flats and day-2 arrivals of one chunk
_LAYOUTS = (  # (floors, units, rooms per floor, floor-area range) for 老小区, 板楼, 塔楼
    (6, 3, 2, (42.0, 85.0)),
    (11, 3, 2, (60.0, 120.0)),
    (24, 2, 4, (70.0, 165.0)),
)
_NAME_MULT = 1009  # coprime with len(words) * len(suffixes): estate index → name bijection


def estate_name(index: int, salt: int) -> tuple[str, bool]:
    """The unique name of estate ``index`` and whether people append 小区 to it."""
    combos = len(ESTATE_WORDS) * len(ESTATE_SUFFIXES)
    cycle, slot = divmod(index, combos)
    pick = (slot * _NAME_MULT + salt) % combos
    word, suffix = ESTATE_WORDS[pick // len(ESTATE_SUFFIXES)], ESTATE_SUFFIXES[
        pick % len(ESTATE_SUFFIXES)
    ]
    area = f"{'一二三四五六七八九'[cycle - 1]}区" if 0 < cycle < 10 else (f"{cycle}区" if cycle else "")
    return word + suffix + area, suffix in TAKES_XIAOQU and not area


@dataclass(eq=False, slots=True)
class Estate:
    """One residential estate with a fixed layout and a shuffled list of its rooms."""

    index: int
    name: str
    takes_xiaoqu: bool
    street: str
    road: str
    area_range: tuple[float, float]
    rooms: list[tuple[int, int, int]]
    next_room: int = 0

    def take_room(self) -> tuple[int, int, int]:
        """The next free (building, unit, room number); rooms are handed out once."""
        room = self.rooms[self.next_room % len(self.rooms)]
        self.next_room += 1
        return room


def make_estate(index: int, rng: random.Random, salt: int) -> Estate:
    """Lay out estate ``index``: buildings × units × floors × rooms, shuffled."""
    name, takes = estate_name(index, salt)
    floors, units, per_floor, area = _LAYOUTS[rng.randrange(len(_LAYOUTS))]
    per_building = floors * units * per_floor
    buildings = -(-ROOMS_PER_ESTATE // per_building)
    rooms = [
        (b, u, f * 100 + r)
        for b in range(1, buildings + 1)
        for u in range(1, units + 1)
        for f in range(1, floors + 1)
        for r in range(1, per_floor + 1)
    ]
    rng.shuffle(rooms)
    return Estate(
        index=index,
        name=name,
        takes_xiaoqu=takes,
        street=STREETS[(index * 7 + salt) % len(STREETS)],
        road=ROAD_NAMES[(index * 3 + salt) % len(ROAD_NAMES)],
        area_range=area,
        rooms=rooms,
    )


@dataclass(eq=False, slots=True)
class Dwelling:
    """A room that may be registered in ps_housing, with its owner and occupancy."""

    index: int
    code: str
    estate: Estate
    building: int
    unit: int
    room: int
    use: str = "住宅"
    area: float = 0.0
    occupancy: str = "空置"
    owner: Person | None = None
    registered: bool = True
    occupants: list[Person] = field(default_factory=list)


_PREFIXES = (PREFIX, PREFIX, DISTRICT, "北京朝阳", "")
_PLACE_WORDS = ("东风", "建设", "胜利", "人民", "解放", "新华", "和平", "光明", "团结", "红旗", "前进", "向阳")


def render(d: Dwelling, style: str = "full", prefix: str = PREFIX, street: bool = False) -> str:
    """Write a dwelling's address in one of the styles found in the feeds.

    ``full`` 幸福里小区3号楼2单元501室 · ``dash`` 幸福里3-2-501 · ``dong`` 幸福里小区3栋2单元501 ·
    ``short`` 幸福里3号楼2单元501 · ``shop`` 朝阳路188号幸福里底商 for commercial units.
    """
    e = d.estate
    head = prefix + (e.street if street else "")
    xq = "小区" if e.takes_xiaoqu else ""
    if d.use == "商业":
        return f"{head}{e.road}{d.building * 2 + 100}号{e.name}底商{100 + d.room % 100}"
    if style == "dash":
        return f"{head}{e.name}{d.building}-{d.unit}-{d.room}"
    if style == "dong":
        return f"{head}{e.name}{xq}{d.building}栋{d.unit}单元{d.room}"
    if style == "short":
        return f"{head}{e.name}{d.building}号楼{d.unit}单元{d.room}"
    return f"{head}{e.name}{xq}{d.building}号楼{d.unit}单元{d.room}室"


def variant(d: Dwelling, rng: random.Random, p_variant: float,
            damage: Damage | None = None) -> str:
    """The address as a person or clerk writes it: a random style and prefix.

    Recorded as ``address_format`` when the style is not the full one or the prefix is
    an abbreviation; the full style with or without the city prefix is the norm.
    """
    if rng.random() >= p_variant:
        return render(d, "full", rng.choice((PREFIX, "")))
    style = rng.choice(("dash", "dong", "short", "full"))
    prefix = rng.choice(_PREFIXES)
    if style != "full" or prefix not in (PREFIX, ""):
        note(damage, "address", "address_format")
    return render(d, style, prefix, street=rng.random() < 0.1)


def elsewhere_in_district(rng: random.Random, estates_total: int, salt: int) -> str:
    """A hukou address in another estate of the district (not tied to a dwelling)."""
    name, takes = estate_name(rng.randrange(max(estates_total, 1)), salt)
    xq = "小区" if takes else ""
    building, unit = rng.randint(1, 20), rng.randint(1, 4)
    room = rng.randint(1, 6) * 100 + rng.randint(1, 3)
    return f"{PREFIX}{name}{xq}{building}号楼{unit}单元{room}室"


def hukou_elsewhere(region: str, rng: random.Random) -> str:
    """A registered address in the person's region of origin, urban or rural."""
    place = REGION_NAMES.get(region, CITY)
    word = rng.choice(_PLACE_WORDS)
    if rng.random() < 0.5:
        return f"{place}{word}街道{word}路{rng.randint(1, 300)}号"
    return f"{place}{word}镇{rng.choice('王李张刘赵陈杨')}家{rng.choice('村庄屯')}{rng.randint(1, 400)}号"
