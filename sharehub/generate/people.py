"""Persons and households: names, birth dates, IDs and phones, one household at a time.

Why households rather than independent persons: the hard cases of linkage are all family
cases — members sharing an address and a phone, twins, a son named after his father, a
newborn registered as 张丽之子 — and they only arise when persons are generated together
with the people they live with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sharehub.generate import reference as ref
from sharehub.generate.dwellings import Dwelling
from sharehub.generate.idnumbers import (
    DAY2_LOCAL,
    KEY_STRIDE,
    IdAllocator,
    landline,
    mobile,
    passport,
)
from sharehub.generate.places import (
    BEIJING_CODES,
    BEIJING_CUM,
    DISTRICT_CODE,
    MINORITY_REGIONS,
    MOBILE_PREFIXES,
    PROVINCE_CODES,
    PROVINCE_CUM,
)
from sharehub.generate.rates import ErrorRates

REF_DATE = date(2026, 11, 1)  # the day of the first extract
LOCAL, FLOATING, FOREIGN = "户籍人口", "流动人口", "境外人员"


@dataclass(eq=False, slots=True)
class Person:
    """One human being of the district (or an owner living outside it)."""

    pid: str
    local: int
    name: str
    surname: str
    sex: str  # "M" / "F"
    birth: date
    ethnic: str
    category: str
    id_no: str
    region: str
    mobile: str | None = None
    former_name: str | None = None
    household: Household | None = None
    mother: Person | None = None
    twin: Person | None = None
    disabled: bool = False
    resident: bool = True
    hukou: str = ""
    in_pop: bool = False
    pop_dup: bool = False
    health: int = 0
    benefits: list[str] = field(default_factory=list)
    conditions: tuple[str, ...] = ()
    dead: bool = False
    left: bool = False

    @property
    def age(self) -> int:
        """Age in whole years on the day of the first extract."""
        b = self.birth
        return REF_DATE.year - b.year - ((REF_DATE.month, REF_DATE.day) < (b.month, b.day))

    @property
    def male(self) -> bool:
        return self.sex == "M"


@dataclass(eq=False, slots=True)
class Household:
    """People registered at one residence; group renters are one household per person."""

    index: int
    members: list[Person]
    category: str
    landline: str | None = None
    dwelling: Dwelling | None = None
    kind: str = "family"

    def contact_phone(self, person: Person) -> str | None:
        """The number a person without a mobile gives: a relative's mobile or the fixed line."""
        if person.mobile:
            return person.mobile
        for other in sorted(self.members, key=lambda m: abs(m.age - 40)):
            if other.mobile:
                return other.mobile
        return self.landline


