"""The master house index: one row per dwelling, and which person records point at it.

Why a house index: the feeds describe the same flats in different words — public security
by 房屋编码 (``staging.ps_housing``, and 房屋编码 on population rows), civil affairs and
health only by a free-text address (``幸福里小区3号楼2单元501室``, ``幸福里3-2-501``,
``北京市朝阳区幸福里小区3栋2单元501``). The register of public security is the only list of
dwellings with a stable key, so it defines the dwellings; everything else is matched onto
it.

How a record finds its dwelling (``linkage.house_matches``, one row per non-owner record):

1. its 房屋编码, when it has one that the register knows (``house_code``);
2. otherwise the dwelling whose standardised address key (``estate|building|unit|room``,
   from :func:`linkage.standardize.standardize_address`) equals the record's
   ``linkage.person_features.addr_key`` (``address_match``). Only the full room-level key
   matches: a building or unit alone would put neighbours in one flat. A key held by two
   dwellings is ambiguous and links nothing; active dwellings take precedence over
   deregistered ones with the same key, so a flat re-registered under a new code is not
   ambiguous.

Both outcomes are kept for every record, so a population record with a code *and* an
address measures how often the address match agrees with the code.

``house_id`` is ``H`` + a hash of 房屋编码: opaque (no source key leaves the hub in it) and
identical on every re-run. Person-level links (``linkage.residence``) are built from these
matches in :mod:`linkage.residence`, once person ids exist.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from linkage import address_heads
from linkage.standardize import standardize_address
from sharehub.delta import Delta, apply_delta, same_shape, written
from sharehub.errors import ContractViolation
from sharehub.warehouse import one, table_exists

log = logging.getLogger(__name__)

HOUSES = "linkage.houses"
MATCHES = "linkage.house_matches"
OWNER_FEED = "ps_housing"

_HOUSES_DDL = f"""
CREATE OR REPLACE TABLE {HOUSES} (
    house_id VARCHAR PRIMARY KEY,
    house_code VARCHAR NOT NULL UNIQUE,
    address VARCHAR,
    addr_std VARCHAR,
    addr_estate VARCHAR,
    addr_building VARCHAR,
    addr_unit VARCHAR,
    addr_room VARCHAR,
    addr_key VARCHAR,
    usage VARCHAR,
    occupancy VARCHAR,
    status VARCHAR NOT NULL,
    owner_record_id VARCHAR
)"""
_HOUSE_COLUMNS = (
    "house_id", "house_code", "address", "addr_std", "addr_estate", "addr_building",
    "addr_unit", "addr_room", "addr_key", "usage", "occupancy", "status", "owner_record_id",
)  # fmt: skip

# The parse of each distinct address of the register: the previous build's (_PARSED_BEFORE)
# plus a fresh one for every address it did not hold (_UNPARSED, NULL included).
_PARSES_DDL = """
CREATE OR REPLACE TEMP TABLE _house_parses (
    address VARCHAR, addr_std VARCHAR, addr_estate VARCHAR, addr_building VARCHAR,
    addr_unit VARCHAR, addr_room VARCHAR, addr_key VARCHAR
)"""
_PARSED_BEFORE = f"""
INSERT INTO _house_parses
SELECT address, any_value(addr_std), any_value(addr_estate), any_value(addr_building),
       any_value(addr_unit), any_value(addr_room), any_value(addr_key)
FROM {HOUSES} WHERE address IS NOT NULL GROUP BY address"""
_UNPARSED = f"""
SELECT DISTINCT h.address FROM staging.{OWNER_FEED} h
ANTI JOIN _house_parses p ON p.address = h.address
WHERE h.is_current"""

# Current dwellings of the register, ended ones included, in the columns of HOUSES. house_id
# is house_id() in SQL: sha256() gives lowercase hex of the UTF-8 bytes, as hashlib does.
_HOUSES_SELECT = f"""
SELECT 'H' || upper(sha256(h.house_code)[1:15]) AS house_id, h.house_code, h.address,
       p.addr_std, p.addr_estate, p.addr_building, p.addr_unit, p.addr_room, p.addr_key,
       h.usage, h.occupancy, h.record_status AS status, o.record_id AS owner_record_id
