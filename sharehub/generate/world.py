"""One chunk of the district: households, their dwellings and owners, who is in which feed.

Why chunks: a 1M-person district must stream. A chunk holds about 2,000 persons living in
two estates of its own; everything a record needs (landlords, a relative's phone, the
guardian of a child) is found inside the chunk, so memory is bounded by the chunk size
and a chunk is reproduced exactly from (seed, chunk index) on any later day.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from sharehub.generate.dwellings import (
    Dwelling,
    Estate,
    elsewhere_in_district,
    hukou_elsewhere,
    make_estate,
    render,
)
from sharehub.generate.families import build_households
from sharehub.generate.idnumbers import KEY_STRIDE, IdAllocator, record_key
from sharehub.generate.people import FLOATING, FOREIGN, LOCAL, Household, Person, PersonFactory
from sharehub.generate.places import (
    BEIJING_CODES,
    CHRONIC_TAGS,
    DISTRICT_CODE,
    HOUSE_USES,
    KEY_POPULATION_ELDERLY,
    PREFIX,
    RARE_TAGS,
)
from sharehub.generate.rates import ErrorRates

CHUNK_PERSONS = 2_000
ESTATES_PER_CHUNK = 2


def chunk_rng(seed: int, chunk: int, stream: str) -> random.Random:
    """An RNG for one purpose in one chunk; streams never disturb each other."""
    return random.Random(f"sharehub:{seed}:{chunk}:{stream}")


def salt_of(seed: int, name: str) -> int:
    """A per-seed constant that scrambles one family of keys."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:6], "big")


@dataclass(eq=False)
class Chunk:
    """Everything generated for one chunk, kept only while the chunk is written."""

    index: int
    factory: PersonFactory
    estates: list[Estate]
    households: list[Household] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    outsiders: list[Person] = field(default_factory=list)
    dwellings: list[Dwelling] = field(default_factory=list)
    next_dwelling: int = 0

    def new_dwelling(self, rng: random.Random, salt: int, use: str = "住宅") -> Dwelling:
        """Take the next free room of the emptier estate and give it a house code."""
        estate = min(self.estates, key=lambda e: (e.next_room, rng.random()))
        building, unit, room = estate.take_room()
        index = self.index * KEY_STRIDE + self.next_dwelling
        self.next_dwelling += 1
        lo, hi = estate.area_range
        if use == "商业":
            lo, hi = 30.0, 220.0
        d = Dwelling(index, record_key("FW110105", index, 10, salt), estate, building, unit,
                     room, use=use, area=round(rng.uniform(lo, hi), 2))
        self.dwellings.append(d)
        return d


class Landlords:
    """Finds owners for let and vacant dwellings: residents of the chunk or outsiders."""

    def __init__(self, chunk: Chunk, rng: random.Random, rates: ErrorRates) -> None:
        self.chunk, self.rng, self.rates = chunk, rng, rates
        self.candidates = [p for p in chunk.persons if p.age >= 28 and p.category != FOREIGN]

    def owner(self) -> Person:
        rng, chunk = self.rng, self.chunk
        if rng.random() < self.rates.outside_owner or not self.candidates:
            if chunk.outsiders and rng.random() < 0.2:
                return rng.choice(chunk.outsiders)  # an investor with several flats
            return self.outsider()
        return rng.choice(self.candidates)

    def outsider(self) -> Person:
        """An owner who lives outside the district and appears in no other feed."""
        f, rng = self.chunk.factory, self.rng
        sex = "M" if rng.random() < 0.55 else "F"
        if rng.random() < 0.03:
            p = f.person(sex, f.birth(30, 75), FOREIGN)
        elif rng.random() < 0.55:
            region = rng.choice([c for c in BEIJING_CODES if c != DISTRICT_CODE])
            p = f.person(sex, f.birth(30, 80), LOCAL, region=region)
        else:
            p = f.person(sex, f.birth(30, 75), FLOATING)
        p.resident = False
        self.chunk.outsiders.append(p)
        return p


def _house(chunk: Chunk, rng: random.Random, rates: ErrorRates, salt: int) -> None:
    """Give every household a room, decide who owns it, add vacant and commercial units."""
    landlords = Landlords(chunk, rng, rates)
    shared: Dwelling | None = None
    for hh in chunk.households:
        if hh.kind == "group" and shared is not None and len(shared.occupants) < 4:
            d = shared
        else:
            use = "商住" if rng.random() < HOUSE_USES[1][1] else "住宅"
            d = chunk.new_dwelling(rng, salt, use)
            shared = d if hh.kind == "group" else None
        hh.dwelling = d
        d.occupants.extend(hh.members)
        if d.owner is not None or not d.registered:
            continue
        own = {LOCAL: 0.78, FLOATING: 0.1, FOREIGN: 0.1}[hh.category]
        if hh.kind != "group" and rng.random() < own:
            adults = [m for m in hh.members if m.age >= 22] or hh.members
            d.occupancy, d.owner = "自住", adults[0] if rng.random() < 0.7 else rng.choice(adults)
        elif rng.random() < rates.unregistered_rental:
            d.occupancy, d.registered = "出租", False
        else:
            d.occupancy, d.owner = "出租", landlords.owner()
    for _ in range(len(chunk.households)):
        if rng.random() < rates.vacant_dwellings:
            d = chunk.new_dwelling(rng, salt)
            d.occupancy, d.owner = "空置", landlords.owner()
        if rng.random() < HOUSE_USES[2][1]:
            d = chunk.new_dwelling(rng, salt, "商业")
            d.occupancy = "出租" if rng.random() < 0.7 else "空置"
            d.owner = landlords.owner()


