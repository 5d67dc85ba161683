"""Civil-affairs rows (服务对象花名册): one row per person per benefit, typed by hand.

Why this feed is the dirtiest: rosters are kept in Excel by sub-district clerks. Names are
typed from hearing (homophones) or with a traditional-character input method, IDs lose
digits when Excel turns them into numbers, birth months come in four formats, and the
contact phone is often a son's or a guardian's — sometimes even the guardian's ID lands
in the ID column.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from sharehub.generate.damage import Damage, note
from sharehub.generate.dwellings import variant
from sharehub.generate.idnumbers import KeyFactory, excel_float, excel_sci_text, legacy_15
from sharehub.generate.layouts import Record
from sharehub.generate.people import FOREIGN, Person
from sharehub.generate.rates import ErrorRates
from sharehub.generate.variants import benefit_amount, fullwidth, hand_typed, phone_variant

SEX = {"M": "男", "F": "女"}
_ROLLS_START = date(2008, 1, 1)
_ROLLS_END = date(2026, 10, 20)


class Relatives:
    """Finds a guardian or a child for a recipient inside the chunk."""

    def __init__(self, persons: list[Person]) -> None:
        self.by_surname: dict[str, list[Person]] = {}
        for p in persons:
            if 30 <= p.age <= 70 and p.surname:
                self.by_surname.setdefault(p.surname, []).append(p)

    def guardian(self, p: Person, rng: random.Random) -> Person | None:
        """A parent for a minor; often a child for the very old or the disabled."""
        hh = p.household
        members = [m for m in hh.members if m is not p] if hh else []
        if p.age < 18:
            parents = [m for m in members if m.age >= p.age + 18]
            return rng.choice(parents) if parents else None
        if p.age >= 80 or p.disabled:
            if rng.random() >= 0.45:
                return None
            kids = [m for m in members if p.age - 45 <= m.age <= p.age - 18]
            if kids:
                return rng.choice(kids)
            others = [o for o in self.by_surname.get(p.surname, ()) if o.age <= p.age - 18]
            return rng.choice(others) if others else None
        return None


def ca_id(p: Person, guardian: Person | None, rng: random.Random,
          rates: ErrorRates, damage: Damage | None = None) -> str | float | None:
    """The 身份证号 cell: right, legacy, lowercase x, blank, or damaged by Excel."""
    if guardian is not None and rng.random() < rates.ca_guardian_id:
        note(damage, "id", "guardian_id")
        return guardian.id_no
    if rng.random() < rates.ca_id_blank:
        note(damage, "id", "id_missing")
        return None
    value = p.id_no
    if p.category == FOREIGN:
        return value
    if p.birth.year < 1985 and rng.random() < rates.ca_id_legacy * 2:
        note(damage, "id", "id_15digit")
        return legacy_15(value)
    r = rng.random()
    if r < rates.ca_id_float:
        excel = excel_float(value)
        if excel is not None:
            note(damage, "id", "id_excel")
        return excel or value
    r -= rates.ca_id_float
    if r < rates.ca_id_sci_text:
        text = excel_sci_text(value)
        if text is not None:
            note(damage, "id", "id_excel")
        return text or value
    r -= rates.ca_id_sci_text
    if r < rates.ca_id_lost_digits:
        note(damage, "id", "id_excel")
        return value[:15] + "000" if rng.random() < 0.5 else value[:17]
    if value.endswith("X") and rng.random() < rates.ca_id_lower_x:
        value = value[:17] + "x"
        note(damage, "id", "id_lower_x")
    if rng.random() < 0.01:
        value = fullwidth(value)
        note(damage, "id", "fullwidth")
    return value


def ca_birth(birth: date, rng: random.Random, rates: ErrorRates,
             damage: Damage | None = None) -> str | date:
    """出生年月 as typed: ``1948-03``, ``1948年3月``, ``194803``, ``1948.3`` or a date cell."""
    if rng.random() < rates.ca_birth_date_cell:
        return birth
    y, m = birth.year, birth.month
    note(damage, "birth", "birth_format")
    return rng.choices(
        (f"{y}-{m:02d}", f"{y}年{m}月", f"{y}{m:02d}", f"{y}.{m}"), weights=(45, 28, 20, 7)
    )[0]


def registered_on(p: Person, rng: random.Random) -> date:
    """登记日期: when the person was put on the rolls (never before birth)."""
    start = max(_ROLLS_START, p.birth + timedelta(days=30))
    span = max((_ROLLS_END - start).days, 1)
    return start + timedelta(days=rng.randrange(span))


def recipient_row(p: Person, benefit: str, key: str, rng: random.Random, rates: ErrorRates,
                  relatives: Relatives, damage: Damage | None = None) -> list[object]:
    """One roster row for one benefit of one person."""
    guardian = relatives.guardian(p, rng)
    hh = p.household
    own = hh.contact_phone(p) if hh else p.mobile
    contact = own
    if guardian is not None and guardian.mobile and (
        own is None or rng.random() < rates.ca_relative_phone * 1.5
    ):
        contact = guardian.mobile
    elif hh is not None and rng.random() < rates.ca_relative_phone:
        contact = hh.contact_phone(rng.choice(hh.members)) or own
    if not contact:
        note(damage, "phone", "phone_missing")
    elif contact != p.mobile:
        is_guardians = guardian is not None and contact == guardian.mobile
        note(damage, "phone", "guardian_phone" if is_guardians else "relative_phone")
    name = p.name
    if p.former_name and rng.random() < 0.3:
        name = p.former_name
        note(damage, "name", "name_change")
    hukou = p.hukou[3:] if p.hukou.startswith("北京市") and rng.random() < 0.5 else p.hukou
    home = ""
    if hh is not None and hh.dwelling is not None:
        home = variant(hh.dwelling, rng, min(1.0, rates.address_variant + 0.2), damage)
    return [
        key,
        hand_typed(name, rng, rates, damage),
        ca_id(p, guardian, rng, rates, damage),
        SEX[p.sex],
        ca_birth(p.birth, rng, rates, damage),
        hukou,
        home,
        phone_variant(contact, rng, rates.phone_variant, damage) or "",
        benefit,
        benefit_amount(benefit, p.age, rng),
        hand_typed(guardian.name, rng, rates) if guardian else "",
        (phone_variant(guardian.mobile, rng, rates.phone_variant) or "") if guardian else "",
        registered_on(p, rng),
        "停保" if rng.random() < rates.ca_stopped else "在保",
    ]


def recipient_records(persons: list[Person], keys: KeyFactory, rng: random.Random,
                      rates: ErrorRates, relatives: Relatives) -> list[Record]:
    """Every roster row of a chunk: a person with two benefits has two rows."""
    out: list[Record] = []
    for p in persons:
        for benefit in p.benefits:
            key, damage = keys.recipient(), Damage()
            row = recipient_row(p, benefit, key, rng, rates, relatives, damage)
            out.append(Record(key, p, row, damage=damage))
    return out
