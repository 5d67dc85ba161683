"""Health rows (居民健康档案): one or two records per registered resident.

Why these are hard: a quarter of records carry no ID (registered from a consultation, not
from an ID card), gender is sometimes coded 0 or 9, the very old are registered with only
their birth year, a newborn is registered as 张丽之子 before it has a name, a renamed
person's older record keeps the former name, and people registered at a second clinic
hold a second record with an older address or phone.
"""

from __future__ import annotations

import random

from sharehub.generate import reference as ref
from sharehub.generate.damage import Damage, note
from sharehub.generate.dwellings import elsewhere_in_district, variant
from sharehub.generate.idnumbers import KeyFactory
from sharehub.generate.layouts import BEFORE_RENAMING, DAY1_END, Record, past_stamp
from sharehub.generate.people import FOREIGN, Person
from sharehub.generate.places import CLINICS, STREETS
from sharehub.generate.rates import ErrorRates
from sharehub.generate.variants import dot_variant, phone_variant

_STREET_INDEX = {s: i for i, s in enumerate(STREETS)}


class Doctors:
    """Six family doctors per community health centre, fixed per seed."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"sharehub:{seed}:doctors")
        self.by_clinic = [
            [
                rng.choices(ref.SURNAMES, cum_weights=ref.SURNAME_CUM)[0]
                + rng.choice(ref.GIVEN_CHARS[("young", rng.choice("MF"))])
                + rng.choice(ref.GIVEN_CHARS[("young", rng.choice("MF"))])
                for _ in range(6)
            ]
            for _ in CLINICS
        ]

    def pick(self, clinic: int, rng: random.Random) -> str:
        return rng.choice(self.by_clinic[clinic])


def clinic_of(p: Person) -> int:
    """The community health centre of the sub-district the person lives in."""
    hh = p.household
    if hh is None or hh.dwelling is None:
        return 0
    return _STREET_INDEX[hh.dwelling.estate.street]


def newborn_name(p: Person) -> str | None:
    """张丽之子: how a baby is registered before it is named (mother's name + relation)."""
    if p.age >= 1 or p.mother is None:
        return None
    return p.mother.name + ref.KINSHIP_SUFFIX[p.sex]


def health_row(p: Person, key: str, rng: random.Random, rates: ErrorRates, doctors: Doctors,
               *, second: bool, estates_total: int, salt: int,
               damage: Damage | None = None) -> list[object]:
    """One health record; ``second`` marks a record made at another clinic, earlier."""
    hh = p.household
    name = p.name
    unnamed = newborn_name(p)
    if unnamed and rng.random() < rates.health_unnamed_newborn:
        name = unnamed
        note(damage, "name", "placeholder_name")
    elif p.former_name and rng.random() < (0.9 if second else rates.health_former_name):
        name = p.former_name
        note(damage, "name", "name_change")
    kept_former = name == p.former_name and p.birth.year < 2021  # an older record
    gender = 1 if p.male else 2
    if rng.random() < rates.health_gender_odd:
        gender = rng.choice((0, 9))
        note(damage, "sex", "sex_unknown")
    birth = p.birth.isoformat()
    if p.age >= 70 and rng.random() < rates.health_birth_jan1:
        birth = f"{p.birth.year}-01-01"
        if birth != p.birth.isoformat():
            note(damage, "birth", "birth_jan1")
    missing = rates.health_id_missing * (1.6 if second else 1.0)
    if name == unnamed or rng.random() < missing:
        id_type, id_no = ("99" if rng.random() < 0.8 else "01"), None
        note(damage, "id", "id_missing")
    elif p.category == FOREIGN:
        id_type, id_no = "03", p.id_no
    else:
        id_type, id_no = "01", p.id_no
        if id_no.endswith("X") and rng.random() < 0.2:
            id_no = id_no[:17] + "x"
            note(damage, "id", "id_lower_x")
    phone = hh.contact_phone(p) if hh else p.mobile
    if second and rng.random() < 0.4:
        phone = None
    address = None
    if hh and hh.dwelling:
        address = variant(hh.dwelling, rng, rates.address_variant, damage)
    if second and rng.random() < 0.5:
        address = elsewhere_in_district(rng, estates_total, salt)
        if damage is not None:
            damage.replace("address", "address_stale")
    clinic = clinic_of(p)
    if second:
        clinic = (clinic + rng.randrange(1, len(CLINICS))) % len(CLINICS)
    shown_name = dot_variant(name, rng, 0.3, damage)
    mobile = None
    if rng.random() >= 0.08:
        mobile = phone_variant(phone, rng, rates.phone_variant, damage)
    if not mobile:
        if damage is not None:
            damage.replace("phone", "phone_missing")
    elif phone != p.mobile:
        note(damage, "phone", "relative_phone")
    if rng.random() < 0.04:
        address = None
    if address is None and damage is not None:
        damage.replace("address", "address_missing")
    return [
        key,
        shown_name,
        gender,
        birth,
        id_type,
        id_no,
        mobile,
        address,
        ";".join(p.conditions) or None,
        doctors.pick(clinic, rng),
        past_stamp(rng, p.birth, BEFORE_RENAMING if kept_former else DAY1_END),
        1 if rng.random() < rates.health_deleted else 0,
    ]


def health_records(persons: list[Person], keys: KeyFactory, rng: random.Random,
                   rates: ErrorRates, doctors: Doctors, estates_total: int,
                   salt: int) -> list[Record]:
    """Every health record of a chunk (second records come from a second clinic)."""
    out: list[Record] = []
    for p in persons:
        for n in range(p.health):
            key, damage = keys.health(), Damage()
            row = health_row(p, key, rng, rates, doctors, second=n == 1,
                             estates_total=estates_total, salt=salt, damage=damage)
            out.append(Record(key, p, row, second=n == 1, damage=damage))
    return out
