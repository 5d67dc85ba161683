"""Household compositions: singles, couples, nuclear and three-generation families.

Why it matters for linkage: family members share an address and often a phone, parents
and children share a surname (and sometimes a whole name), twins share a birth date, and
grandparents are the civil-affairs recipients whose contact phone is a child's. The mix
below follows the shape of an urban Beijing district: many two- and three-person
households, a sizeable floating population, an ageing local population.
"""

from __future__ import annotations

import random
from itertools import accumulate

from sharehub.generate import reference as ref
from sharehub.generate.people import FLOATING, FOREIGN, LOCAL, Household, Person, PersonFactory
from sharehub.generate.rates import ErrorRates

_KINDS = (("single_young", 13.0), ("single_old", 8.0), ("couple_young", 9.0),
          ("couple_old", 12.0), ("nuclear", 36.0), ("three_gen", 14.0), ("single_parent", 4.0))
_KIND_NAMES = tuple(k for k, _ in _KINDS)
_KIND_CUM = tuple(accumulate(w for _, w in _KINDS))
_DOTTED = ("维吾尔族", "维吾尔族", "藏族", "蒙古族")


def _ethnic(rng: random.Random, rates: ErrorRates) -> str:
    if rng.random() < rates.minority_han_form:
        names = [n for n, _ in ref.ETHNIC_MINOR_WEIGHTS]
        return rng.choices(names, weights=[w for _, w in ref.ETHNIC_MINOR_WEIGHTS])[0]
    return "汉族"


def _couple(f: PersonFactory, category: str, lo: int, hi: int, ethnic: str) -> list[Person]:
    rng = f.rng
    husband = f.person("M", f.birth(lo, hi), category, ethnic=ethnic)
    wife_age = min(max(husband.age + rng.randint(-6, 3), 20), 99)
    wife_cat = category
    if category == LOCAL and rng.random() < 0.12:
        wife_cat = FLOATING  # married into the district, hukou still at home
    wife_ethnic = ethnic if rng.random() < 0.7 else "汉族"
    wife = f.person("F", f.birth(wife_age, wife_age), wife_cat, ethnic=wife_ethnic)
    return [husband, wife]


def _children(f: PersonFactory, rates: ErrorRates, father: Person, mother: Person,
              count: int) -> list[Person]:
    """Children born when the mother was 22–40; with probability ``twins`` two are twins."""
    rng = f.rng
    hi, lo = mother.age - 22, max(0, mother.age - 40)
    if hi < 0:
        return []
    kids: list[Person] = []
    twins = count >= 1 and rng.random() < rates.twins
    for i in range(count):
        sex = "M" if rng.random() < 0.52 else "F"
        if twins and i == 1:
            first = kids[0]
            kids.append(_twin(f, father, mother, first, sex))
            continue
        kids.append(f.child_of(father, mother, sex, f.birth(lo, hi)))
    if twins and count == 1:
        kids.append(_twin(f, father, mother, kids[0], "M" if rng.random() < 0.5 else "F"))
    return kids


def _twin(f: PersonFactory, father: Person, mother: Person, first: Person, sex: str) -> Person:
    """A twin: same birth date, surname, address and phone; own given name and ID."""
    rng = f.rng
    given = None
    base = first.name[len(first.surname) :]
    if first.surname and first.category != FOREIGN and len(base) == 2 and rng.random() < 0.6:
        chars = ref.GIVEN_CHARS[(ref.cohort(first.birth.year), sex)]
        given = base[0] + rng.choice([c for c in chars if c != base[1]])
    twin = f.child_of(father, mother, sex, first.birth)
    if given and twin.surname == first.surname:
        twin.name = twin.surname + given
    if twin.name == first.name:  # identical full names would be a different hard case
        twin.name = twin.surname + base[:1] + rng.choice("一二大小")
    twin.former_name = None
    first.twin, twin.twin = twin, first
    return twin


