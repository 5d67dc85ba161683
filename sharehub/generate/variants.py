"""How values get written down: name typing errors, middle dots, phone formats.

Why separate from the people: a person has one true name and one phone; each feed (and
each clerk) writes them differently. These functions take the true value and an RNG and
return what ends up in a record, so the same damage logic serves day 1 and day 2.
"""

from __future__ import annotations

import random

from sharehub.generate.damage import Damage, note
from sharehub.generate.rates import ErrorRates
from sharehub.generate.reference import DOT_VARIANTS, HOMOPHONES, MIDDLE_DOT, TRADITIONAL

_FULLWIDTH = {i: i + 0xFEE0 for i in range(0x21, 0x7F)}
_FULLWIDTH[0x20] = 0x3000


def fullwidth(text: str) -> str:
    """ASCII characters as their full-width forms (what a Chinese IME types)."""
    return text.translate(_FULLWIDTH)


def dot_variant(name: str, rng: random.Random, p: float, damage: Damage | None = None) -> str:
    """Replace the middle dot of a minority name with a look-alike, with probability p."""
    if MIDDLE_DOT not in name or rng.random() >= p:
        return name
    note(damage, "name", "dot_variant")
    return name.replace(MIDDLE_DOT, rng.choice(DOT_VARIANTS[1:]))


def hand_typed(name: str, rng: random.Random, rates: ErrorRates,
               damage: Damage | None = None) -> str:
    """A name as typed by a civil-affairs clerk: homophones, traditional forms, spaces."""
    if rng.random() < rates.ca_homophone:
        spots = [i for i, c in enumerate(name) if c in HOMOPHONES]
        if spots:
            i = rng.choice(spots)
            name = name[:i] + rng.choice(HOMOPHONES[name[i]]) + name[i + 1 :]
            note(damage, "name", "homophone")
    if rng.random() < rates.ca_traditional:
        typed = "".join(TRADITIONAL.get(c, c) for c in name)
        if typed != name:
            note(damage, "name", "traditional")
        name = typed
    if MIDDLE_DOT in name:
        name = dot_variant(name, rng, 0.5, damage)
    if rng.random() < rates.ca_stray_space:
        where = rng.randrange(3)
        gap = rng.choice((" ", "\u3000", "  "))
        if where == 0 and len(name) >= 2:
            name = name[:1] + gap + name[1:]
        elif where == 1:
            name = name + gap
        else:
            name = gap + name
        note(damage, "name", "space")
    if rng.random() < rates.ca_fullwidth:
        name = fullwidth(name) if name.isascii() else name.replace(MIDDLE_DOT, "．") + "\u3000"
        note(damage, "name", "fullwidth")
    return name


def phone_variant(phone: str | None, rng: random.Random, p: float,
                  damage: Damage | None = None) -> str | None:
    """The phone in one of the formats people write: spaced, dashed, +86, bare landline."""
    if not phone or rng.random() >= p:
        return phone
    note(damage, "phone", "phone_format")
    if phone.startswith("010-"):
        local = phone[4:]
        return rng.choice((f"010-{local[:4]} {local[4:]}", f"(010){local}", local,
                           f"010 {local[:4]} {local[4:]}", f"010{local}"))
    a, b, c = phone[:3], phone[3:7], phone[7:]
    return rng.choice((f"+86 {a} {b} {c}", f"{a}-{b}-{c}", f"{a} {b} {c}", f"+86{phone}",
                       f"86-{phone}"))


def age_band_amount(age: int) -> float:
    """高龄津贴 in Beijing by age band (yuan per month)."""
    if age >= 100:
        return 800.0
    if age >= 90:
        return 500.0
    return 100.0


def benefit_amount(benefit: str, age: int, rng: random.Random) -> float:
    """A plausible monthly amount for a benefit (yuan, two decimals)."""
    if benefit == "高龄津贴":
        return age_band_amount(age)
    if benefit == "低保":
        return float(rng.choice((1395, 1395, 1395, 980, 1120, 697.5)))
    if benefit == "特困供养":
        return 2093.0
    if benefit == "残疾人补贴":
        return float(rng.choice((100, 200, 300, 400)))
    return float(rng.randrange(500, 3001, 100))
