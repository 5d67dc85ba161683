"""Day 2: what happens in the district between the first and the second extract.

Why events on the world rather than edits on rows: a death, a move or a marriage shows
up differently in every feed — police deregister the person (注销) the same day, the clinic
soft-deletes the record only sometimes, civil affairs drops the person from the next
roster or marks the benefit stopped. Modelling the event once and letting each feed react
with its own lag gives the realistic disagreement between feeds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from sharehub.generate.dwellings import Dwelling, render
from sharehub.generate.families import make_households
from sharehub.generate.idnumbers import DAY2_LOCAL, KEY_STRIDE
from sharehub.generate.people import LOCAL, REF_DATE, Household, Person
from sharehub.generate.places import NEW_MOBILE_PREFIXES, PREFIX
from sharehub.generate.records import Context
from sharehub.generate.world import Chunk, Landlords, assign_hukou, conditions_of


@dataclass
class Events:
    """Who died, left, moved, arrived, was born, or changed phone or name on day 2."""

    dead: list[Person] = field(default_factory=list)
    left: list[Person] = field(default_factory=list)
    moved: list[tuple[Household, Dwelling]] = field(default_factory=list)  # (hh, old room)
    arrived: list[Household] = field(default_factory=list)
    born: list[Person] = field(default_factory=list)
    new_phone: list[Person] = field(default_factory=list)
    renamed: list[Person] = field(default_factory=list)
    hukou_moved: list[Person] = field(default_factory=list)
    dwellings_changed: list[Dwelling] = field(default_factory=list)
    dwellings_new: list[Dwelling] = field(default_factory=list)
    dwellings_removed: list[Dwelling] = field(default_factory=list)

    @property
    def newcomers(self) -> list[Person]:
        """Persons who exist only from day 2: arrivals and newborns."""
        return [m for hh in self.arrived for m in hh.members] + self.born


def _gone_from(p: Person, d: Dwelling) -> bool:
    """The person no longer lives in ``d``: died, left the district or moved elsewhere."""
    return p.dead or p.left or (p.household is not None and p.household.dwelling is not d)


def _death_weight(age: int) -> float:
    return 8.0 if age >= 80 else 3.0 if age >= 65 else 0.6 if age >= 40 else 0.1


class Day2Life:
    """Applies day-2 events to a regenerated day-1 chunk (mutating it) and records them."""

    def __init__(self, chunk: Chunk, ctx: Context, rng: random.Random) -> None:
        self.chunk, self.ctx, self.rng, self.rates = chunk, ctx, rng, ctx.rates
        chunk.factory.rng = rng
        chunk.factory.start_day2()
        self.landlords = Landlords(chunk, rng, ctx.rates)
        self.landlords.candidates = [p for p in self.landlords.candidates if p.resident]
        self.ev = Events()
        self.day1_dwellings = list(chunk.dwellings)

    def run(self) -> Events:
        households = list(self.chunk.households)
        self._deaths()
        self.landlords.candidates = [p for p in self.landlords.candidates if not p.dead]
        self._moves(households)
        self._arrivals(len(households))
        self._births(households)
        self._phones_and_names()
        self._vacancies()
        self._housing_churn()
        return self.ev

    def _deaths(self) -> None:
        for p in self.chunk.persons:
            if self.rng.random() < self.rates.day2_death * _death_weight(p.age):
                p.dead = True
                self.ev.dead.append(p)

    def _new_room(self, hh: Household, buy: float) -> Dwelling:
        """A room for a household on day 2: bought (自住) or let by a landlord (出租)."""
        rng = self.rng
        d = self.chunk.new_dwelling(rng, self.ctx.house_salt)
        if hh.kind != "group" and rng.random() < buy:
            d.occupancy, d.owner = "自住", next(m for m in hh.members if not m.dead)
        elif rng.random() < self.rates.unregistered_rental:
            d.occupancy, d.registered = "出租", False
        else:
            d.occupancy, d.owner = "出租", self.landlords.owner()
        if d.registered:
            self.ev.dwellings_new.append(d)
        return d

    def _moves(self, households: list[Household]) -> None:
        rng, rates = self.rng, self.rates
        for hh in households:
            alive = [m for m in hh.members if not m.dead]
            if not alive:
                continue
            out = rates.day2_move_out * (0.7 if hh.category == LOCAL else 1.8)
            r = rng.random()
            if r < out:
                for m in alive:
                    m.left = True
                self.ev.left.extend(alive)
            elif r < out + rates.day2_relocate:
                old = hh.dwelling
                assert old is not None
                hh.dwelling = self._new_room(hh, 0.6 if hh.category == LOCAL else 0.1)
                hh.dwelling.occupants.extend(alive)
                self.ev.moved.append((hh, old))
                for m in alive:
                    if m.category == LOCAL and m.hukou and rng.random() < 0.3:
                        m.hukou = render(hh.dwelling, "full", PREFIX)
                        self.ev.hukou_moved.append(m)

    def _arrivals(self, existing: int) -> None:
        rng, rates, f = self.rng, self.rates, self.chunk.factory
        n = sum(rng.random() < rates.day2_move_in for _ in range(existing))
        base = self.chunk.index * KEY_STRIDE + DAY2_LOCAL
        vacant = [d for d in self.day1_dwellings
                  if d.occupancy == "空置" and d.use == "住宅" and d.registered]
        for _ in range(n):
            for hh in make_households(f, rng, rates, base + len(self.ev.arrived)):
                if vacant and rng.random() < 0.5:
                    d = vacant.pop(rng.randrange(len(vacant)))
                    d.occupancy = "出租"
                    self.ev.dwellings_changed.append(d)
                    hh.dwelling = d
                else:
                    hh.dwelling = self._new_room(hh, 0.3)
                hh.dwelling.occupants.extend(hh.members)
                assign_hukou(hh, rng, rates, self.ctx.estates_total, self.ctx.estate_salt)
                for m in hh.members:
                    m.in_pop = rng.random() < rates.pop_coverage
                    m.health = 1 if rng.random() < 0.15 else 0
                    m.conditions = conditions_of(m, rng)
                self.ev.arrived.append(hh)

    def _births(self, households: list[Household]) -> None:
        rng, f = self.rng, self.chunk.factory
        for hh in households:
            mothers = [m for m in hh.members
                       if m.sex == "F" and 22 <= m.age <= 42 and not (m.dead or m.left)]
            if not mothers or rng.random() >= self.rates.day2_birth:
                continue
            mother = mothers[0]
            fathers = [m for m in hh.members if m.sex == "M" and m.age >= 22 and m.surname]
            father = fathers[0] if fathers else mother
            sex = "M" if rng.random() < 0.52 else "F"
            baby = f.child_of(father, mother, sex, REF_DATE - timedelta(days=rng.randint(1, 30)))
            baby.household, baby.hukou = hh, mother.hukou if father is mother else father.hukou
            baby.in_pop = rng.random() < 0.9
            baby.health = 1 if rng.random() < 0.8 else 0
            baby.conditions = ("0-6岁儿童",)
            hh.members.append(baby)
            self.ev.born.append(baby)

    def _phones_and_names(self) -> None:
        rng, rates, f = self.rng, self.rates, self.chunk.factory
        for p in self.chunk.persons:
            if p.dead or p.left:
                continue
            if p.mobile and rng.random() < rates.day2_phone_change:
                p.mobile = f.phone(NEW_MOBILE_PREFIXES)
                self.ev.new_phone.append(p)
            share = rates.day2_name_change * (3.0 if p.age < 12 else 1.0)
            if p.surname and p.ethnic != "" and rng.random() < share:
                given = f.given(max(p.birth.year, 1990), p.sex)
                if p.surname + given != p.name:
                    p.former_name, p.name = p.name, p.surname + given
                    self.ev.renamed.append(p)

    def _vacancies(self) -> None:
        """A registered room whose occupants all died, left or moved is now vacant."""
        for d in self.day1_dwellings:
            if not d.registered or d.owner is None or d.occupancy == "空置" or not d.occupants:
                continue
            if all(_gone_from(m, d) for m in d.occupants):
                d.occupancy = "空置" if self.rng.random() < 0.6 else "出租"
                self.ev.dwellings_changed.append(d)

    def _housing_churn(self) -> None:
        """Empty rooms let or vacated, and a few dwellings deregistered."""
        rng, rates = self.rng, self.rates
        changed = {id(d) for d in self.ev.dwellings_changed}
        for d in self.day1_dwellings:
            if not d.registered or d.owner is None or id(d) in changed:
                continue
            if not all(_gone_from(m, d) for m in d.occupants):
                continue
            if rng.random() < rates.day2_house_remove:
                self.ev.dwellings_removed.append(d)
            elif rng.random() < rates.day2_house_change:
                d.occupancy = "出租" if d.occupancy == "空置" else "空置"
                self.ev.dwellings_changed.append(d)

