"""Day-2 deliveries of one chunk: deltas for public security, a full roster, the health table.

Why each feed reacts differently to the same events: that is how the departments work.
Police write a delta row the same day (新增 / 变更 / 注销); civil affairs sends its whole
roster again, where a dead recipient is usually gone but sometimes only 停保; the clinic
updates a record only when the person comes in, so an address change reaches health
half the time and a former name often stays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sharehub.generate.damage import Damage
from sharehub.generate.dwellings import render, variant
from sharehub.generate.evolve import Events
from sharehub.generate.layouts import (
    C_ADDR,
    C_NAME,
    C_PHONE,
    C_STATUS,
    DELETE,
    E_ADDRESS,
    E_DELETED,
    E_DOCTOR,
    E_MOBILE,
    E_NAME,
    E_TAGS,
    E_UPDATED,
    H_CHANGE,
    H_OCCUPANCY,
    H_OWNER_NAME,
    H_UPDATED,
    HEALTH,
    HOUSING,
    INSERT,
    P_ADDR,
    P_CHANGE,
    P_HOUSE,
    P_HUKOU,
    P_NAME,
    P_PHONE,
    P_UPDATED,
    POPULATION,
    RECIPIENTS,
    UPDATE,
    Record,
    day2_stamp,
)
from sharehub.generate.places import PREFIX
from sharehub.generate.records import ChunkState, Context
from sharehub.generate.records_ca import Relatives, recipient_row
from sharehub.generate.records_hw import health_row
from sharehub.generate.records_ps import housing_row, population_row
from sharehub.generate.variants import phone_variant


@dataclass
class Day2Rows:
    """What one chunk delivers on day 2, and the records that did not exist on day 1."""

    records: dict[str, list[Record]]
    new: list[Record] = field(default_factory=list)
    new_feeds: list[str] = field(default_factory=list)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    stale_names: set[tuple[str, str]] = field(default_factory=set)

    def add_new(self, feed: str, record: Record) -> None:
        self.new.append(record)
        self.new_feeds.append(feed)


def _count(changes: dict[str, dict[str, int]], feed: str, kind: str) -> None:
    per_feed = changes.setdefault(feed, {})
    per_feed[kind] = per_feed.get(kind, 0) + 1


def _population(state: ChunkState, ev: Events, rng: random.Random, ctx: Context,
                out: Day2Rows) -> list[Record]:
    """注销 for the dead and departed, 变更 for movers/renamed/new phones, 新增 for arrivals."""
    rows: list[Record] = []
    stamp = day2_stamp
    main = {id(r.person): r for r in state.records[POPULATION] if not r.second}
    dups = {id(r.person): r for r in state.records[POPULATION] if r.second}
    for p in ev.dead + ev.left:
        for rec, share in ((main.get(id(p)), 1.0), (dups.get(id(p)), 0.3)):
            if rec is not None and rng.random() < share:
                row = [*rec.row[:P_CHANGE], DELETE, stamp(rng)]
                rows.append(Record(rec.key, p, row))
                _count(out.changes, POPULATION, DELETE)
    changed: dict[int, list[object]] = {}
    renamed = {id(p) for p in ev.renamed}
    rehoused = {id(p) for p in ev.hukou_moved}
    movers = [m for hh, _ in ev.moved for m in hh.members if not (m.dead or m.left)]
    moving = {id(m) for m in movers}
    for p in movers + ev.new_phone + ev.renamed + ev.hukou_moved:
        rec = main.get(id(p))
        if rec is None:
            continue
        row = changed.setdefault(id(p), list(rec.row))
        hh = p.household
        if id(p) in moving and hh is not None and hh.dwelling is not None:
            d = hh.dwelling
            row[P_ADDR] = render(d, "full", PREFIX)
            row[P_HOUSE] = d.code if d.registered else ""
        if id(p) in renamed:
            row[P_NAME] = p.name
        if id(p) in rehoused:
            row[P_HUKOU] = p.hukou
        if hh is not None and row[P_PHONE]:
            row[P_PHONE] = hh.contact_phone(p) or ""
    for p in movers + ev.new_phone + ev.renamed + ev.hukou_moved:
        if id(p) in changed:
            row = changed.pop(id(p))
            row[P_CHANGE], row[P_UPDATED] = UPDATE, stamp(rng)
            rows.append(Record(main[id(p)].key, p, row))
            _count(out.changes, POPULATION, UPDATE)
    for p in ev.newcomers:
        if p.in_pop:
            key, damage = state.keys.population(), Damage()
            row = population_row(p, key, rng, ctx.rates, damage)
            row[P_UPDATED] = stamp(rng)
            rec = Record(key, p, row, damage=damage)
            rows.append(rec)
            out.add_new(POPULATION, rec)
            _count(out.changes, POPULATION, INSERT)
    rng.shuffle(rows)
    return rows


def _housing(state: ChunkState, ev: Events, rng: random.Random, ctx: Context,
             out: Day2Rows) -> list[Record]:
    """变更 for occupancy and owner-name changes, 注销 for removed rooms, 新增 for new ones."""
    rows: list[Record] = []
    by_code = {r.key: r for r in state.records[HOUSING]}
    renamed = {id(p) for p in ev.renamed}
    touched = list(ev.dwellings_changed)
    touched += [d for d in state.chunk.dwellings
                if d.owner is not None and id(d.owner) in renamed and d.code in by_code
                and rng.random() < 0.5]
    seen: set[str] = set()
    for d in touched:
        rec = by_code.get(d.code)
        if rec is None or d.code in seen:
            continue
        seen.add(d.code)
        row = list(rec.row)
        row[H_OCCUPANCY] = d.occupancy
        if d.owner is not None and id(d.owner) in renamed:
            row[H_OWNER_NAME] = d.owner.name
        row[H_CHANGE], row[H_UPDATED] = UPDATE, day2_stamp(rng)
        rows.append(Record(d.code, rec.person, row))
        _count(out.changes, HOUSING, UPDATE)
    for d in ev.dwellings_removed:
        rec = by_code[d.code]
        rows.append(Record(d.code, rec.person, [*rec.row[:H_CHANGE], DELETE, day2_stamp(rng)]))
        _count(out.changes, HOUSING, DELETE)
    for d in ev.dwellings_new:
        assert d.owner is not None
        damage = Damage()
        row = housing_row(d, rng, ctx.rates, damage)
        row[H_UPDATED] = day2_stamp(rng)
        rec = Record(d.code, d.owner, row, damage=damage)
        rows.append(rec)
        out.add_new(HOUSING, rec)
        _count(out.changes, HOUSING, INSERT)
    rng.shuffle(rows)
    return rows


def _recipients(state: ChunkState, ev: Events, rng: random.Random, ctx: Context,
                out: Day2Rows) -> list[Record]:
    """The whole new roster: most rows unchanged, some gone, some 停保, a few new."""
    rates = ctx.rates
    moved = {id(m) for hh, _ in ev.moved for m in hh.members}
    phoned = {id(p) for p in ev.new_phone}
    rows: list[Record] = []
    for rec in state.records[RECIPIENTS]:
        p, row = rec.person, list(rec.row)
        if p.dead or p.left:
            if rng.random() < 0.8:
                _count(out.changes, RECIPIENTS, "gone")
                continue
            row[C_STATUS] = "停保"
        elif rng.random() < rates.day2_ca_leave:
            _count(out.changes, RECIPIENTS, "gone")
            continue
        elif row[C_STATUS] == "在保" and rng.random() < rates.day2_ca_stop:
            row[C_STATUS] = "停保"
        if id(p) in moved and rng.random() < 0.5 and p.household and p.household.dwelling:
            row[C_ADDR] = variant(p.household.dwelling, rng, rates.address_variant)
        if id(p) in phoned and rng.random() < 0.4:
            row[C_PHONE] = phone_variant(p.mobile, rng, rates.phone_variant) or ""
        if row[C_STATUS] != rec.row[C_STATUS]:
            _count(out.changes, RECIPIENTS, "停保")
        rows.append(Record(rec.key, p, row))
    relatives = Relatives(state.chunk.persons)
    for p in state.chunk.persons:
        if p.dead or p.left or p.category != "户籍人口" or rng.random() >= rates.day2_ca_new:
            continue
        benefit = ("高龄津贴" if p.age >= 79 else "残疾人补贴" if p.disabled
                   else rng.choice(("低保", "临时救助")))
        if benefit in p.benefits:
            continue
        key, damage = state.keys.recipient(), Damage()
        row = recipient_row(p, benefit, key, rng, rates, relatives, damage)
        row[C_STATUS] = "在保"
        rec = Record(key, p, row, damage=damage)
        rows.append(rec)
        out.add_new(RECIPIENTS, rec)
        _count(out.changes, RECIPIENTS, "new")
    return rows


def _health(state: ChunkState, ev: Events, rng: random.Random, ctx: Context,
            out: Day2Rows) -> list[Record]:
    """The health table after day 2: updated rows get a later updated_at, new rows appear."""
    rates = ctx.rates
    mirror = rates.day2_health_mirror
    moved = {id(m) for hh, _ in ev.moved for m in hh.members}
    phoned = {id(p) for p in ev.new_phone}
    renamed = {id(p) for p in ev.renamed}
    rows: list[Record] = []
    for rec in state.records[HEALTH]:
        p, row = rec.person, list(rec.row)
        touched = False
        if row[E_DELETED] == 0:
            if p.dead and rng.random() < rates.day2_health_delete:
                row[E_DELETED], touched = 1, True
            elif rec.second and rng.random() < 0.02:
                row[E_DELETED], touched = 1, True  # duplicate found and retired
            home = p.household.dwelling if p.household else None
            if id(p) in moved and home is not None and rng.random() < mirror:
                row[E_ADDRESS], touched = variant(home, rng, rates.address_variant), True
            if id(p) in phoned and rng.random() < mirror:
                row[E_MOBILE], touched = phone_variant(p.mobile, rng, rates.phone_variant), True
            if id(p) in renamed and rng.random() < mirror * 0.4:
                row[E_NAME], touched = p.name, True
            if p.age == 0 and row[E_NAME] != p.name and rng.random() < 0.5:
                row[E_NAME], touched = p.name, True  # the baby got its name
            if rng.random() < rates.day2_health_touch:
                tags = [t for t in (row[E_TAGS] or "").split(";") if t]
                if p.age >= 35 and "高血压" not in tags:
                    row[E_TAGS] = ";".join([*tags, "高血压"])
                row[E_DOCTOR] = ctx.doctors.pick(rng.randrange(len(ctx.doctors.by_clinic)), rng)
                touched = True
        if touched:
            row[E_UPDATED] = day2_stamp(rng)
            _count(out.changes, HEALTH, "deleted" if row[E_DELETED] else "updated")
        rows.append(Record(rec.key, p, row))
    registering = [p for p in state.chunk.persons
                   if p.health == 0 and not (p.dead or p.left)
                   and rng.random() < rates.day2_health_new]
    for p in [p for p in ev.newcomers if p.health] + registering:
        key, damage = state.keys.health(), Damage()
        row = health_row(p, key, rng, rates, ctx.doctors, second=False,
                         estates_total=ctx.estates_total, salt=ctx.estate_salt, damage=damage)
        row[E_DELETED], row[E_UPDATED] = 0, day2_stamp(rng)
        rec = Record(key, p, row, damage=damage)
        rows.append(rec)
        out.add_new(HEALTH, rec)
        _count(out.changes, HEALTH, "new")
    return rows


def day2_rows(state: ChunkState, ev: Events, ctx: Context, rng: random.Random) -> Day2Rows:
    """Turn one chunk's day-2 events into the four day-2 deliveries."""
    out = Day2Rows(records={})
    state.keys.start_day2()
    out.records[POPULATION] = _population(state, ev, rng, ctx, out)
    out.records[HOUSING] = _housing(state, ev, rng, ctx, out)
    out.records[RECIPIENTS] = _recipients(state, ev, rng, ctx, out)
    out.records[HEALTH] = _health(state, ev, rng, ctx, out)
    out.stale_names = _stale_names(state, ev, out)
    return out


_NAME_COLUMN = {POPULATION: P_NAME, HOUSING: H_OWNER_NAME, RECIPIENTS: C_NAME, HEALTH: E_NAME}


def _stale_names(state: ChunkState, ev: Events, out: Day2Rows) -> set[tuple[str, str]]:
    """``(feed, key)`` of day-1 records of persons renamed on day 2 that still carry the
    old name after day 2 (not re-delivered, or re-delivered unchanged): for the truth,
    their damage gains ``name_change``."""
    renamed = {id(p) for p in ev.renamed}
    if not renamed:
        return set()
    now = {(feed, r.key): r.row[col] for feed, col in _NAME_COLUMN.items()
           for r in out.records[feed]}
    return {
        (feed, r.key)
        for feed, col in _NAME_COLUMN.items()
        for r in state.records[feed]
        if id(r.person) in renamed and now.get((feed, r.key), r.row[col]) != r.person.name
    }