FROM staging.{OWNER_FEED} h
LEFT JOIN staging.person_records o ON o.feed = '{OWNER_FEED}' AND o.source_key = h.house_code
LEFT JOIN _house_parses p ON p.address IS NOT DISTINCT FROM h.address
WHERE h.is_current"""
_HOUSES_INSERT = f"""
INSERT INTO {HOUSES} ({", ".join(_HOUSE_COLUMNS)})
{_HOUSES_SELECT}
ORDER BY h.house_code"""
# The constraints _HOUSES_DDL declares: a table without them is rebuilt, not updated.
_HOUSES_CONSTRAINTS = """
SELECT count(*) FILTER (WHERE constraint_type = 'PRIMARY KEY'),
       count(*) FILTER (WHERE constraint_type = 'UNIQUE')
FROM duckdb_constraints()
WHERE schema_name = ? AND table_name = ?"""

# For each full key: the one dwelling it names, or NULL when two or more share it. Only the
# best status tier competes: an active dwelling wins over deregistered ones.
_KEY_TARGETS = f"""
CREATE OR REPLACE TEMP TABLE _key_targets AS
SELECT addr_key, CASE WHEN count(*) = 1 THEN min(house_id) END AS house_id,
       count(*) AS dwellings
FROM (
    SELECT addr_key, house_id, tier, min(tier) OVER (PARTITION BY addr_key) AS best
    FROM (SELECT addr_key, house_id, CASE WHEN status = 'active' THEN 0 ELSE 1 END AS tier
          FROM {HOUSES} WHERE addr_key IS NOT NULL)
)
WHERE tier = best
GROUP BY addr_key"""

_MATCHES_SELECT = f"""
WITH rec AS (
    SELECT r.record_id, r.feed, r.record_status,
           nullif(trim(r.house_code), '') AS house_code,
           nullif(trim(r.address), '') IS NOT NULL AS has_address,
           f.addr_key
    FROM staging.person_records r
    LEFT JOIN linkage.person_features f ON f.unique_id = r.record_id
    WHERE r.feed <> '{OWNER_FEED}'
), matched AS (
    SELECT rec.*, h.house_id AS code_house_id, k.house_id AS addr_house_id,
           CASE WHEN NOT rec.has_address THEN 'no_address'
                WHEN rec.addr_key IS NULL THEN 'no_key'
                WHEN k.addr_key IS NULL THEN 'no_match'
                WHEN k.house_id IS NULL THEN 'ambiguous'
                ELSE 'matched' END AS addr_outcome
    FROM rec
    LEFT JOIN {HOUSES} h ON h.house_code = rec.house_code
    LEFT JOIN _key_targets k ON k.addr_key = rec.addr_key
)
SELECT record_id, feed, record_status, house_code, addr_key, code_house_id, addr_house_id,
       addr_outcome, coalesce(code_house_id, addr_house_id) AS house_id,
       CASE WHEN code_house_id IS NOT NULL THEN 'house_code'
            WHEN addr_house_id IS NOT NULL THEN 'address_match' END AS link_source
FROM matched"""

_RATES = f"""
SELECT feed,
       count(*),
       count(*) FILTER (WHERE house_code IS NOT NULL),
       count(code_house_id),
       count(*) FILTER (WHERE addr_outcome <> 'no_address'),
       count(addr_key),
       count(addr_house_id),
       count(*) FILTER (WHERE addr_outcome = 'ambiguous'),
       count(*) FILTER (WHERE code_house_id IS NOT NULL AND addr_house_id IS NOT NULL),
       count(*) FILTER (WHERE code_house_id = addr_house_id),
       count(*) FILTER (WHERE link_source = 'house_code'),
       count(*) FILTER (WHERE link_source = 'address_match')
