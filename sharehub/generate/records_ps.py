"""Public-security rows: 实有人口 (population) and 实有房屋 (housing).

Why these rows are mostly clean: police registers are kept by professionals against the
hukou system, so names and IDs are usually right. The difficulty lies elsewhere — a few
wrong check digits and typos, a person registered twice, hukou addresses that differ
from the residence, house codes missing, and a handful of malformed birth dates that a
data contract must quarantine.
"""

from __future__ import annotations

import random

from sharehub.generate.damage import Damage, note
from sharehub.generate.dwellings import Dwelling, elsewhere_in_district, render
from sharehub.generate.idnumbers import KeyFactory, damage_id, legacy_15
from sharehub.generate.layouts import INSERT, Record, past_stamp
from sharehub.generate.people import FOREIGN, Person
from sharehub.generate.places import PREFIX
from sharehub.generate.rates import ErrorRates
from sharehub.generate.variants import dot_variant

SEX = {"M": "男", "F": "女"}


def _bad_birth(p: Person, rng: random.Random) -> str:
    """A 出生日期 that breaks the YYYYMMDD contract, as exports really produce them."""
    b = p.birth
    return rng.choice((
        f"{b.year}{rng.randint(13, 19)}{b.day:02d}",  # month out of range
        f"{b.year}0230",  # 30 February
        f"{b.year}-{b.month:02d}-{b.day:02d}",  # wrong format
        f"{b.year}0000",
        "未知",
        f"{b.year % 100:02d}{b.month:02d}{b.day:02d}",
    ))


def _with_comma(text: str, rng: random.Random) -> str:
    """Rarely a hand-entered comma, so that CSV quoting is exercised."""
    if len(text) > 6 and rng.random() < 0.003:
        cut = rng.randrange(3, len(text) - 2)
        return text[:cut] + "," + text[cut:]
    return text


def _contact(p: Person, phone: str | None, damage: Damage | None) -> None:
    """Tag the phone field: missing, or a number that is not the person's own mobile."""
    if not phone:
        note(damage, "phone", "phone_missing")
    elif phone != p.mobile:
        note(damage, "phone", "relative_phone")


def population_row(p: Person, key: str, rng: random.Random, rates: ErrorRates,
                   damage: Damage | None = None) -> list[str]:
    """The row of one registered person as the police export writes it."""
    hh = p.household
    d = hh.dwelling if hh else None
    id_no = p.id_no
    if p.category != FOREIGN and rng.random() < rates.pop_id_error:
        id_no = damage_id(id_no, rng, damage)
    birth = f"{p.birth:%Y%m%d}"
    if rng.random() < rates.pop_bad_birth:
        birth = _bad_birth(p, rng)
        note(damage, "birth", "birth_malformed")
    residence = ""
    if d is not None:
        style = "short" if rng.random() < 0.1 else "full"
        residence = render(d, style, PREFIX, street=rng.random() < 0.25)
        if style != "full":
            note(damage, "address", "address_format")
    phone = None
    if hh is not None and rng.random() >= rates.pop_phone_missing:
        phone = hh.contact_phone(p)
    _contact(p, phone, damage)
    house = ""
    if d is not None and d.registered and rng.random() >= rates.pop_house_code_missing:
        house = d.code
    return [
        key,
        dot_variant(p.name, rng, rates.pop_dot_variant, damage),
        id_no,
        SEX[p.sex],
        p.ethnic,
        birth,
        _with_comma(p.hukou, rng),
        residence,
        phone or "",
        p.category,
        house,
        INSERT,
        past_stamp(rng, p.birth),
    ]


def duplicate_row(p: Person, key: str, rng: random.Random, rates: ErrorRates,
                  estates_total: int, salt: int, damage: Damage | None = None) -> list[str]:
    """A second registration of the same person: older, with a former address or name."""
    row = population_row(p, key, rng, rates, damage)
    if p.former_name and rng.random() < 0.7:
        row[1] = p.former_name
        if damage is not None:
            damage.replace("name", "name_change")
    if rng.random() < 0.5:
        row[7] = elsewhere_in_district(rng, estates_total, salt)
        row[10] = ""
        if damage is not None:
            damage.replace("address", "address_stale")
    if p.category != FOREIGN and rng.random() < 0.25:
        row[2] = damage_id(p.id_no, rng, damage)
    if rng.random() < 0.4:
        row[8] = ""
        if damage is not None:
            damage.replace("phone", "phone_missing")
    return row


def owner_id(owner: Person, rng: random.Random, rates: ErrorRates,
             damage: Damage | None = None) -> str:
    """The owner's ID as on the title deed: sometimes the legacy 15-digit form or a typo."""
    if owner.category == FOREIGN:
        return owner.id_no
    if owner.age >= 40 and rng.random() < rates.owner_legacy_id:
        note(damage, "id", "id_15digit")
        return legacy_15(owner.id_no)
    if rng.random() < rates.owner_id_error:
        return damage_id(owner.id_no, rng, damage)
    return owner.id_no


def housing_row(d: Dwelling, rng: random.Random, rates: ErrorRates,
                damage: Damage | None = None) -> list[str]:
    """One registered dwelling with its owner (产权人), who is a person record too.

    The owner's record has a name and an ID only; the dwelling's address is not the
    owner's address, so no address damage is recorded for it.
    """
    owner = d.owner
    assert owner is not None
    name = owner.name
    if owner.former_name and rng.random() < 0.5:
        name = owner.former_name
        note(damage, "name", "name_change")
    return [
        d.code,
        render(d, "full", PREFIX if rng.random() < 0.7 else ""),
        d.use,
        d.occupancy,
        dot_variant(name, rng, rates.pop_dot_variant, damage),
        owner_id(owner, rng, rates, damage),
        f"{d.area:.2f}",
        INSERT,
        past_stamp(rng),
    ]


def population_records(persons: list[Person], keys: KeyFactory, rng: random.Random,
                       rates: ErrorRates, estates_total: int, salt: int) -> list[Record]:
    """Every population row of a chunk: one per registered person, two for duplicates."""
    out: list[Record] = []
    for p in persons:
        if not p.in_pop:
            continue
        key, damage = keys.population(), Damage()
        out.append(Record(key, p, population_row(p, key, rng, rates, damage), damage=damage))
        if p.pop_dup:
            key, damage = keys.population(), Damage()
            row = duplicate_row(p, key, rng, rates, estates_total, salt, damage)
            out.append(Record(key, p, row, second=True, damage=damage))
    return out


def housing_records(dwellings: list[Dwelling], rng: random.Random,
                    rates: ErrorRates) -> list[Record]:
    """Every registered, owned dwelling of a chunk; the record's person is the owner."""
    out: list[Record] = []
    for d in dwellings:
        if d.registered and d.owner is not None:
            damage = Damage()
            out.append(Record(d.code, d.owner, housing_row(d, rng, rates, damage), damage=damage))
    return out