def assign_hukou(hh: Household, rng: random.Random, rates: ErrorRates, estates_total: int,
                 salt: int) -> None:
    """Registered addresses: the residence itself, another estate, or the home region."""
    head = hh.members[0]
    assert hh.dwelling is not None
    if hh.category == FOREIGN:
        shared = ""
    elif hh.category == FLOATING:
        shared = hukou_elsewhere(head.region, rng)
    elif rng.random() >= rates.hukou_elsewhere:
        shared = render(hh.dwelling, "full", PREFIX)
    elif head.region == DISTRICT_CODE:
        shared = elsewhere_in_district(rng, estates_total, salt)
    else:
        shared = hukou_elsewhere(head.region, rng)
    for m in hh.members:
        own_place = m.region != head.region and m.category != FOREIGN
        m.hukou = hukou_elsewhere(m.region, rng) if own_place else shared


def _memberships(chunk: Chunk, rng: random.Random, rates: ErrorRates) -> None:
    """Decide, per person, the feeds they appear in and how many times."""
    for hh in chunk.households:
        dibao = hh.category == LOCAL and rng.random() < rates.dibao_households
        tekun = hh.kind == "single_old" and not dibao and rng.random() < rates.tekun_elderly_alone
        for p in hh.members:
            age = p.age
            cov = rates.pop_coverage + (0.03 if p.category == LOCAL else -0.07)
            p.in_pop = rng.random() < cov
            p.pop_dup = p.in_pop and rng.random() < rates.pop_duplicate
            factor = 1.4 if age < 7 else 1.45 if age >= 65 else 0.95
            if p.category != LOCAL and 18 <= age <= 45:
                factor = 0.6
            if rng.random() < min(0.98, rates.health_coverage * factor):
                p.health = 2 if rng.random() < rates.health_second_record else 1
            p.conditions = conditions_of(p, rng)
            if p.category == LOCAL:
                if dibao:
                    p.benefits.append("低保")
                if tekun:
                    p.benefits.append("特困供养")
                if age >= 80 and rng.random() < rates.elderly_allowance:
                    p.benefits.append("高龄津贴")
                if p.disabled and rng.random() < 0.85:
                    p.benefits.append("残疾人补贴")
            if age >= 18 and rng.random() < rates.temporary_relief:
                p.benefits.append("临时救助")


def conditions_of(p: Person, rng: random.Random) -> tuple[str, ...]:
    """Key-population tags a clinic records (sensitive, synthetic)."""
    age, tags = p.age, []
    if age >= 65:
        tags.append(KEY_POPULATION_ELDERLY)
    if age <= 6:
        tags.append("0-6岁儿童")
    if age >= 35:
        scale = min(2.0, (age / 60.0) ** 1.5)
        tags.extend(t for t, share in CHRONIC_TAGS if rng.random() < share * scale)
    tags.extend(t for t, share in RARE_TAGS if rng.random() < share)
    if p.sex == "F" and 22 <= age <= 40 and rng.random() < 0.04:
        tags.append("孕产妇")
    if p.disabled:
        tags.append("残疾人")
    return tuple(tags)


def build_chunk(index: int, quota: int, seed: int, rates: ErrorRates, ids: IdAllocator,
                estates_total: int) -> Chunk:
    """Generate chunk ``index`` with exactly ``quota`` residents (plus outside owners)."""
    rng = chunk_rng(seed, index, "world")
    house_salt = salt_of(seed, "house")
    factory = PersonFactory(index, rng, rates, ids, salt_of(seed, "phone"))
    estates = [make_estate(index * ESTATES_PER_CHUNK + j, rng, salt_of(seed, "estate"))
               for j in range(ESTATES_PER_CHUNK)]
    chunk = Chunk(index, factory, estates)
    chunk.households = build_households(factory, rng, rates, quota, index * KEY_STRIDE)
    chunk.persons = [p for hh in chunk.households for p in hh.members]
    _house(chunk, rng, rates, house_salt)
    for hh in chunk.households:
        assign_hukou(hh, rng, rates, estates_total, salt_of(seed, "estate"))
    _memberships(chunk, rng, rates)
    return chunk