FROM {MATCHES}
GROUP BY feed
ORDER BY feed"""


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class FeedMatch:
    """How one feed's person records found their dwellings (owners excluded)."""

    feed: str
    records: int
    with_house_code: int  # a non-empty 房屋编码 was delivered
    known_house_code: int  # … and the register knows it
    with_address: int
    with_key: int  # the address standardised to a full room-level key
    address_matched: int  # the key names exactly one dwelling
    ambiguous: int  # the key names two or more dwellings: not linked
    code_and_address: int  # both a known code and an address match
    code_address_agree: int  # … and both point at the same dwelling
    by_house_code: int
    by_address: int

    @property
    def linked(self) -> int:
        return self.by_house_code + self.by_address

    @property
    def linked_rate(self) -> float:
        """Share of the feed's records linked to a dwelling by either route."""
        return _ratio(self.linked, self.records)

    @property
    def address_match_rate(self) -> float:
        """Share of records with an address whose address names exactly one dwelling."""
        return _ratio(self.address_matched, self.with_address)

    @property
    def house_code_rate(self) -> float:
        """Share of delivered 房屋编码 that the register knows."""
        return _ratio(self.known_house_code, self.with_house_code)

    @property
    def agreement_rate(self) -> float:
        """Where code and address both link: share pointing at the same dwelling."""
        return _ratio(self.code_address_agree, self.code_and_address)


@dataclass(frozen=True)
class HouseIndexResult:
    """What one build of the house index found, per dwelling and per feed."""

    houses: int
    active: int
    with_key: int
    ambiguous_keys: int  # full keys held by two or more dwellings of the best status tier
    owners: int  # dwellings whose owner is a person record
    feeds: dict[str, FeedMatch] = field(default_factory=dict)


def house_id(house_code: str) -> str:
    """The opaque, stable id of a dwelling: ``H`` + 15 hex digits of sha256(房屋编码).

    A hash rather than the code itself keeps the police key out of shared tables; a
    collision (2⁻⁶⁰ per pair) would fail the primary key of ``linkage.houses`` loudly.
    """
    return "H" + hashlib.sha256(house_code.encode("utf-8")).hexdigest()[:15].upper()


def _require(con: duckdb.DuckDBPyConnection, table: str, step: str) -> None:
    if not table_exists(con, table):
        raise ContractViolation(f"{table} does not exist; run {step} before building houses")


def _parse_addresses(con: duckdb.DuckDBPyConnection, *, reuse: bool) -> int:
    """Fill ``_house_parses`` with the parse of every current address; return how many were new.

    Standardising a register of 370,000 dwellings costs seconds a run, and a day changes a
    few hundred addresses, so the previous build's parse of an unchanged address string is
    copied in SQL and only the rest goes through :func:`standardize_address` — the one
    standardiser, so a reused parse and a fresh one cannot differ. ``reuse=False`` (a full
    re-link, as after an upgrade of the standardiser) parses everything again. Must run
    before ``linkage.houses`` is replaced: the previous parses are read from it.
    """
    con.execute(_PARSES_DDL)
    if reuse and table_exists(con, HOUSES):
        con.execute(_PARSED_BEFORE)
    new = [a for (a,) in con.execute(_UNPARSED).fetchall()]
    if new:
        std = [standardize_address(a) for a in new]
        columns: dict[str, list[str | None]] = {
            "address": new,
            "addr_std": [s.addr_std for s in std],
            "addr_estate": [s.estate for s in std],
            "addr_building": [s.building for s in std],
            "addr_unit": [s.unit for s in std],
            "addr_room": [s.room for s in std],
            "addr_key": [s.key for s in std],
        }
        # Text arrays keep the VARCHAR type even when a column is all NULL.
        frame = pd.DataFrame({k: pd.array(v, dtype="str") for k, v in columns.items()})
        con.register("_new_parses", frame)
        try:
            con.execute(f"INSERT INTO _house_parses SELECT {', '.join(columns)} FROM _new_parses")
        finally:
            con.unregister("_new_parses")
    return len(new)