class PersonFactory:
    """Makes persons for one chunk: names by cohort, IDs from the allocator, phones."""

    def __init__(
        self, chunk: int, rng: random.Random, rates: ErrorRates, ids: IdAllocator, salt: int
    ) -> None:
        self.chunk = chunk
        self.rng = rng
        self.rates = rates
        self.ids = ids
        self.salt = salt
        self.next_local = 0
        self.next_phone = 0
        self.late = False

    def _pid(self) -> tuple[str, int]:
        local = self.next_local
        self.next_local += 1
        return f"P{self.chunk:05d}{local:05d}", local

    def birth(self, lo: int, hi: int) -> date:
        """A birth date giving an age in ``[lo, hi]`` on the reference day."""
        days = self.rng.randrange(lo * 365, hi * 365 + 364)
        return REF_DATE - timedelta(days=days + 1)

    def surname(self) -> str:
        return self.rng.choices(ref.SURNAMES, cum_weights=ref.SURNAME_CUM)[0]

    def given(self, birth_year: int, sex: str) -> str:
        """A given name typical of the cohort: a frequent whole name or a composed one."""
        rng = self.rng
        key = (ref.cohort(birth_year), sex)
        if rng.random() < self.rates.common_given_name:
            names, cum = ref.COMMON_GIVEN[key]
            return rng.choices(names, cum_weights=cum)[0]
        chars = ref.GIVEN_CHARS[key]
        single = {"old": 0.2, "mid": 0.45, "young": 0.35, "kid": 0.12}[key[0]]
        if rng.random() < single:
            return rng.choice(chars)
        return rng.choice(chars) + rng.choice(chars)

    def region(self, category: str) -> str:
        if category == FLOATING:
            return self.rng.choices(PROVINCE_CODES, cum_weights=PROVINCE_CUM)[0]
        if self.rng.random() < 0.8:
            return DISTRICT_CODE
        return self.rng.choices(BEIJING_CODES, cum_weights=BEIJING_CUM)[0]

    def start_day2(self) -> None:
        """Switch to the index spaces kept for persons and numbers that appear on day 2."""
        self.late = True
        self.next_local = DAY2_LOCAL
        self.next_phone = 2_500

    def phone(self, prefixes: tuple[str, ...] = MOBILE_PREFIXES) -> str:
        """A mobile unique in the district: chunk * 5000 + a counter (day 2 from 2500)."""
        index = self.chunk * 5_000 + self.next_phone
        self.next_phone += 1
        return mobile(index, self.salt, self.rng, prefixes)

    def person(
        self,
        sex: str,
        birth: date,
        category: str,
        *,
        surname: str | None = None,
        region: str | None = None,
        ethnic: str = "汉族",
        given: str | None = None,
    ) -> Person:
        """A person with an ID that is unique in the district and a mobile if old enough."""
        rng = self.rng
        pid, local = self._pid()
        if category == FOREIGN:
            family = surname or rng.choice(ref.FOREIGN_SURNAMES)
            first = rng.choice(ref.FOREIGN_GIVEN_M if sex == "M" else ref.FOREIGN_GIVEN_F)
            name = f"{family} {given or first}"
            id_no = passport(self.chunk * KEY_STRIDE + local, self.salt, rng)
            region, ethnic = "", ""
        else:
            region = region or self.region(category)
            family = surname if surname is not None else self.surname()
            given = given or self.given(birth.year, sex)
            name = family + given
            id_no = self.ids.resident_id(region, birth, sex == "M", late=self.late)
        p = Person(pid, local, name, family, sex, birth, ethnic, category, id_no, region)
        age = p.age
        if age >= 14 and rng.random() < (0.55 if age >= 80 else 0.95):
            p.mobile = self.phone()
        if age >= 4 and rng.random() < self.rates.former_name:
            old_given = self.given(max(birth.year, 1990), sex)
            if old_given != name[len(family) :] and category != FOREIGN:
                p.former_name = family + old_given
        p.disabled = rng.random() < self.rates.disability * (2.0 if age >= 65 else 0.7)
        return p

    def dotted(self, sex: str, birth: date, ethnic: str, father: Person | None) -> Person:
        """A Uyghur (given·father's name), Tibetan or Mongolian (no surname) person."""
        rng = self.rng
        region = MINORITY_REGIONS[ethnic][0]
        if ethnic == "维吾尔族":
            own = rng.choice(ref.UYGHUR_GIVEN_M if sex == "M" else ref.UYGHUR_GIVEN_F)
            fathers = father.name.split(ref.MIDDLE_DOT)[0] if father else None
            second = fathers or rng.choice(ref.UYGHUR_GIVEN_M)
            p = self.person(sex, birth, FLOATING, surname="", region=region, ethnic=ethnic,
                            given=own + ref.MIDDLE_DOT + second)
        else:
            pool = ref.TIBETAN_NAMES if ethnic == "藏族" else ref.MONGOLIAN_NAMES
            p = self.person(sex, birth, FLOATING, surname="", region=region, ethnic=ethnic,
                            given=rng.choice(pool))
        p.former_name = None
        return p

    def child_of(self, father: Person, mother: Person, sex: str, birth: date) -> Person:
        """A child with the father's surname (sometimes the mother's) and hukou region."""
        rng = self.rng
        if father.category == FOREIGN:
            c = self.person(sex, birth, FOREIGN, surname=father.surname)
        elif father.surname == "" and father.ethnic in MINORITY_REGIONS:
            c = self.dotted(sex, birth, father.ethnic, father)
        else:
            surname = mother.surname if rng.random() < 0.06 and mother.surname else father.surname
            given = None
            if sex == "M" and rng.random() < self.rates.child_named_after_parent:
                given = father.name[len(father.surname) :]
            c = self.person(sex, birth, father.category, surname=surname, region=father.region,
                            ethnic=father.ethnic, given=given)
        c.mother = mother
        return c

    def household_landline(self, index: int, old: bool) -> str | None:
        """A fixed line for some households (twice as often where someone is 65+)."""
        share = self.rates.shared_landline * (2.0 if old else 1.0)
        if self.rng.random() >= share:
            return None
        local = index % KEY_STRIDE
        slot = local if local < DAY2_LOCAL else 2_000 + (local - DAY2_LOCAL)
        return landline(self.chunk * 2_500 + slot, self.salt, self.rng)