def _family(f: PersonFactory, rng: random.Random, rates: ErrorRates, kind: str,
            category: str) -> list[Person]:
    ethnic = _ethnic(rng, rates) if category != FOREIGN else ""
    if kind == "single_young":
        return [f.person("M" if rng.random() < 0.55 else "F", f.birth(20, 40), category,
                         ethnic=ethnic)]
    if kind == "single_old":
        return [f.person("F" if rng.random() < 0.65 else "M", f.birth(65, 98), category,
                         ethnic=ethnic)]
    if kind == "couple_young":
        return _couple(f, category, 24, 38, ethnic)
    if kind == "couple_old":
        return _couple(f, category, 55, 90, ethnic)
    n_kids = rng.choices((1, 2, 3), weights=(55, 40, 5))[0]
    if kind == "single_parent":
        father, mother = _couple(f, category, 28, 55, ethnic)
        parent = mother if rng.random() < 0.75 else father
        kids = _children(f, rates, father, mother, n_kids)
        return [parent, *kids] if kids else [parent]
    if kind == "nuclear":
        parents = _couple(f, category, 27, 55, ethnic)
        return parents + _children(f, rates, parents[0], parents[1], n_kids)
    # three generations: the husband's parents (or a widowed parent) live with the family
    parents = _couple(f, category, 28, 50, ethnic)
    husband = parents[0]
    g_age = min(husband.age + rng.randint(22, 36), 99)
    grand = [f.person("M", f.birth(g_age, g_age), category, surname=husband.surname,
                      region=husband.region, ethnic=husband.ethnic)]
    grand.append(f.person("F", f.birth(g_age - 2, g_age - 2), category, ethnic=husband.ethnic))
    if rng.random() < 0.4:
        grand.pop(rng.randrange(2))
    husband.mother = grand[-1] if grand[-1].sex == "F" else None
    return parents + grand + _children(f, rates, parents[0], parents[1], n_kids)


def _dotted_family(f: PersonFactory, rng: random.Random) -> list[Person]:
    ethnic = rng.choice(_DOTTED)
    father = f.dotted("M", f.birth(25, 55), ethnic, None)
    members = [father]
    if rng.random() < 0.6:
        mother = f.dotted("F", f.birth(max(father.age - 4, 20), father.age), ethnic, None)
        members.append(mother)
        hi = mother.age - 22
        for _ in range(rng.randint(0, 2) if hi >= 0 else 0):
            sex = "M" if rng.random() < 0.5 else "F"
            child = f.dotted(sex, f.birth(max(0, mother.age - 40), hi), ethnic, father)
            child.mother = mother
            members.append(child)
    return members


def make_households(f: PersonFactory, rng: random.Random, rates: ErrorRates,
                    index: int) -> list[Household]:
    """One new household (or, for group renters, one household per renter) at ``index``.

    Group renters are unrelated floating singles who share a room: one household each,
    the dwelling is shared later.
    """
    r = rng.random()
    if r < rates.foreign_households:
        kind = rng.choice(("single_young", "couple_young", "nuclear"))
        members, category, kind = _family(f, rng, rates, kind, FOREIGN), FOREIGN, "family"
    elif r < rates.foreign_households + rates.group_rent:
        renters = [f.person("M" if rng.random() < 0.6 else "F", f.birth(19, 35), FLOATING)
                   for _ in range(rng.randint(2, 4))]
        groups = [Household(index + i, [m], FLOATING, kind="group") for i, m in enumerate(renters)]
        for hh in groups:
            hh.members[0].household = hh
        return groups
    elif r < rates.foreign_households + rates.group_rent + rates.minority_dotted:
        members, category, kind = _dotted_family(f, rng), FLOATING, "family"
    else:
        category = FLOATING if rng.random() < rates.floating_households else LOCAL
        kind = rng.choices(_KIND_NAMES, cum_weights=_KIND_CUM)[0]
        members = _family(f, rng, rates, kind, category)
    hh = Household(index, members, category, kind=kind)
    hh.landline = f.household_landline(index, any(m.age >= 65 for m in members))
    for m in members:
        m.household = hh
    return [hh]


def build_households(f: PersonFactory, rng: random.Random, rates: ErrorRates, quota: int,
                     base: int) -> list[Household]:
    """Households until exactly ``quota`` persons exist (the last one may be cut short)."""
    households: list[Household] = []
    count = 0
    while count < quota:
        for hh in make_households(f, rng, rates, base + len(households)):
            if count >= quota:
                break
            del hh.members[quota - count :]
            households.append(hh)
            count += len(hh.members)
    return households