def match_rates(con: duckdb.DuckDBPyConnection) -> dict[str, FeedMatch]:
    """Per-feed match figures from ``linkage.house_matches`` (owners excluded)."""
    return {
        str(row[0]): FeedMatch(str(row[0]), *(int(v) for v in row[1:]))
        for row in con.execute(_RATES).fetchall()
    }


def _houses_updatable(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``linkage.houses`` is a previous build to update: the columns and the keys
    that ``_HOUSES_DDL`` declares (a table without them would never gain them)."""
    if not same_shape(con, HOUSES, _HOUSES_SELECT):
        return False
    schema, _, name = HOUSES.partition(".")
    primary, unique = one(con, _HOUSES_CONSTRAINTS, [schema, name])
    return bool(primary == 1 and unique == 1)


def _write_houses(con: duckdb.DuckDBPyConnection, *, reuse: bool) -> Delta | None:
    """Bring ``linkage.houses`` up to date; None when it was rebuilt from scratch.

    Why a delta: rebuilding 370,000 dwellings re-creates both key indexes for a day that
    changes a few hundred. A dwelling is rewritten when any column differs (its address
    parse, status, owner): DELETE first, then INSERT, so the keys hold throughout.
    """
    if reuse and _houses_updatable(con):
        # Materialised: evaluating the join with person_records once measured faster.
        return apply_delta(
            con, HOUSES, _HOUSES_SELECT, ("house_id",), order="house_code", materialize=True
        )
    con.execute(_HOUSES_DDL)
    con.execute(_HOUSES_INSERT)
    return None


def _write_matches(con: duckdb.DuckDBPyConnection, *, reuse: bool) -> Delta | None:
    """Bring ``linkage.house_matches`` up to date; None when it was rebuilt from scratch.

    Every record is matched again in SQL (cheap), but only records whose match differs
    are written: a new or ended record, a changed address, or a dwelling whose key became
    ambiguous or unambiguous for the records that carry it.
    """
    if reuse and same_shape(con, MATCHES, _MATCHES_SELECT):
        # Materialised: the query joins every record with its features; once is enough.
        return apply_delta(
            con, MATCHES, _MATCHES_SELECT, ("record_id",), order="record_id", materialize=True
        )
    con.execute(f"CREATE OR REPLACE TABLE {MATCHES} AS {_MATCHES_SELECT} ORDER BY record_id")
    return None


def build_house_index(con: duckdb.DuckDBPyConnection, *, reuse: bool = True) -> HouseIndexResult:
    """(Re)build ``linkage.houses`` and ``linkage.house_matches``; report match rates.

    Reads ``staging.ps_housing`` (current versions, ended dwellings included with status
    ``deregistered`` so old links stay explainable), ``staging.person_records`` and
    ``linkage.person_features`` (run standardisation first). Both tables are written in
    one transaction, so a reader never sees houses and matches of different runs.

    With ``reuse`` (a daily run) and tables of a previous build, only the dwellings and
    matches that differ are rewritten: the tables then hold the rows a rebuild would give,
    changed rows last. ``reuse=False`` and first builds write both tables from scratch,
    sorted (houses by 房屋编码, matches by record id). Figures are counted from the tables,
    so they do not depend on the path.
    """
    _require(con, f"staging.{OWNER_FEED}", "the pull of ps_housing")
    _require(con, "staging.person_records", "build_person_records")
    _require(con, "linkage.person_features", "standardisation (linkage.person_features)")
    con.begin()
    try:
        parsed = _parse_addresses(con, reuse=reuse)
        address_heads.store(con)  # heads of new dwellings' addresses, for later runs
        houses_delta = _write_houses(con, reuse=reuse)
        con.execute(_KEY_TARGETS)
        matches_delta = _write_matches(con, reuse=reuse)
        houses, active, keyed, owners = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE status = 'active'), count(addr_key),
                       count(owner_record_id) FROM {HOUSES}"""
        ).fetchall()[0]
        ambiguous = con.execute("SELECT count(*) FROM _key_targets WHERE dwellings > 1").fetchall()
        # A record without features has no addr_key, so only those need the anti join.
        missing = con.execute(
            f"""SELECT count(*) FROM {MATCHES} m
                ANTI JOIN linkage.person_features f ON f.unique_id = m.record_id
                WHERE m.addr_key IS NULL"""
        ).fetchall()
        con.execute("DROP TABLE _key_targets")
        con.execute("DROP TABLE _house_parses")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if missing[0][0]:
        log.warning(
            "%d person records have no row in linkage.person_features (stale features?); "
            "they can link only by 房屋编码",
            missing[0][0],
        )
    result = HouseIndexResult(
        houses=int(houses),
        active=int(active),
        with_key=int(keyed),
        ambiguous_keys=int(ambiguous[0][0]),
        owners=int(owners),
        feeds=match_rates(con),
    )
    log.info(
        "built %s: %d dwellings (%d active, %d with a room-level key, %d ambiguous keys); "
        "%d addresses standardised, the rest reused from the previous build",
        HOUSES,
        result.houses,
        result.active,
        result.with_key,
        result.ambiguous_keys,
        parsed,
    )
    log.info("%s %s, %s %s", HOUSES, written(houses_delta), MATCHES, written(matches_delta))
    for m in result.feeds.values():
        log.info(
            "%s: %d of %d records linked (%d by 房屋编码, %d by address); address match "
            "%.1f%% of %d addresses, %d ambiguous",
            m.feed,
            m.linked,
            m.records,
            m.by_house_code,
            m.by_address,
            100 * m.address_match_rate,
            m.with_address,
            m.ambiguous,
        )
    return result


