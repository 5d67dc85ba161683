"""The day-1 state of one chunk as feed records, and what every chunk shares (Context).

Why a Context: the run-wide constants (seed, rates, key salts, family doctors, number of
estates) and the one stateful object (the ID allocator) are built once and passed to each
chunk, so that a chunk is a pure function of (Context, chunk index) and its records are
byte-for-byte the same on day 1 and when day 2 regenerates them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sharehub.generate.damage import Damage
from sharehub.generate.idnumbers import IdAllocator, KeyFactory
from sharehub.generate.layouts import HEALTH, HOUSING, POPULATION, RECIPIENTS, Record
from sharehub.generate.rates import ErrorRates
from sharehub.generate.records_ca import Relatives, recipient_records
from sharehub.generate.records_hw import Doctors, health_records
from sharehub.generate.records_ps import housing_records, population_records
from sharehub.generate.world import (
    CHUNK_PERSONS,
    ESTATES_PER_CHUNK,
    Chunk,
    build_chunk,
    chunk_rng,
    salt_of,
)


@dataclass
class Context:
    """Run-wide inputs of every chunk."""

    seed: int
    persons: int
    rates: ErrorRates
    ids: IdAllocator = field(default_factory=IdAllocator)

    def __post_init__(self) -> None:
        self.chunks = -(-self.persons // CHUNK_PERSONS)
        self.estates_total = self.chunks * ESTATES_PER_CHUNK
        self.key_salts = {p: salt_of(self.seed, p) for p in ("RK", "MZ", "JK")}
        self.estate_salt = salt_of(self.seed, "estate")
        self.house_salt = salt_of(self.seed, "house")
        self.doctors = Doctors(self.seed)

    def quota(self, chunk: int) -> int:
        """Residents of chunk ``chunk``: CHUNK_PERSONS except for the last chunk."""
        return min(CHUNK_PERSONS, self.persons - chunk * CHUNK_PERSONS)


@dataclass
class ChunkState:
    """A chunk's world and its day-1 records, one list per feed, in delivery order."""

    chunk: Chunk
    keys: KeyFactory
    records: dict[str, list[Record]]

    def truth(self, stale_names: set[tuple[str, str]] | None = None) -> list[TruthRow]:
        """The truth.csv row of every day-1 record of the chunk.

        ``stale_names`` (from day 2) lists records whose person was renamed since and
        which still carry the old name: their damage gains ``name_change``.
        """
        stale = stale_names or set()
        rows = []
        for feed in (POPULATION, HOUSING, RECIPIENTS, HEALTH):
            for r in self.records[feed]:
                damage = r.damage
                if (feed, r.key) in stale:
                    damage = damage.copy()
                    damage.add("name", "name_change")
                rows.append(truth_row(feed, r, damage))
        return rows


TruthRow = tuple[str, str, str, str, str]


def truth_row(feed: str, record: Record, damage: Damage | None = None) -> TruthRow:
    """``(feed, source_key, true_person_id, twin_of, damage)`` of one record."""
    p = record.person
    twin = p.twin.pid if p.twin is not None else ""
    return (feed, record.key, p.pid, twin, str(record.damage if damage is None else damage))


def day1_state(ctx: Context, index: int) -> ChunkState:
    """Generate chunk ``index`` and all of its day-1 records.

    Each feed draws from its own RNG stream so that tuning one feed's rates leaves the
    other feeds' records unchanged; the row order inside a chunk is shuffled so that it
    reveals nothing about households.
    """
    chunk = build_chunk(index, ctx.quota(index), ctx.seed, ctx.rates, ctx.ids, ctx.estates_total)
    keys = KeyFactory(index, ctx.key_salts)
    rates = ctx.rates
    persons = chunk.persons

    def rng(stream: str) -> random.Random:
        return chunk_rng(ctx.seed, index, stream)

    records = {
        POPULATION: population_records(persons, keys, rng(POPULATION), rates,
                                       ctx.estates_total, ctx.estate_salt),
        HOUSING: housing_records(chunk.dwellings, rng(HOUSING), rates),
        RECIPIENTS: recipient_records(persons, keys, rng(RECIPIENTS), rates, Relatives(persons)),
        HEALTH: health_records(persons, keys, rng(HEALTH), rates, ctx.doctors,
                               ctx.estates_total, ctx.estate_salt),
    }
    order = rng("order")
    for feed in (POPULATION, HOUSING, RECIPIENTS, HEALTH):
        order.shuffle(records[feed])
    return ChunkState(chunk, keys, records)