# Shared tables built from the house index, in the shape of sharehub.publish.tables:
# name → SELECT for the candidate, and name → (description, SQL returning offending rows).
HOUSE_CANDIDATES: dict[str, str] = {
    "house": f"SELECT {', '.join(_HOUSE_COLUMNS)} FROM {HOUSES} ORDER BY house_id",
    "residence": """
        SELECT person_id, house_id, record_id, feed, link_source, role, valid
        FROM linkage.residence ORDER BY house_id, role, record_id
    """,
}

HOUSE_CHECKS: dict[str, list[tuple[str, str]]] = {
    "house": [
        ("house_id is not null", "SELECT house_code FROM {t} WHERE house_id IS NULL"),
        ("house_id is unique", "SELECT house_id, count(*) n FROM {t} GROUP BY 1 HAVING n > 1"),
        ("house_code is not null", "SELECT house_id FROM {t} WHERE house_code IS NULL"),
        ("house_code is unique", "SELECT house_code, count(*) n FROM {t} GROUP BY 1 HAVING n > 1"),
    ],
    "residence": [
        (
            "every residence row points to an existing house",
            "SELECT r.record_id, r.house_id FROM {t} r "
            "ANTI JOIN shared.house__candidate h ON h.house_id = r.house_id",
        ),
        (
            "every residence row points to a person in person_xref",
            "SELECT r.record_id, r.person_id FROM {t} r "
            "ANTI JOIN shared.person_xref__candidate x ON x.person_id = r.person_id",
        ),
        (
            "the linking record belongs to that person in person_xref",
            "SELECT r.record_id, r.person_id FROM {t} r ANTI JOIN shared.person_xref__candidate x "
            "ON x.record_id = r.record_id AND x.person_id = r.person_id",
        ),
        (
            "one row per record and role",
            "SELECT record_id, role, count(*) n FROM {t} GROUP BY 1, 2 HAVING n > 1",
        ),
        (
            "role and link_source are known values",
            "SELECT record_id, role, link_source FROM {t} "
            "WHERE role NOT IN ('resident', 'owner') "
            "OR link_source NOT IN ('house_code', 'address_match', 'owner') OR valid IS NULL",
        ),
    ],
}
